"""The operator's Prometheus metrics, in a registry of its own (one per operator instance).

Labels are bounded sets only: outcomes, Fly operations and HTTP statuses, phases, condition
statuses, restart reasons, Event reasons. Never an instance name, a Fly id or a token.

Instances by phase and by Ready, and time-to-Ready, come from the watch stream (what the
cluster says), so they cover every ClawInstance the operator sees, reconciled yet or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from claw_operator.api.conditions import CONDITION_TYPES
from claw_operator.api.status import Phase
from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.fly.observe import FlyRequest
from claw_operator.lifecycle.model import EventRecord, RestartReason

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Reconcile outcomes (the `outcome` label of claw_reconciles_total).
SUCCESS = "success"  # the pass settled; the next one is at the phase's cadence
RETRY = "retry"  # a Fly call failed; retrying with backoff
CONFLICT = "conflict"  # status writes kept conflicting; re-read later
FINALIZED = "finalized"  # the destroy is complete; the finalizer is released
SKIPPED = "skipped"  # nothing to do: the object is gone, or awaits its finalizer
ERROR = "error"  # the pass raised

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_TIME_TO_READY_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
_READY_VALUES = ("True", "False", "Unknown")
# The contract's Warning Events (clawinstance-api.md), exported at 0 from the start: a counter
# that first appears at 1 has no increase() and no rate(), so an alert on the first
# StartFailed or CrashLoopBackOff would never fire.
WARNING_EVENT_REASONS = (
    "StartFailed",
    "StartTimeout",
    "RestartFailed",
    "MachineLost",
    "VolumeLost",
    "CrashLoopBackOff",
    "Unhealthy",
    "DestroyFailed",
)


@dataclass
class _Seen:
    phase: str
    ready: str
    ever_ready: bool  # Ready was True at some point (or the instance had started before we saw it)
    conditions: dict[str, str] = field(default_factory=dict)  # type -> status
    destroy_failing: bool = False  # being deleted, and its last destroy step failed


def _parse_time(value: str | None) -> float | None:
    parsed = parse_rfc3339(value)
    return parsed.timestamp() if parsed is not None else None


def _ready_of(status: Mapping[str, Any]) -> str:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status") or "Unknown")
    return "Unknown"


def _conditions_of(status: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(cond.get("type")): str(cond.get("status") or "Unknown")
        for cond in status.get("conditions") or []
        if cond.get("type") in CONDITION_TYPES
    }


class _InstancesCollector(Collector):
    """claw_instances{phase}, claw_instances_ready{ready}, claw_instances_condition{condition,status}
    and claw_instances_destroy_failing, computed at scrape time."""

    def __init__(self, seen: Mapping[str, _Seen]) -> None:
        self._seen = seen

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_phase = GaugeMetricFamily(
            "claw_instances", "ClawInstances by status.phase (None: not reconciled yet)", labels=["phase"]
        )
        by_ready = GaugeMetricFamily(
            "claw_instances_ready", "ClawInstances by Ready condition", labels=["ready"]
        )
        by_condition = GaugeMetricFamily(
            "claw_instances_condition",
            "ClawInstances by condition type and status (a condition not written yet counts as Unknown)",
            labels=["condition", "status"],
        )
        destroy_failing = GaugeMetricFamily(
            "claw_instances_destroy_failing",
            "ClawInstances being deleted whose last destroy step failed (their finalizer holds them)",
        )
        seen = list(self._seen.values())
        phases = [p.value for p in Phase] + ["None"]
        for phase in phases:
            by_phase.add_metric([phase], sum(1 for s in seen if s.phase == phase))
        for ready in _READY_VALUES:
            by_ready.add_metric([ready], sum(1 for s in seen if s.ready == ready))
        for type_ in CONDITION_TYPES:
            for value in _READY_VALUES:
                count = sum(1 for s in seen if s.conditions.get(type_, "Unknown") == value)
                by_condition.add_metric([type_, value], count)
        destroy_failing.add_metric([], sum(1 for s in seen if s.destroy_failing))
        yield by_phase
        yield by_ready
        yield by_condition
        yield destroy_failing


class OperatorMetrics:
    """Every metric of one operator instance, and the hooks that move them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconciles = Counter(
            "claw_reconciles", "Reconciles (runs of passes) by outcome", ["outcome"], registry=r
        )
        self.reconcile_duration = Histogram(
            "claw_reconcile_duration_seconds",
            "Duration of one reconcile (all its passes, Fly calls included)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.fly_requests = Counter(
            "claw_fly_requests",
            "HTTP exchanges with the Fly Machines API by operation and status (error: no answer)",
            ["operation", "status"],
            registry=r,
        )
        self.fly_latency = Histogram(
            "claw_fly_request_duration_seconds",
            "Latency of one HTTP exchange with the Fly Machines API",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # (operation, status) -> the children of fly_requests and fly_latency it counts in.
        self._fly_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.time_to_ready = Histogram(
            "claw_instance_time_to_ready_seconds",
            "From a ClawInstance's creation to its first Ready=True",
            buckets=_TIME_TO_READY_BUCKETS,
            registry=r,
        )
        self.restarts = Counter(
            "claw_restarts", "Completed machine restarts by reason", ["reason"], registry=r
        )
        self.restart_failures = Counter(
            "claw_restart_failures", "Failed machine restarts by reason", ["reason"], registry=r
        )
        self.mount_repairs = Counter(
            "claw_mount_repairs",
            "Machines whose mount was repaired (a restart onto the right volume)",
            registry=r,
        )
        self.events = Counter(
            "claw_events", "Kubernetes Events posted by type and reason", ["type", "reason"], registry=r
        )
        self.watch_last_event = Gauge(
            "claw_watch_last_event_timestamp_seconds",
            "When the ClawInstance watch stream last delivered an event (Unix time)",
            registry=r,
        )
        self.watch_owed_event = Gauge(
            "claw_watch_owed_event_seconds",
            "How long the watch stream has owed an event the operator caused (0: owes none); "
            "/healthz fails past --watch-stale-after",
            registry=r,
        )
        # The operator process itself: CPU seconds, resident memory, open file descriptors.
        ProcessCollector(registry=r)
        self._seen: dict[str, _Seen] = {}
        r.register(_InstancesCollector(self._seen))
        for reason in RestartReason:
            self.restarts.labels(reason.value)
            self.restart_failures.labels(reason.value)
        for outcome in (SUCCESS, RETRY, CONFLICT, FINALIZED, SKIPPED, ERROR):
            self.reconciles.labels(outcome)
        for warning in WARNING_EVENT_REASONS:
            self.events.labels("Warning", warning)

    def track_watch_health(self, owed_for: Callable[[], float | None]) -> None:
        """Report `owed_for()` (seconds, None = nothing owed) at each scrape."""
        self.watch_owed_event.set_function(lambda: owed_for() or 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # ------------------------------------------------------------------ hooks

    def observe_reconcile(self, outcome: str, seconds: float) -> None:
        self.reconciles.labels(outcome).inc()
        self.reconcile_duration.observe(seconds)

    def observe_fly_request(self, request: FlyRequest) -> None:
        status = str(request.status) if request.status is not None else "error"
        # `labels()` validates and looks its child up under a lock: one lookup of our own per
        # call instead (a few percent of a periodic check, issue 13); the children are the same.
        children = self._fly_children.get((request.operation, status))
        if children is None:
            children = (
                self.fly_requests.labels(request.operation, status),
                self.fly_latency.labels(request.operation),
            )
            self._fly_children[(request.operation, status)] = children
        children[0].inc()
        children[1].observe(request.duration)

    def observe_restart(self, reason: RestartReason, *, succeeded: bool) -> None:
        if succeeded:
            self.restarts.labels(reason.value).inc()
            if reason is RestartReason.MOUNT_REPAIR:
                self.mount_repairs.inc()
        else:
            self.restart_failures.labels(reason.value).inc()

    def observe_event(self, event: EventRecord) -> None:
        self.events.labels(event.type.value, event.reason).inc()

    def retain(self, watched: Callable[[str], bool]) -> None:
        """Count only the instances the watch still selects (a server-side shard selector
        narrowed: the others are another replica's, and their events never come here again)."""
        for uid in [u for u in self._seen if not watched(u)]:
            del self._seen[uid]

    def observe_watch_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """One ClawInstance watch event: the phase/Ready gauges and time-to-Ready."""
        now = self._clock()
        self.watch_last_event.set(now)
        meta = body.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return
        if event_type == "DELETED":
            self._seen.pop(uid, None)
            return
        status = body.get("status") or {}
        phase = str(status.get("phase") or "None")
        ready = _ready_of(status)
        previous = self._seen.get(uid)
        if previous is None:
            # First sight (a new object, or the operator's start): an instance that started
            # before never counts towards time-to-Ready.
            ever_ready = ready == "True" or bool(status.get("lastStartedAt"))
            previous = self._seen[uid] = _Seen(phase, ready, ever_ready)
        if ready == "True" and not previous.ever_ready:
            created = _parse_time(meta.get("creationTimestamp"))
            if created is not None:
                self.time_to_ready.observe(max(0.0, now - created))
            previous.ever_ready = True
        previous.phase, previous.ready = phase, ready
        previous.conditions = _conditions_of(status)
        previous.destroy_failing = bool(meta.get("deletionTimestamp")) and bool(
            status.get("lastDestroyErrorMessage")
        )
