"""The shipped alerts and dashboard against a running operator: every metric they name is in its
/metrics, and each alert's expression holds on scrapes recorded while the real operator is in
the alert's situation (and none holds on a healthy one)."""

from __future__ import annotations

import re
import socket
import time
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.contract.monitoring.promql import Evaluator, Store, metric_names
from tests.contract.monitoring.record_scrapes import CRASH, CRASHING
from tests.contract.monitoring.test_alerts import RULES
from tests.contract.monitoring.test_dashboard_and_chart import dashboard_json, expressions
from tests.integration.conftest import Sandbox

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _alerts() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


class Recorder:
    """Scrapes /metrics like Prometheus and keeps every sample with its scrape time."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.store = Store()
        self.last = 0.0
        self.families: set[str] = set()

    def scrape(self) -> None:
        text = httpx.get(self.url, timeout=5).text
        now = time.time()
        for family in text_string_to_metric_families(text):
            for suffix in SUFFIXES.get(family.type, ("",)):
                self.families.add(family.name + suffix)
            for sample in family.samples:
                self.store.add(sample.name, sample.labels, now, sample.value)
        self.store.sort()
        self.last = now

    def record(self, seconds: float, every: float = 0.5) -> Recorder:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.scrape()
            time.sleep(every)
        self.scrape()
        return self

    def holding(self) -> dict[str, Any]:
        """Each alert whose expression has a result at the last scrape (its `for` aside)."""
        evaluator = Evaluator(self.store)
        found = {}
        for name, expr in _alerts().items():
            result = evaluator.instant(expr, self.last)
            if result:
                found[name] = result
        return found


def test_alerts_and_dashboard_name_only_metrics_a_running_operator_exports(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port)
    sandbox.create("scraped")
    sandbox.wait_condition("scraped", "Ready", "True")
    recorder = Recorder(port)
    recorder.scrape()
    used = set().union(*(metric_names(e) for e in [*_alerts().values(), *expressions(dashboard_json())]))
    assert used <= recorder.families, sorted(used - recorder.families)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= used


def test_a_healthy_operator_raises_no_alert(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port)
    sandbox.create("calm")
    sandbox.wait_condition("calm", "Ready", "True")
    assert Recorder(port).record(3).holding() == {}


def test_a_refused_token_holds_the_stalled_and_not_ready_alerts(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port, token="fo1_refused")
    sandbox.create("locked")
    sandbox.wait_condition("locked", "Stalled", "True", "Unauthorized")
    holding = Recorder(port).record(2).holding()
    assert set(holding) == {"ClawInstancesStalled", "ClawInstancesNotReady"}, holding


def test_failing_starts_hold_the_start_failure_alert(sandbox: Sandbox) -> None:
    port = _free_port()
    # Hosts too small for the machine: every start attempt fails with InsufficientCapacity.
    sandbox.flyhttp.post("/_sim/capacity", json={"region": "iad", "host_memory_mb": 1024}).raise_for_status()
    sandbox.start_operator(metrics_port=port)
    recorder = Recorder(port)
    recorder.scrape()  # before: the counters at 0, as Prometheus would have them
    for name in ("crowded-1", "crowded-2", "crowded-3"):
        sandbox.create(name)
    for name in ("crowded-1", "crowded-2", "crowded-3"):
        sandbox.wait_condition(name, "StartFailed", "True", "InsufficientCapacity")
    holding = recorder.record(2).holding()
    assert "ClawStartFailures" in holding, holding


def test_a_crash_loop_holds_the_crash_looping_alert(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port, timings=CRASH)
    recorder = Recorder(port)
    recorder.scrape()  # before: the CrashLoopBackOff counter at 0
    assert "ClawInstanceCrashLooping" not in recorder.holding()
    sandbox.create("looping", image=CRASHING)
    sandbox.wait(lambda: sandbox.status("looping").get("crashCount", 0) >= 2, 40, "two crashes")
    assert sandbox.condition("looping", "StartFailed")["reason"] == "CrashLoopBackOff"
    holding = recorder.record(1).holding()
    assert "ClawInstanceCrashLooping" in holding, holding
    # A machine that crashes is not a failed start, a Fly error nor a reconcile error.
    assert not {"ClawStartFailures", "ClawFlyAPIErrors", "ClawReconcileErrors"} & set(holding), holding


def test_fly_5xx_holds_the_fly_errors_alert_for_the_failing_operation(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.fault(method="POST", path="/v1/apps/*/machines", mode="error", status=503, count=None)
    sandbox.start_operator(metrics_port=port)
    recorder = Recorder(port)
    recorder.scrape()
    sandbox.create("unlucky")
    sandbox.wait(lambda: "StartFailed" in sandbox.event_reasons("unlucky"), what="a failed create")
    holding = recorder.record(3).holding()
    assert "ClawFlyAPIErrors" in holding, holding
    operations = {dict(labels)["operation"] for labels in holding["ClawFlyAPIErrors"]}
    assert operations == {"create_machine"}
    assert not re.search("ClawFlyRateLimited|ClawReconcileErrors", str(set(holding)))


def test_a_failing_destroy_holds_the_destroy_blocked_alert(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port)
    sandbox.create("sticky")
    sandbox.wait_condition("sticky", "Ready", "True")
    sandbox.fault(method="DELETE", path="/v1/apps/*/volumes/*", mode="error", status=500, count=None)
    sandbox.delete("sticky")
    sandbox.wait(
        lambda: sandbox.status("sticky").get("lastDestroyErrorMessage"), what="a failed destroy step"
    )
    holding = Recorder(port).record(2).holding()
    assert "ClawDestroyBlocked" in holding, holding


@pytest.mark.slow(16)
def test_fly_429s_hold_the_rate_limited_alert(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port)
    sandbox.create("throttled")
    sandbox.wait_condition("throttled", "Ready", "True")
    recorder = Recorder(port)
    recorder.scrape()
    sandbox.fault(method="GET", path="/v1/apps/*/machines/*", mode="error", status=429, count=None)
    # rate() divides by the whole 5 minutes: more than 30 429s must be in the window (~3/s here).
    holding = recorder.record(15).holding()
    assert "ClawFlyRateLimited" in holding, holding


def test_an_operator_no_longer_scraped_holds_the_operator_down_alert(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port)
    recorder = Recorder(port).record(1)
    sandbox.stop_operators()
    evaluator = Evaluator(recorder.store)
    expr = _alerts()["ClawOperatorDown"]
    assert not evaluator.instant(expr, recorder.last)  # scraped a moment ago
    assert not evaluator.instant(expr, recorder.last + 9 * 60)
    assert evaluator.instant(expr, recorder.last + 11 * 60)  # ten minutes without a sample


class RaisingObserver:
    """The Fly edge with a bug: every observation raises (not a Fly error: a pass that raises)."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._gateway, attribute)

    async def observe(self, instance: Any) -> Any:
        raise RuntimeError("a bug in the pass")


def test_passes_that_raise_hold_the_reconcile_errors_alert(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port, gateway_hook=RaisingObserver)
    recorder = Recorder(port)
    recorder.scrape()
    sandbox.create("buggy")
    holding = recorder.record(4).holding()
    assert "ClawReconcileErrors" in holding, holding
