"""The chart renders (Helm v4 SDK) with default and non-default values, lints clean, validates
against the Kubernetes schemas, ships the one CRD byte for byte, and configures the operator
with flags the real CLI accepts."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from claw_operator.cli import build_parser
from claw_operator.kube.config import OperatorConfig, config_from_flags
from claw_operator.lifecycle.model import Timings
from tests.conftest import CRD_PATH
from tests.contract.helm.chart import (
    CHART,
    FULLNAME,
    NON_DEFAULT,
    RELEASE_NAMESPACE,
    SCENARIOS,
    SHARDED,
    chart_crds,
    kinds,
    load_values,
    one,
    render,
    render_files,
    run_parser,
)

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion: the CRD's CEL rules use
# fieldPath, new in 1.28) and the newest schemas kubernetes-validate bundles (offline).
KUBE_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
# Kinds whose schema is not a Kubernetes built-in: kubernetes-validate has none for them.
THIRD_PARTY_KINDS = {"ServiceMonitor"}


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(objects, "Deployment")
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


# ---------------------------------------------------------------------------- rendering


def test_default_values_render_the_cluster_wide_install() -> None:
    assert kinds(render()) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]


def test_non_default_values_render_roles_per_namespace_and_the_service_monitor() -> None:
    objects = render(NON_DEFAULT)
    assert kinds(objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "Role",
        "RoleBinding",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
    assert {o["metadata"]["namespace"] for o in objects if o["kind"] in ("Role", "RoleBinding")} == {
        "team-a",
        "team-b",
    }
    for namespace in ("team-a", "team-b"):
        binding = one(objects, "RoleBinding", namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": FULLNAME,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}
        ]


def test_everything_namespaced_lands_in_the_release_namespace() -> None:
    for obj in render():
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == RELEASE_NAMESPACE, obj["kind"]


def test_disabling_rbac_and_the_service_account_renders_only_the_deployment_and_service() -> None:
    objects = render({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "mine"}})
    assert kinds(objects) == ["Deployment", "Service"]
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


def test_values_outside_the_schema_are_refused() -> None:
    for bad in ({"logFormat": "xml"}, {"timings": {"stoppedThreshold": 0}}, {"timings": {"pollIdle": -1}}):
        with pytest.raises(helm.HelmValuesError):
            render_files(bad)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_reports_no_errors(scenario: str) -> None:
    report = helm.lint(CHART, SCENARIOS[scenario], strict=True, namespace=RELEASE_NAMESPACE)
    assert report["errors"] == []
    # Severity 1 is "info" (Helm recommends an icon); warnings (2) and errors (3) would show here.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_does_report_a_broken_chart(tmp_path: Path) -> None:
    """The lint check above can fail: a chart whose template does not parse is an error."""
    broken = tmp_path / "broken"
    (broken / "templates").mkdir(parents=True)
    (broken / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (broken / "templates" / "x.yaml").write_text("kind: ConfigMap\n{{ .Values.nope.deeper }\n")
    report = helm.lint(broken, strict=True)
    assert report["errors"] or [m for m in report["messages"] if m["severity"] == 3]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_manifest_validates(scenario: str, kube_version: str) -> None:
    validated = []
    for obj in render(SCENARIOS[scenario]):
        if obj["kind"] in THIRD_PARTY_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(obj, kube_version, strict=True)
            continue
        kubernetes_validate.validate(obj, kube_version, strict=True)
        validated.append(obj["kind"])
    for crd in chart_crds():
        kubernetes_validate.validate(yaml.safe_load(crd["data"]), kube_version, strict=True)
        validated.append("CustomResourceDefinition")
    assert "Deployment" in validated and "CustomResourceDefinition" in validated


def test_the_validator_rejects_a_broken_deployment() -> None:
    deployment = one(render(), "Deployment")
    deployment["spec"]["strategy"]["type"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


# ---------------------------------------------------------------------------- the CRD, one source


def test_the_chart_crd_is_byte_identical_to_crds() -> None:
    (crd,) = chart_crds()
    assert crd["name"] == "crds/clawinstances.yaml"
    assert crd["data"].encode() == CRD_PATH.read_bytes()


def test_the_chart_crd_is_a_link_to_crds_not_a_copy() -> None:
    link = CHART / "crds" / "clawinstances.yaml"
    assert link.is_symlink()
    assert link.resolve() == CRD_PATH.resolve()


def test_the_packaged_chart_carries_the_crd_byte_for_byte(tmp_path: Path) -> None:
    """`helm package` follows the link: the .tgz a user installs holds the same bytes."""
    archive = helm.package(CHART, destination=tmp_path)
    assert Path(archive).name == "claw-operator-0.1.0.tgz"
    (crd,) = chart_crds(Path(archive))
    assert crd["data"].encode() == CRD_PATH.read_bytes()


def test_no_template_renders_a_crd() -> None:
    """Helm installs crds/ before the templates and never deletes it on uninstall; a templated
    copy would be a second source and would take every ClawInstance with it on uninstall."""
    for scenario in SCENARIOS.values():
        assert "CustomResourceDefinition" not in kinds(render(scenario))


# ---------------------------------------------------------------------------- the Deployment


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_deployment_is_one_replica_recreated_and_locked_down(scenario: str) -> None:
    objects = render(SCENARIOS[scenario])
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    main = container(objects)
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["resources"]["requests"] and main["resources"]["limits"]["memory"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_probes_hit_the_health_endpoints_on_the_metrics_port(scenario: str) -> None:
    values = SCENARIOS[scenario]
    port = values.get("metrics", {}).get("port", 8080)
    main = container(render(values))
    assert main["ports"] == [{"name": "http-metrics", "containerPort": port, "protocol": "TCP"}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    assert f"--metrics-port={port}" in main["args"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_fly_token_comes_from_an_existing_secret(scenario: str) -> None:
    values = SCENARIOS[scenario]
    token = {"existingSecret": "fly-api-token", "key": "token", **values.get("flyToken", {})}
    objects = render(values)
    assert "Secret" not in kinds(objects)
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["FLY_API_TOKEN"] == {
        "name": "FLY_API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": token["existingSecret"], "key": token["key"]}},
    }


def chart_config(values: dict[str, Any] | None = None) -> OperatorConfig:
    """The operator's configuration from the flags the chart's Deployment passes."""
    args = build_parser().parse_args(["run", *container(render(values))["args"]])
    return config_from_flags(vars(args), {"FLY_API_TOKEN": "fo1_chart"})


def test_the_chart_defaults_are_the_operators() -> None:
    """values.yaml restates every default of `claw-operator run` (a chart lists its values):
    pinned here to the one place the operator states them (OperatorConfig, Timings)."""
    defaults = OperatorConfig(fly_token="fo1_chart")
    # The one deliberate difference: a pod's logs are JSON.
    assert chart_config() == replace(defaults, log_format="json")


def test_the_operator_cli_accepts_the_non_default_args() -> None:
    config = chart_config(NON_DEFAULT)
    assert config.namespaces == ("team-a", "team-b")
    assert config.default_app == "claw-sandboxes"
    assert config.fly_api_url == NON_DEFAULT["flyApiUrl"]
    assert config.metrics_port == 9090
    assert config.log_format == "text"
    assert config.watch_stale_after == NON_DEFAULT["watchStaleAfter"]
    timings = NON_DEFAULT["timings"]
    assert set(timings) == set(load_values()["timings"]), "NON_DEFAULT changes every timing"
    for key, value in timings.items():
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
        expected = value if name == "stopped_threshold" else timedelta(seconds=value)
        assert getattr(config.timings, name) == expected, key
        assert getattr(config.timings, name) != getattr(Timings(), name), f"{key} is its default"


# Flags the chart deliberately does not expose: the token comes from env FLY_API_TOKEN (a Secret)
# and in a pod the operator uses its in-cluster config.
# With `shards: auto`, the replica's identity and namespace come from the downward API (env
# POD_NAME, POD_NAMESPACE).
NOT_IN_CHART = {"--help", "--fly-token-file", "--kubeconfig", "--shard-identity", "--shard-namespace"}


def test_every_run_flag_is_set_by_the_chart_or_deliberately_left_out() -> None:
    rendered = container(render(NON_DEFAULT))["args"] + container(render())["args"]
    rendered += container(render(SHARDED))["args"]
    used = {arg.split("=", 1)[0] for arg in rendered}
    for action in run_parser()._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if not long or long[0] in NOT_IN_CHART:
            continue
        assert long[0] in used, f"claw-operator run {long[0]} has no value in the chart"


def test_the_service_monitor_scrapes_the_metrics_service() -> None:
    objects = render(NON_DEFAULT)
    service = one(objects, "Service")
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "http-metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert (
        service["spec"]["selector"].items()
        <= one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )


# ---------------------------------------------------------------------------- the values table


def _leaves(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if (
            isinstance(value, dict)
            and value
            and path
            not in ("resources", "livenessProbe", "readinessProbe", "podSecurityContext", "securityContext")
        ):
            keys.extend(_leaves(value, f"{path}."))
        else:
            keys.append(path)
    return keys


def test_the_chart_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    missing = [key for key in _leaves(load_values()) if f"| `{key}` |" not in readme]
    assert missing == [], f"helm/claw-operator/README.md lacks rows for {missing}"


def test_the_chart_readme_states_each_values_default() -> None:
    """The README's Default column is values.yaml's value (where it is one literal)."""
    readme = (CHART / "README.md").read_text()
    cells = dict(re.findall(r"^\| `([^`]+)` \| `([^`]*)` \|", readme, re.M))
    values = load_values()
    compared = 0
    for key in _leaves(values):
        if key not in cells:
            continue  # a default described in words (resources, probes, the runbook URL)
        value: Any = values
        for part in key.split("."):
            value = value[part]
        cell = cells[key]
        stated = yaml.safe_load(f"{{{cell}}}" if isinstance(value, dict) and value else cell)
        assert stated == value, f"helm/claw-operator/README.md: the default of {key}"
        compared += 1
    assert compared >= 40
