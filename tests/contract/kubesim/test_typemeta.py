"""`kubesim/typemeta.py` is generated from the Kubernetes OpenAPI schemas bundled in
kubernetes-validate: this test fails when it drifts from them (or from the list of served kinds).

Regenerate with `.venv/bin/python -m tests.contract.kubesim.test_typemeta` (then `ruff format` it).
"""

from __future__ import annotations

import json
import pprint
from importlib import resources
from pathlib import Path
from typing import Any

from claw_operator.sim.kubesim import typemeta

KUBERNETES_VERSION = "v1.32.0"
TARGET = Path(typemeta.__file__)
# (group, kind) -> OpenAPI definition: every built-in kind kubesim serves.
KINDS = {
    ("", "Namespace"): "io.k8s.api.core.v1.Namespace",
    ("", "Secret"): "io.k8s.api.core.v1.Secret",
    ("", "ConfigMap"): "io.k8s.api.core.v1.ConfigMap",
    ("", "Event"): "io.k8s.api.core.v1.Event",
    ("events.k8s.io", "Event"): "io.k8s.api.events.v1.Event",
    ("coordination.k8s.io", "Lease"): "io.k8s.api.coordination.v1.Lease",
    ("", "ServiceAccount"): "io.k8s.api.core.v1.ServiceAccount",
    ("", "Service"): "io.k8s.api.core.v1.Service",
    ("", "Pod"): "io.k8s.api.core.v1.Pod",
    ("", "ReplicationController"): "io.k8s.api.core.v1.ReplicationController",
    ("", "Node"): "io.k8s.api.core.v1.Node",
    ("", "PersistentVolumeClaim"): "io.k8s.api.core.v1.PersistentVolumeClaim",
    ("", "PersistentVolume"): "io.k8s.api.core.v1.PersistentVolume",
    ("", "Endpoints"): "io.k8s.api.core.v1.Endpoints",
    ("apps", "Deployment"): "io.k8s.api.apps.v1.Deployment",
    ("apps", "ReplicaSet"): "io.k8s.api.apps.v1.ReplicaSet",
    ("apps", "StatefulSet"): "io.k8s.api.apps.v1.StatefulSet",
    ("apps", "DaemonSet"): "io.k8s.api.apps.v1.DaemonSet",
    ("batch", "Job"): "io.k8s.api.batch.v1.Job",
    ("batch", "CronJob"): "io.k8s.api.batch.v1.CronJob",
    ("networking.k8s.io", "Ingress"): "io.k8s.api.networking.v1.Ingress",
    ("rbac.authorization.k8s.io", "ClusterRole"): "io.k8s.api.rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "io.k8s.api.rbac.v1.ClusterRoleBinding",
    ("rbac.authorization.k8s.io", "Role"): "io.k8s.api.rbac.v1.Role",
    ("rbac.authorization.k8s.io", "RoleBinding"): "io.k8s.api.rbac.v1.RoleBinding",
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    ),
}


def _definitions() -> dict[str, Any]:
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"{KUBERNETES_VERSION}-local"
    return json.loads((root / "_definitions.json").read_text())["$defs"]  # type: ignore[no-any-return]


def _ref(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _is_object(definition: dict[str, Any]) -> bool:
    return "properties" in definition


def generate() -> tuple[dict[tuple[str, str], str], dict[str, dict[str, Any]]]:
    """(kinds, types): each reachable object type's non-scalar fields, compactly."""
    definitions = _definitions()
    types: dict[str, dict[str, Any]] = {}
    pending = list(KINDS.values())
    while pending:
        name = pending.pop()
        if name in types:
            continue
        definition = definitions[name]
        fields: dict[str, Any] = {}
        for field, schema in sorted(definition.get("properties", {}).items()):
            entry: dict[str, Any] = {}
            ref = _ref(schema)
            kinds = schema.get("type") or []
            kinds = [kinds] if isinstance(kinds, str) else kinds
            if ref and _is_object(definitions[ref]):
                entry["type"] = ref
            elif "array" in kinds:
                item_ref = _ref(schema.get("items") or {})
                entry["list"] = schema.get("x-kubernetes-list-type", "atomic")
                if item_ref and _is_object(definitions[item_ref]):
                    entry["type"] = item_ref
                if "x-kubernetes-list-map-keys" in schema:
                    entry["keys"] = list(schema["x-kubernetes-list-map-keys"])
            elif "object" in kinds and "additionalProperties" in schema:
                entry["map"] = True
                value_ref = _ref(schema["additionalProperties"])
                if value_ref and _is_object(definitions[value_ref]):
                    entry["type"] = value_ref
            if "x-kubernetes-patch-strategy" in schema:
                entry["strategy"] = schema["x-kubernetes-patch-strategy"]
            if "x-kubernetes-patch-merge-key" in schema:
                entry["mergeKey"] = schema["x-kubernetes-patch-merge-key"]
            if schema.get("x-kubernetes-map-type") == "atomic":
                entry["atomic"] = True
            if entry:
                fields[field] = entry
                if "type" in entry:
                    pending.append(entry["type"])
        if definition.get("x-kubernetes-map-type") == "atomic":
            fields["$atomic"] = True
        types[name] = fields
    return dict(sorted(KINDS.items())), dict(sorted(types.items()))


def render() -> str:
    kinds, types = generate()
    return (
        "# ruff: noqa: E501\n"
        '"""The shape of the built-in kinds kubesim serves, as strategic merge patch and server-side\n'
        "apply need it: per object type, its non-scalar fields — nested types, list types and map\n"
        "keys, patch strategies and merge keys. Generated from the Kubernetes "
        f"{KUBERNETES_VERSION} OpenAPI\n"
        'schemas by tests/contract/kubesim/test_typemeta.py; do not edit by hand."""\n\n'
        "from typing import Any\n\n"
        f"KINDS: dict[tuple[str, str], str] = {pprint.pformat(kinds, width=100, sort_dicts=False)}\n\n"
        f"TYPES: dict[str, dict[str, Any]] = {pprint.pformat(types, width=100, sort_dicts=False)}\n"
    )


def test_typemeta_is_generated_from_the_kubernetes_schemas() -> None:
    kinds, types = generate()
    assert kinds == typemeta.KINDS, "regenerate: python -m tests.contract.kubesim.test_typemeta"
    assert types == typemeta.TYPES, "regenerate: python -m tests.contract.kubesim.test_typemeta"


if __name__ == "__main__":
    TARGET.write_text(render())
