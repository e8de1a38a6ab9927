"""OperatorMetrics: what the watch stream and the hooks do to the metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from claw_operator.fly.observe import FlyRequest
from claw_operator.kube.metrics import OperatorMetrics
from claw_operator.lifecycle.model import EventRecord, EventType, RestartReason

CREATED = "2026-11-24T08:00:00Z"
CREATED_TS = 1795507200.0  # CREATED as Unix time


def body(uid: str, phase: str | None = None, ready: str | None = None, **status: Any) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": ready}] if ready else []
    return {
        "metadata": {"uid": uid, "name": "secret-name", "creationTimestamp": CREATED},
        "status": {"phase": phase, "conditions": conditions, **status} if phase else {},
    }


def samples(metrics: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class Clock:
    now = CREATED_TS

    def __call__(self) -> float:
        return self.now


def test_time_to_ready_is_observed_once_from_creation() -> None:
    clock = Clock()
    metrics = OperatorMetrics(clock=clock)
    metrics.observe_watch_event("ADDED", body("u1"))
    clock.now += 7
    metrics.observe_watch_event("MODIFIED", body("u1", "Starting", "False"))
    clock.now += 5
    metrics.observe_watch_event("MODIFIED", body("u1", "Running", "True"))
    # A restart later: Ready goes False and True again, which is not a start.
    metrics.observe_watch_event("MODIFIED", body("u1", "Running", "False", lastStartedAt=CREATED))
    clock.now += 30
    metrics.observe_watch_event("MODIFIED", body("u1", "Running", "True", lastStartedAt=CREATED))
    s = samples(metrics)
    assert s[("claw_instance_time_to_ready_seconds_count", ())] == 1
    assert s[("claw_instance_time_to_ready_seconds_sum", ())] == 12


def test_instances_already_started_when_first_seen_never_count_towards_time_to_ready() -> None:
    clock = Clock()
    clock.now += 3600
    metrics = OperatorMetrics(clock=clock)
    metrics.observe_watch_event(None, body("ready", "Running", "True"))
    metrics.observe_watch_event(None, body("restarting", "Running", "False", lastStartedAt=CREATED))
    metrics.observe_watch_event("MODIFIED", body("restarting", "Running", "True", lastStartedAt=CREATED))
    assert samples(metrics)[("claw_instance_time_to_ready_seconds_count", ())] == 0


def test_gauges_by_phase_and_ready_follow_the_watch_and_never_name_an_instance() -> None:
    metrics = OperatorMetrics()
    metrics.observe_watch_event(None, body("u1", "Running", "True"))
    metrics.observe_watch_event(None, body("u2", "Stopped", "False"))
    metrics.observe_watch_event("ADDED", body("u3"))
    s = samples(metrics)
    assert s[("claw_instances", (("phase", "Running"),))] == 1
    assert s[("claw_instances", (("phase", "Stopped"),))] == 1
    assert s[("claw_instances", (("phase", "None"),))] == 1
    assert s[("claw_instances", (("phase", "Destroying"),))] == 0
    assert s[("claw_instances_ready", (("ready", "True"),))] == 1
    assert s[("claw_instances_ready", (("ready", "Unknown"),))] == 1
    metrics.observe_watch_event("DELETED", body("u1", "Running", "True"))
    assert samples(metrics)[("claw_instances", (("phase", "Running"),))] == 0
    assert b"secret-name" not in metrics.exposition() and b"u2" not in metrics.exposition()


def test_hooks_move_their_counters() -> None:
    metrics = OperatorMetrics()
    route = "/v1/apps/{app}/machines"
    metrics.observe_fly_request(FlyRequest("create_machine", "POST", route, 201, 0.2))
    metrics.observe_fly_request(FlyRequest("create_machine", "POST", route, None, 5, "Timeout"))
    metrics.observe_fly_request(FlyRequest("create_machine", "POST", route, 201, 0.3))
    metrics.observe_restart(RestartReason.MOUNT_REPAIR, succeeded=True)
    metrics.observe_restart(RestartReason.REQUESTED, succeeded=False)
    metrics.observe_event(EventRecord(type=EventType.WARNING, reason="StartFailed", message="x"))
    metrics.observe_reconcile("success", 0.5)
    s = samples(metrics)
    assert s[("claw_fly_requests_total", (("operation", "create_machine"), ("status", "201")))] == 2
    assert s[("claw_fly_requests_total", (("operation", "create_machine"), ("status", "error")))] == 1
    assert s[("claw_fly_request_duration_seconds_count", (("operation", "create_machine"),))] == 3
    assert s[("claw_fly_request_duration_seconds_sum", (("operation", "create_machine"),))] == 5.5
    assert s[("claw_restarts_total", (("reason", "MountRepair"),))] == 1
    assert s[("claw_mount_repairs_total", ())] == 1
    assert s[("claw_restart_failures_total", (("reason", "RestartRequested"),))] == 1
    assert s[("claw_events_total", (("reason", "StartFailed"), ("type", "Warning")))] == 1
    assert s[("claw_reconciles_total", (("outcome", "success"),))] == 1
    assert s[("claw_reconciles_total", (("outcome", "error"),))] == 0


def test_each_operator_has_its_own_registry() -> None:
    first, second = OperatorMetrics(), OperatorMetrics()
    first.observe_reconcile("success", 0.1)
    assert samples(second)[("claw_reconciles_total", (("outcome", "success"),))] == 0


def test_conditions_and_failing_destroys_are_counted_from_the_watch() -> None:
    metrics = OperatorMetrics()
    stalled = body("u1", "Stopped", "False")
    stalled["status"]["conditions"].append({"type": "Stalled", "status": "True"})
    metrics.observe_watch_event("ADDED", stalled)
    metrics.observe_watch_event("ADDED", body("u2", "Running", "True"))
    deleting = body("u3", "Destroying", "False", lastDestroyErrorMessage="volume busy")
    deleting["metadata"]["deletionTimestamp"] = CREATED
    metrics.observe_watch_event("MODIFIED", deleting)
    s = samples(metrics)
    assert s[("claw_instances_condition", (("condition", "Stalled"), ("status", "True")))] == 1
    assert s[("claw_instances_condition", (("condition", "Stalled"), ("status", "Unknown")))] == 2
    assert s[("claw_instances_condition", (("condition", "Ready"), ("status", "True")))] == 1
    assert s[("claw_instances_destroy_failing", ())] == 1
    metrics.observe_watch_event("DELETED", deleting)
    assert samples(metrics)[("claw_instances_destroy_failing", ())] == 0


def test_the_watch_debt_and_the_process_are_exported() -> None:
    metrics = OperatorMetrics()
    owed: list[float | None] = [None]
    metrics.track_watch_health(lambda: owed[0])
    assert samples(metrics)[("claw_watch_owed_event_seconds", ())] == 0
    owed[0] = 42.5
    s = samples(metrics)
    assert s[("claw_watch_owed_event_seconds", ())] == 42.5
    assert s[("process_resident_memory_bytes", ())] > 0
    assert ("process_cpu_seconds_total", ()) in s
