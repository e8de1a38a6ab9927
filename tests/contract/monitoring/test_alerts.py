"""The shipped alerts: each parses, names only exported metrics, links a runbook that exists,
fires on its situation and stays quiet otherwise (promtool-style fixtures, evaluated in Python)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from claw_operator.kube.metrics import OperatorMetrics
from tests.conftest import REPO
from tests.contract.monitoring.promql import duration, firing, metric_names, store_from_fixture

RULES = REPO / "helm" / "claw-operator" / "files" / "prometheus-rules.yaml"
TROUBLESHOOTING = REPO / "docs" / "troubleshooting.md"
FIXTURES = yaml.safe_load((Path(__file__).parent / "alert_fixtures.yaml").read_text())
RUNBOOK_BASE = "RUNBOOK_BASE"


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def rule(name: str) -> dict[str, Any]:
    (found,) = [r for r in rules() if r.get("alert") == name]
    return found


def registry_names(metrics: OperatorMetrics) -> set[str]:
    """Every series name the operator's registry can export (a labelled family with no child yet
    included), with the suffixes Prometheus sees: `_total`, `_bucket`/`_sum`/`_count`."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
    }
    names = set()
    for family in metrics.registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


ALERTS = [r["alert"] for r in rules()]


def test_the_issue_s_alerts_are_all_there() -> None:
    assert ALERTS == [
        "ClawInstancesStalled",
        "ClawInstancesNotReady",
        "ClawStartFailures",
        "ClawInstanceCrashLooping",
        "ClawDestroyBlocked",
        "ClawFlyAPIErrors",
        "ClawFlyRateLimited",
        "ClawReconcileErrors",
        "ClawWatchStale",
        "ClawOperatorDown",
    ]


@pytest.mark.parametrize("name", ALERTS)
def test_every_expression_parses_as_promql(name: str) -> None:
    promql_parser.parse(rule(name)["expr"])


@pytest.mark.parametrize("name", ALERTS)
def test_every_alert_names_only_metrics_the_operator_exports(name: str) -> None:
    exported = registry_names(OperatorMetrics())
    used = metric_names(rule(name)["expr"])
    assert used, name
    assert used <= exported, f"{name} uses {sorted(used - exported)}, not in the operator's registry"


@pytest.mark.parametrize("name", ALERTS)
def test_every_alert_says_what_why_and_where_to_look(name: str) -> None:
    alert = rule(name)
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    assert alert["labels"]["severity"] in ("warning", "critical")
    url = annotations["runbook_url"]
    assert url.startswith(f"{RUNBOOK_BASE}#")
    anchors = {
        github_anchor(line.lstrip("#"))
        for line in TROUBLESHOOTING.read_text().splitlines()
        if line.startswith("#")
    }
    assert url.split("#", 1)[1] in anchors, f"docs/troubleshooting.md has no section for {name}"


@pytest.mark.parametrize("name", ALERTS)
def test_every_alert_has_a_firing_fixture(name: str) -> None:
    assert any(case["alert"] == name and case.get("fires_at") for case in FIXTURES)


@pytest.mark.parametrize("case", FIXTURES, ids=[f"{c['alert']}: {c['case']}" for c in FIXTURES])
def test_the_alert_fires_on_its_situation_and_only_then(case: dict[str, Any]) -> None:
    alert = rule(case["alert"])
    store = store_from_fixture(case["input_series"], duration(case.get("interval", "1m")))
    hold = duration(alert.get("for", "0s"))
    for at in case.get("fires_at", []):
        result = firing(store, alert["expr"], hold, duration(at))
        assert result, f"{case['alert']} does not fire at {at}"
        for labels in result:
            assert dict(case.get("labels", {})).items() <= dict(labels).items()
    for at in case.get("quiet_at", []):
        assert not firing(store, alert["expr"], hold, duration(at)), f"{case['alert']} fires at {at}"
