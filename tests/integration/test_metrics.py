"""/metrics, /healthz and /readyz of a running operator, scraped like Prometheus and a kubelet."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from claw_operator.sim.kubesim.watch import WatchStream
from tests.integration.conftest import Sandbox


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by (sample name, sorted labels)."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum over every sample of `name` whose labels include `labels`."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def test_metrics_count_what_the_run_did(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port)
    sandbox.create("metered")
    sandbox.wait_condition("metered", "Ready", "True")
    samples = sandbox.wait(
        lambda: (s := _scrape(port)) and _value(s, "claw_instances", phase="Running") == 1 and s,
        what="claw_instances{phase=Running} = 1",
    )
    assert _value(samples, "claw_reconciles_total", outcome="success") > 0
    assert _value(samples, "claw_reconcile_duration_seconds_count") > 0
    assert _value(samples, "claw_fly_requests_total", operation="create_volume", status="200") == 1
    assert _value(samples, "claw_fly_requests_total", operation="create_machine", status="200") == 1
    # Reaching Ready takes the minimum: create volume, create machine, one wait (no extra GET).
    assert _total(samples, "claw_fly_requests_total", operation="wait_machine") >= 1
    assert _total(samples, "claw_fly_request_duration_seconds_count", operation="create_machine") == 1
    assert _value(samples, "claw_instances_ready", ready="True") == 1
    assert _value(samples, "claw_instances", phase="Starting") == 0
    assert _value(samples, "claw_instance_time_to_ready_seconds_count") == 1
    assert 0 < _value(samples, "claw_instance_time_to_ready_seconds_sum") < 30
    assert _value(samples, "claw_restarts_total", reason="RestartRequested") == 0
    assert _value(samples, "claw_events_total", type="Normal", reason="Started") == 1
    # Nothing identifies an instance, and no secret shows.
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert "metered" not in text and "integration-secret" not in text
    assert sandbox.status("metered")["machineId"] not in text

    sandbox.patch("metered", {"spec": {"restartedAt": "2026-11-24T09:00:00Z"}})
    sandbox.wait_condition("metered", "Restarting", "False", "RestartSucceeded")
    samples = sandbox.wait(
        lambda: (s := _scrape(port)) and _value(s, "claw_restarts_total", reason="RestartRequested") and s,
        what="a restart counted",
    )
    assert _value(samples, "claw_restarts_total", reason="RestartRequested") == 1
    assert _value(samples, "claw_mount_repairs_total") == 0
    assert _value(samples, "claw_instance_time_to_ready_seconds_count") == 1  # a restart is not a start
    assert _total(samples, "claw_fly_requests_total", operation="stop_machine") >= 1

    sandbox.delete("metered")
    sandbox.wait_gone("metered")
    samples = sandbox.wait(
        lambda: (s := _scrape(port)) and _value(s, "claw_instances", phase="Running") == 0 and s,
        what="the deleted instance leaves the gauges",
    )
    assert _value(samples, "claw_reconciles_total", outcome="finalized") == 1
    assert _total(samples, "claw_fly_requests_total", operation="destroy_machine") >= 1
    assert _total(samples, "claw_fly_requests_total", operation="delete_volume") >= 1


def test_health_endpoints_report_ready_and_a_live_watch(sandbox: Sandbox) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port, watch_stale_after=0.5)
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    sandbox.create("healthy")
    sandbox.wait_phase("healthy", "Running")
    live = httpx.get(f"http://127.0.0.1:{port}/healthz")
    assert live.status_code == 200, live.text
    assert live.json()["alive"] is True


def test_liveness_fails_when_the_watch_goes_silent(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    sandbox.start_operator(metrics_port=port, watch_stale_after=0.5)
    sandbox.create("deafened")
    sandbox.wait_phase("deafened", "Running")
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    # The stream stays open (bookmarks and all) but delivers no change: kopf's stalled watch.
    monkeypatch.setattr(WatchStream, "translate", lambda self, change: None)
    # The periodic pass (every 0.5 s) still reads the object and writes what it decides.
    sandbox.patch("deafened", {"spec": {"restartedAt": "2026-11-24T09:00:00Z"}})
    sandbox.wait_condition("deafened", "Restarting", "False", "RestartSucceeded", timeout=30)
    dead = sandbox.wait(
        lambda: (r := httpx.get(f"http://127.0.0.1:{port}/healthz")).status_code == 500 and r,
        what="/healthz 500",
    )
    assert dead.json()["alive"] is False and dead.json()["watchOwedEventFor"] > 0.5
    # /readyz still says ready: restarting the pod is liveness' call.
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
