"""The Grafana dashboard (generated with grafana-foundation-sdk) and the chart's monitoring
objects: the committed JSON is the generator's, validates against the SDK's model, queries
only exported metrics; the chart renders the PrometheusRule and the dashboard ConfigMap only
when asked, lint-clean."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import helm_python as helm
import promql_parser
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from claw_operator.kube.metrics import OperatorMetrics
from tests.conftest import REPO
from tests.contract.helm.chart import CHART, FULLNAME, RELEASE_NAMESPACE, render
from tests.contract.monitoring.promql import metric_names
from tests.contract.monitoring.test_alerts import RULES, registry_names

DASHBOARD = CHART / "files" / "claw-operator-dashboard.json"
MONITORING = {
    "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
    "grafanaDashboard": {"enabled": True},
}
# Grafana's own template variables, as Grafana would substitute them before querying.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": ".*"}


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "dashboard_generator", REPO / "docs" / "monitoring" / "dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p.get("type") != "row"]


def expressions(board: dict[str, Any]) -> list[str]:
    found = []
    for panel in panels(board):
        for target in panel.get("targets") or []:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            found.append(expr)
    return found


def test_the_committed_dashboard_is_the_generator_s_output() -> None:
    assert DASHBOARD.read_text() == _generator().render(), "run python docs/monitoring/dashboard.py"


def test_the_dashboard_validates_against_the_sdk_model() -> None:
    board = dashboard_json()
    model = Dashboard.from_json(board)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == board  # nothing the model does not know
    assert board["uid"] == "claw-operator" and board["title"] == "claw-operator"


def test_the_dashboard_shows_what_the_issue_asks() -> None:
    titles = {p["title"] for p in panels(dashboard_json())}
    assert {
        "Instances by phase",
        "Instances by Ready",
        "Time to Ready",
        "Fly requests by operation and status",
        "Fly latency p90 by operation",
        "Reconcile duration",
        "Restarts, repairs and failures",
        "Operator CPU",
        "Operator memory (RSS)",
    } <= titles
    for panel in panels(dashboard_json()):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel.get("description"), panel["title"]


def test_every_dashboard_query_parses_and_names_only_exported_metrics() -> None:
    exported = registry_names(OperatorMetrics())
    exprs = expressions(dashboard_json())
    assert len(exprs) >= 20
    for expr in exprs:
        promql_parser.parse(expr)
        assert metric_names(expr) <= exported, expr


def test_the_chart_renders_no_monitoring_objects_by_default() -> None:
    kinds = {o["kind"] for o in render()}
    assert "PrometheusRule" not in kinds and "ConfigMap" not in kinds


def test_the_chart_ships_the_rules_with_runbook_links() -> None:
    objects = render(MONITORING)
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == FULLNAME
    assert rule["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "prom"
    shipped = yaml.safe_load(RULES.read_text())["groups"]
    assert [g["name"] for g in rule["spec"]["groups"]] == [g["name"] for g in shipped]
    for group, source in zip(rule["spec"]["groups"], shipped, strict=True):
        for alert, original in zip(group["rules"], source["rules"], strict=True):
            assert alert["expr"] == original["expr"]
            assert alert["annotations"]["summary"] == original["annotations"]["summary"]  # {{ $value }} kept
            url = alert["annotations"]["runbook_url"]
            assert url.startswith(
                "https://github.com/claw-dev/claw-operator/blob/main/docs/troubleshooting.md#"
            ), url
    custom = render({"prometheusRule": {"enabled": True, "runbookBaseUrl": "https://wiki.example/claw"}})
    (rule,) = [o for o in custom if o["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"][0]["rules"][0]["annotations"]["runbook_url"] == (
        "https://wiki.example/claw#clawinstancesstalled"
    )


def test_the_not_ready_delay_is_a_value() -> None:
    def not_ready_for(values: dict[str, Any]) -> str:
        (rule,) = [o for o in render(values) if o["kind"] == "PrometheusRule"]
        alerts = [
            r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "ClawInstancesNotReady"
        ]
        return str(alerts[0]["for"])

    assert not_ready_for({"prometheusRule": {"enabled": True}}) == "15m"
    assert not_ready_for({"prometheusRule": {"enabled": True, "notReadyFor": "1h"}}) == "1h"
    with pytest.raises(Exception, match="notReadyFor"):
        render({"prometheusRule": {"enabled": True, "notReadyFor": "soon"}})


def test_the_chart_ships_the_dashboard_for_grafana_s_sidecar() -> None:
    objects = render(MONITORING)
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert json.loads(config_map["data"]["claw-operator.json"]) == dashboard_json()
    elsewhere = render(
        {
            "grafanaDashboard": {
                "enabled": True,
                "namespace": "monitoring",
                "annotations": {"grafana_folder": "Claw"},
            }
        }
    )
    (config_map,) = [o for o in elsewhere if o["kind"] == "ConfigMap"]
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Claw"}


@pytest.mark.parametrize("values", [{}, MONITORING], ids=["without", "with-monitoring"])
def test_lint_is_clean_with_and_without_monitoring(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=RELEASE_NAMESPACE)
    assert not report["errors"], report
    assert not [m for m in report["messages"] if m["severity"] >= 2], report["messages"]


def test_the_configmap_validates_against_kubernetes_schemas() -> None:
    import kubernetes_validate

    for obj in render(MONITORING):
        if obj["kind"] == "ConfigMap":
            kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
