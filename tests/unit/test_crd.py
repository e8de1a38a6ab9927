"""The CRD is generated from the models, and it accepts and refuses what the contract says."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from claw_operator.api import KIND
from claw_operator.api.crd import build_crd, render_crd_yaml
from claw_operator.sim.crdschema import cel_errors, validate
from tests.conftest import CRD_PATH, EXAMPLES


def test_committed_crd_equals_generated() -> None:
    assert CRD_PATH.read_text() == render_crd_yaml(), "crds/clawinstances.yaml is stale: run `make crds`"


def test_crd_names_columns_and_subresources(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "clawinstances.claw.dev"
    assert spec["names"] == {
        "kind": "ClawInstance",
        "listKind": "ClawInstanceList",
        "plural": "clawinstances",
        "singular": "clawinstance",
        "shortNames": ["claw"],
        "categories": ["claw"],
    }
    assert spec["scope"] == "Namespaced"
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"].upper(), c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("PHASE", ".status.phase"),
        ("READY", '.status.conditions[?(@.type=="Ready")].status'),
        ("MACHINE", ".status.machineId"),
        ("REGION", ".spec.region"),
        ("AGE", ".metadata.creationTimestamp"),
    ]


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, child in (node.get("properties") or {}).items():
            out.extend(_walk(child, f"{path}.{key}"))
        if isinstance(node.get("items"), dict):
            out.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            out.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return out


def test_every_spec_and_status_field_is_described(crd_schema: dict[str, Any]) -> None:
    for root in ("spec", "status"):
        for path, node in _walk(crd_schema["properties"][root], root):
            if path.endswith("{}"):
                continue  # map values: described by the map itself
            assert node.get("description"), f"{path} has no description (kubectl explain shows nothing)"


def test_schema_is_structural(crd_schema: dict[str, Any]) -> None:
    for path, node in _walk(crd_schema):
        assert "$ref" not in node and "anyOf" not in node and "allOf" not in node, path
        assert "title" not in node, path
        assert "type" in node, f"{path} has no type (not a structural schema)"


def test_conditions_are_a_map_keyed_by_type(crd_schema: dict[str, Any]) -> None:
    conditions = crd_schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


def test_defaults_match_the_contract(crd_schema: dict[str, Any]) -> None:
    spec = crd_schema["properties"]["spec"]["properties"]
    assert spec["guest"]["properties"]["cpuKind"]["default"] == "shared"
    assert spec["guest"]["properties"]["cpus"]["default"] == 2
    assert spec["guest"]["properties"]["memoryMB"]["default"] == 3072
    assert spec["volume"]["properties"]["sizeGB"]["default"] == 10
    assert spec["volume"]["properties"]["mountPath"]["default"] == "/root"
    assert spec["state"]["default"] == "Running"
    assert spec["deletionPolicy"]["default"] == "Delete"
    assert "default" not in spec["app"]  # comes from the operator's --default-app
    assert set(crd_schema["properties"]["spec"]["required"]) == {"region", "image"}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _claw_docs() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in _docs(path):
            if doc.get("kind") == KIND:
                found.append((f"{path.name}:{doc['metadata']['name']}", doc))
    return found


@pytest.mark.parametrize(("name", "doc"), _claw_docs(), ids=[n for n, _ in _claw_docs()])
def test_examples_validate_against_the_crd(
    name: str, doc: dict[str, Any], crd_schema: dict[str, Any]
) -> None:
    assert validate(crd_schema, doc) == []


def test_examples_cover_minimal_full_and_secret_env() -> None:
    names = {path.name for path in EXAMPLES.glob("*.yaml")}
    assert {"minimal.yaml", "full.yaml", "secret-env.yaml"} <= names
    secret_docs = _docs(EXAMPLES / "secret-env.yaml")
    assert {d["kind"] for d in secret_docs} == {"Secret", "ClawInstance"}
    secret = next(d for d in secret_docs if d["kind"] == "Secret")
    claw = next(d for d in secret_docs if d["kind"] == "ClawInstance")
    for ref in claw["spec"]["secretEnv"]:
        assert ref["secretKeyRef"]["name"] == secret["metadata"]["name"]
        assert ref["secretKeyRef"]["key"] in secret["stringData"]


def test_full_example_sets_every_spec_field(crd_schema: dict[str, Any]) -> None:
    full = next(doc for name, doc in _claw_docs() if name.startswith("full.yaml"))
    for path, _node in _walk(crd_schema["properties"]["spec"], "spec"):
        if path == "spec" or "[]" in path or path.endswith("{}"):
            continue
        value: Any = full
        for part in path.split(".")[0:]:
            assert isinstance(value, dict) and part in value, f"full.yaml does not set {path}"
            value = value[part]


def _minimal() -> dict[str, Any]:
    doc: dict[str, Any] = _docs(EXAMPLES / "minimal.yaml")[0]
    return doc


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_minimal())
    node = doc
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(parts[-1])
    else:
        node[parts[-1]] = value
    return doc


_DELETE = object()

BAD_MANIFESTS = [
    ("region_digits", "spec.region", "12345", "spec.region"),
    ("region_upper", "spec.region", "IAD", "spec.region"),
    ("cpus_zero", "spec.guest.cpus", 0, "spec.guest.cpus"),
    ("cpus_nine", "spec.guest.cpus", 9, "spec.guest.cpus"),
    ("memory_300", "spec.guest.memoryMB", 300, "spec.guest.memoryMB"),
    ("memory_too_big", "spec.guest.memoryMB", 32768, "spec.guest.memoryMB"),
    ("cpu_kind_unknown", "spec.guest.cpuKind", "gpu", "spec.guest.cpuKind"),
    ("state_unknown", "spec.state", "Paused", "spec.state"),
    ("deletion_policy_unknown", "spec.deletionPolicy", "Retain", "spec.deletionPolicy"),
    ("env_fly_key", "spec.env", {"FLY_X": "1"}, "spec.env"),
    ("env_bad_key", "spec.env", {"1BAD": "1"}, "spec.env"),
    # 8 MiB of env was accepted once (256 values of 32 Ki): Fly answers 413 to such configs.
    ("env_too_large", "spec.env", {f"V{i}": "x" * 32768 for i in range(256)}, "spec.env"),
    ("env_over_the_cap", "spec.env", {f"V{i}": "x" * 30000 for i in range(5)}, "spec.env"),
    ("image_missing", "spec.image", _DELETE, "spec.image"),
    ("image_empty", "spec.image", "", "spec.image"),
    ("region_missing", "spec.region", _DELETE, "spec.region"),
    ("app_bad", "spec.app", "My_App", "spec.app"),
    ("volume_zero", "spec.volume.sizeGB", 0, "spec.volume.sizeGB"),
    ("mount_relative", "spec.volume.mountPath", "data", "spec.volume.mountPath"),
    (
        "secret_env_fly_name",
        "spec.secretEnv",
        [{"name": "FLY_TOKEN", "secretKeyRef": {"name": "s", "key": "k"}}],
        "spec.secretEnv[0].name",
    ),
    ("fallback_region_bad", "spec.fallbackRegions", ["ORD"], "spec.fallbackRegions[0]"),
    ("fallback_regions_repeated", "spec.fallbackRegions", ["ord", "ord"], "spec.fallbackRegions"),
    (
        "fallback_regions_too_many",
        "spec.fallbackRegions",
        [f"a{c}a" for c in "bcdefghij"],
        "spec.fallbackRegions",
    ),
    ("health_check_port_zero", "spec.healthCheck", {"port": 0}, "spec.healthCheck.port"),
    ("health_check_path_relative", "spec.healthCheck", {"port": 80, "path": "x"}, "spec.healthCheck.path"),
    (
        "health_check_interval_bad",
        "spec.healthCheck",
        {"port": 80, "interval": "15"},
        "spec.healthCheck.interval",
    ),
    (
        "secret_env_missing_ref",
        "spec.secretEnv",
        [{"name": "TOKEN"}],
        "spec.secretEnv[0].secretKeyRef",
    ),
]


@pytest.mark.parametrize(("case", "path", "value", "field"), BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS])
def test_bad_manifest_is_rejected_naming_the_field(
    case: str, path: str, value: Any, field: str, crd_schema: dict[str, Any]
) -> None:
    causes = validate(crd_schema, _with(path, value))
    assert causes, f"{case} was accepted"
    assert any(c.field == field for c in causes), [str(c) for c in causes]
    assert all(str(c).startswith(c.field) for c in causes)


def test_env_up_to_the_cap_is_accepted(crd_schema: dict[str, Any]) -> None:
    env = {f"V{i}": "x" * 32000 for i in range(4)}  # 128,008 of 131,072 characters
    assert validate(crd_schema, _with("spec.env", env)) == []


def test_fallback_regions_may_not_contain_the_region(crd_schema: dict[str, Any]) -> None:
    doc = _with("spec.fallbackRegions", ["ord", "iad"])
    doc["spec"]["region"] = "iad"
    causes = validate(crd_schema, doc)
    assert [c.field for c in causes] == ["spec.fallbackRegions"]
    doc["spec"]["fallbackRegions"] = ["ord", "ewr"]
    assert validate(crd_schema, doc) == []


def test_env_and_secret_env_may_not_share_a_name(crd_schema: dict[str, Any]) -> None:
    doc = _with("spec.env", {"TOKEN": "x"})
    doc["spec"]["secretEnv"] = [{"name": "TOKEN", "secretKeyRef": {"name": "s", "key": "k"}}]
    causes = validate(crd_schema, doc)
    assert [c.field for c in causes] == ["spec.secretEnv"]


# Transition rules (oldSelf), evaluated by cel-python from the CRD's own rule text.
TRANSITIONS = [
    ("region_changed", {"region": "iad"}, {"region": "ord"}, "spec.region"),
    ("app_changed", {"app": "a"}, {"app": "b"}, "spec.app"),
    ("app_added", {}, {"app": "b"}, "spec.app"),
    ("app_removed", {"app": "a"}, {}, "spec.app"),
    ("volume_shrunk", {"volume": {"sizeGB": 20}}, {"volume": {"sizeGB": 10}}, "spec.volume.sizeGB"),
]
ALLOWED = [
    ("region_same", {"region": "iad"}, {"region": "iad"}),
    ("app_same", {"app": "a"}, {"app": "a"}),
    ("volume_grown", {"volume": {"sizeGB": 10}}, {"volume": {"sizeGB": 20}}),
    ("volume_same", {"volume": {"sizeGB": 10}}, {"volume": {"sizeGB": 10}}),
    ("image_changed", {"image": "a:1"}, {"image": "a:2"}),
    ("env_changed", {"env": {"A": "1"}}, {"env": {"A": "2", "B": "3"}}),
]


def _pair(old_spec: dict[str, Any], new_spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    old, new = copy.deepcopy(_minimal()), copy.deepcopy(_minimal())
    old["spec"].update(old_spec)
    new["spec"].update(new_spec)
    return old, new


@pytest.mark.parametrize(
    ("case", "old_spec", "new_spec", "field"), TRANSITIONS, ids=[t[0] for t in TRANSITIONS]
)
def test_cel_transition_rules_refuse(
    case: str, old_spec: dict[str, Any], new_spec: dict[str, Any], field: str, crd_schema: dict[str, Any]
) -> None:
    old, new = _pair(old_spec, new_spec)
    causes = cel_errors(crd_schema, new, old)
    assert [c.field for c in causes] == [field], [str(c) for c in causes]
    assert validate(crd_schema, new) == [], "transition rules must not fire on create"


@pytest.mark.parametrize(("case", "old_spec", "new_spec"), ALLOWED, ids=[t[0] for t in ALLOWED])
def test_cel_transition_rules_allow(
    case: str, old_spec: dict[str, Any], new_spec: dict[str, Any], crd_schema: dict[str, Any]
) -> None:
    old, new = _pair(old_spec, new_spec)
    assert cel_errors(crd_schema, new, old) == []


def test_cel_rules_come_from_the_generated_crd() -> None:
    rules = [
        rule["rule"]
        for _path, node in _walk(build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert "self == oldSelf" in rules
    assert "self >= oldSelf" in rules
