"""A check decided on the watched object (`Reconciler._quiet_pass`): it ends without a
Kubernetes request when it would do nothing; otherwise the object is read fresh, and the Fly
observation is re-used only when the fresh resourceVersion is the watched one."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any, cast

from claw_operator.api import FINALIZER
from claw_operator.edge.env import env_digest
from claw_operator.kube.kubeapi import KubeApi, StatusConflict
from claw_operator.kube.reconciler import Reconciler
from claw_operator.lifecycle.model import Instance, Lookup, MachineLookup, Observation, Timings
from tests.unit.lifecycle.builders import machine, running_status, spec

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakeKube:
    """One ClawInstance; counts the requests the reconciler makes."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.gets = 0
        self.writes = 0

    async def get_instance(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return copy.deepcopy(self.obj)

    async def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        if obj["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise StatusConflict("conflict")
        rv = str(int(self.obj["metadata"]["resourceVersion"]) + 1)
        self.obj = {**self.obj, "status": status, "metadata": {**self.obj["metadata"], "resourceVersion": rv}}
        return copy.deepcopy(self.obj)


class FakeFly:
    """Fly holds a started machine that matches the spec."""

    def __init__(self) -> None:
        self.observed = 0

    async def observe(self, instance: Instance) -> Observation:
        self.observed += 1
        return Observation(
            machine=MachineLookup(Lookup.FOUND, machine("started", env_digest=instance.env_digest))
        )

    async def execute(self, *args: Any) -> Any:
        raise AssertionError("no action expected")


async def _no_events(obj: dict[str, Any], event: Any) -> None:
    raise AssertionError("no Event expected")


def _settled(**options: Any) -> tuple[Reconciler, FakeKube, FakeFly]:
    """A Running instance whose status is what a check decides (runs until no more writes)."""
    status = running_status(volume_size_gb=10, env_digest=env_digest({}))
    obj = {
        "apiVersion": "claw.dev/v1alpha1",
        "kind": "ClawInstance",
        "metadata": {
            "name": "claw-a",
            "namespace": "default",
            "uid": "u1",
            "generation": 1,
            "resourceVersion": "1",
            "finalizers": [FINALIZER],
            "creationTimestamp": "2020-01-01T00:00:00Z",
        },
        "spec": spec().model_dump(by_alias=True, mode="json", exclude_none=True),
        "status": status.to_wire(),
    }
    kube, fly = FakeKube(obj), FakeFly()
    reconciler = Reconciler(
        cast(KubeApi, kube),
        fly,
        fly,
        _no_events,
        timings=Timings(),
        default_app="claw-app",
        clock=lambda: NOW,
        **options,
    )
    for _ in range(3):
        writes = kube.writes
        asyncio.run(reconciler.reconcile("default", "claw-a"))
        if kube.writes == writes:
            break
    kube.gets = kube.writes = fly.observed = 0
    return reconciler, kube, fly


def test_a_check_with_nothing_to_do_makes_no_kubernetes_request() -> None:
    reconciler, kube, fly = _settled()
    watched = copy.deepcopy(kube.obj)
    outcome = asyncio.run(reconciler.reconcile("default", "claw-a", watched=watched))
    assert (kube.gets, kube.writes, fly.observed) == (0, 0, 1)
    assert outcome.requeue_after is not None and outcome.requeue_after > 0
    assert watched == kube.obj  # only read


def test_a_watched_object_behind_reads_fresh_and_reuses_fly_at_the_same_version() -> None:
    reconciler, kube, fly = _settled()
    # Same resourceVersion, a status the check would change (as if the watch were behind):
    # read fresh; the fresh object is the watched version, so Fly is not observed again.
    watched = copy.deepcopy(kube.obj)
    watched["status"]["machineState"] = "starting"
    asyncio.run(reconciler.reconcile("default", "claw-a", watched=watched))
    assert (kube.gets, kube.writes, fly.observed) == (1, 0, 1)


def test_a_watched_object_of_another_version_is_observed_again() -> None:
    reconciler, kube, fly = _settled()
    watched = copy.deepcopy(kube.obj)
    watched["status"]["machineState"] = "starting"
    watched["metadata"]["resourceVersion"] = "0"
    asyncio.run(reconciler.reconcile("default", "claw-a", watched=watched))
    assert (kube.gets, kube.writes, fly.observed) == (1, 0, 2)


def test_a_deleting_watched_object_is_left_to_the_fresh_read() -> None:
    reconciler, kube, fly = _settled()
    watched = copy.deepcopy(kube.obj)
    watched["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    asyncio.run(reconciler.reconcile("default", "claw-a", watched=watched))
    assert (kube.gets, fly.observed) == (1, 1)


def test_a_watch_that_went_deaf_is_overtaken_by_a_fresh_read_every_fresh_every() -> None:
    """With `fresh_every`, a check reads fresh when the instance was last read fresh longer ago
    than that: a deaf watch delivers no edit, only a fresh read sees it."""
    now = [100.0]
    reconciler, kube, _fly = _settled(fresh_every=60.0, monotonic=lambda: now[0])
    watched = copy.deepcopy(kube.obj)
    now[0] += 59.0
    asyncio.run(reconciler.reconcile("default", "claw-a", watched=watched))
    assert kube.gets == 0  # within the bound: the watched object decides
    now[0] += 2.0
    asyncio.run(reconciler.reconcile("default", "claw-a", watched=watched))
    assert kube.gets == 1  # past it: read fresh
    now[0] += 30.0
    asyncio.run(reconciler.reconcile("default", "claw-a", watched=watched))
    assert kube.gets == 1  # the fresh read restarted the bound


def test_a_process_reads_each_instance_fresh_before_its_first_quiet_check() -> None:
    _reconciler, kube, fly = _settled(fresh_every=60.0)
    fresh = Reconciler(
        cast(KubeApi, kube),
        fly,
        fly,
        _no_events,
        timings=Timings(),
        default_app="claw-app",
        clock=lambda: NOW,
        fresh_every=60.0,
    )
    asyncio.run(fresh.reconcile("default", "claw-a", watched=copy.deepcopy(kube.obj)))
    assert kube.gets == 1


def _decided(status: Any) -> Any:
    from claw_operator.lifecycle.model import Decision

    return Decision(status=status, requeue_after=10.0)


def test_unchanged_compares_models_when_the_persisted_status_round_trips() -> None:
    from claw_operator.kube.instance import parse
    from claw_operator.kube.reconciler import StatusWriter

    wire = running_status().to_wire()
    obj = {"metadata": {"resourceVersion": "3"}, "spec": spec().to_wire(), "status": wire}
    parsed = parse(obj)
    assert parsed.status_is_canonical
    writer = StatusWriter(cast(KubeApi, None), _no_events, obj)
    assert writer.unchanged(_decided(parsed.status.model_copy(deep=True)), parsed)
    assert not writer.unchanged(_decided(running_status(machine_state="stopped")), parsed)


def test_unchanged_renders_the_status_when_the_persisted_one_does_not_round_trip() -> None:
    """A persisted status the model does not write back verbatim (a field the model drops, a
    time in another form): equal models are not proof, the wire forms decide."""
    from claw_operator.kube.instance import parse
    from claw_operator.kube.reconciler import StatusWriter

    wire = running_status().to_wire()
    odd = {**wire, "lastStartedAt": wire["lastStartedAt"].replace("Z", "+00:00")}
    obj = {"metadata": {"resourceVersion": "3"}, "spec": spec().to_wire(), "status": odd}
    parsed = parse(obj)
    assert not parsed.status_is_canonical
    writer = StatusWriter(cast(KubeApi, None), _no_events, obj)
    decided = _decided(parsed.status.model_copy(deep=True))
    assert decided.status == parsed.status
    assert not writer.unchanged(decided, parsed)  # the write would canonicalise the time
    # Without the parsed status, the same answer the long way.
    assert not writer.unchanged(decided)
    # A status parsed from another object is not used.
    other = parse({**obj, "status": dict(wire)})
    assert writer.unchanged(_decided(other.status), other) is (other.status.to_wire() == odd)
