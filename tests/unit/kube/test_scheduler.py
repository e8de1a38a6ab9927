"""The instances' loops in one scheduler (kube/scheduler.py), on a fake clock (looptime)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from claw_operator.api import FINALIZER, PAUSED_ANNOTATION, RECONCILE_REQUEST_ANNOTATION
from claw_operator.kube.scheduler import LAST_APPLIED, MAX_BACKOFF, Entry, Ran, Scheduler, kept, trigger

pytestmark = pytest.mark.looptime


def body(uid: str = "u1", *, generation: int = 1, rv: str = "1", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": uid,
            "namespace": "ns",
            "name": f"claw-{uid}",
            "generation": generation,
            "resourceVersion": rv,
            "finalizers": [FINALIZER],
            **meta,
        },
        "spec": {},
    }


class Passes:
    """The pass the scheduler runs: records when (loop time) and on what, answers `delay`."""

    def __init__(self, delay: float | None = 10.0, duration: float = 0.0) -> None:
        self.delay = delay
        self.duration = duration
        self.calls: list[tuple[str, float, Mapping[str, Any]]] = []
        self.seen: Mapping[str, Any] | None = None
        self.parked = False
        self.fail = 0
        self.running = 0
        self.most_running = 0

    async def __call__(self, entry: Entry) -> Ran:
        loop = asyncio.get_running_loop()
        self.calls.append((entry.uid, loop.time(), entry.body))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.duration:
                await asyncio.sleep(self.duration)
            if self.fail:
                self.fail -= 1
                raise RuntimeError("boom")
            return Ran(self.delay, seen=self.seen, parked=self.parked)
        finally:
            self.running -= 1

    def times(self, uid: str = "u1") -> list[float]:
        return [round(t, 3) for u, t, _ in self.calls if u == uid]


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_first_sight_runs_a_pass_at_once_then_at_the_cadence() -> None:
    passes = Passes(delay=10.0)
    sched = Scheduler(passes)
    sched.start()
    t0 = asyncio.get_running_loop().time()
    assert sched.saw(body(), None) is True
    await settle(35)
    assert [round(t - t0, 3) for t in passes.times()] == [0, 10, 20, 30]
    await sched.close()


async def test_many_instances_share_one_timer_and_keep_their_own_cadence() -> None:
    passes = Passes(delay=8.0)
    sched = Scheduler(passes)
    sched.start()
    for i in range(100):
        sched.saw(body(f"u{i}"), None)
        await asyncio.sleep(0.05)
    await settle(20)
    for i in range(100):
        times = passes.times(f"u{i}")
        assert len(times) >= 3
        assert all(abs((b - a) - 8.0) < 1e-6 for a, b in itertools.pairwise(times))
    await sched.close()


async def test_our_own_status_writes_do_not_wake_the_loop() -> None:
    passes = Passes(delay=10.0)
    sched = Scheduler(passes)
    sched.start()
    sched.saw(body(rv="1"), None)
    await settle(1)
    for rv in range(2, 6):
        assert sched.saw({**body(rv=str(rv)), "status": {"phase": "Running"}}, "MODIFIED") is False
    await settle(5)
    assert len(passes.times()) == 1
    # …but the loop decides its next quiet check on the latest object the watch showed.
    await settle(5)
    assert passes.calls[-1][2]["metadata"]["resourceVersion"] == "5"
    await sched.close()


@pytest.mark.parametrize(
    "change",
    [
        {"generation": 2},
        {"annotations": {PAUSED_ANNOTATION: "true"}},
        {"annotations": {RECONCILE_REQUEST_ANNOTATION: "2026-01-01T00:00:00Z"}},
    ],
)
async def test_a_user_change_wakes_the_loop_at_once(change: dict[str, Any]) -> None:
    passes = Passes(delay=60.0)
    sched = Scheduler(passes)
    sched.start()
    t0 = asyncio.get_running_loop().time()
    sched.saw(body(), None)
    await settle(3)
    assert sched.saw(body(rv="2", **change), "MODIFIED") is True
    await settle(1)
    assert [round(t - t0, 3) for t in passes.times()] == [0, 3]
    await sched.close()


async def test_the_finalizer_landing_wakes_the_loop() -> None:
    passes = Passes(delay=5.0)
    sched = Scheduler(passes)
    sched.start()
    t0 = asyncio.get_running_loop().time()
    first = body()
    first["metadata"]["finalizers"] = []
    sched.saw(first, None)
    await settle(0.5)
    sched.saw(body(rv="2"), "MODIFIED")
    await settle(0.1)
    assert [round(t - t0, 3) for t in passes.times()] == [0, 0.5]
    await sched.close()


async def test_a_wake_during_a_pass_runs_one_more_pass_right_after_it() -> None:
    passes = Passes(delay=60.0, duration=2.0)
    sched = Scheduler(passes)
    sched.start()
    t0 = asyncio.get_running_loop().time()
    sched.saw(body(), None)
    await settle(1)
    sched.saw(body(generation=2, rv="2"), "MODIFIED")
    sched.saw(body(generation=3, rv="3"), "MODIFIED")  # two wakes, one pass
    await settle(10)
    assert [round(t - t0, 3) for t in passes.times()] == [0, 2]
    assert passes.most_running == 1  # never two passes of one instance at once
    await sched.close()


async def test_a_wake_for_a_change_the_pass_already_read_is_served() -> None:
    passes = Passes(delay=60.0, duration=2.0)
    passes.seen = body(generation=2, rv="2")
    sched = Scheduler(passes)
    sched.start()
    sched.saw(body(), None)
    await settle(1)
    sched.saw(body(generation=2, rv="2"), "MODIFIED")
    await settle(10)
    assert len(passes.times()) == 1
    await sched.close()


async def test_no_next_pass_when_the_pass_says_none_until_woken() -> None:
    passes = Passes(delay=None)
    sched = Scheduler(passes)
    sched.start()
    sched.saw(body(), None)
    await settle(100)
    assert len(passes.times()) == 1
    sched.saw(body(generation=2, rv="2"), "MODIFIED")
    await settle(1)
    assert len(passes.times()) == 2
    await sched.close()


async def test_deletion_stops_the_loop_and_stop_waits_for_the_running_pass() -> None:
    passes = Passes(delay=5.0, duration=3.0)
    sched = Scheduler(passes)
    sched.start()
    sched.saw(body(), None)
    await settle(1)
    assert passes.running == 1
    assert sched.saw(body(rv="2", deletionTimestamp="2026-01-01T00:00:00Z"), "MODIFIED") is False
    loop = asyncio.get_running_loop()
    t = loop.time()
    await sched.stop("u1")
    assert passes.running == 0
    assert round(loop.time() - t, 3) == 2.0
    await settle(30)
    assert len(passes.times()) == 1
    sched.wake("u1")
    await settle(1)
    assert len(passes.times()) == 1
    await sched.close()


async def test_an_instance_first_seen_being_deleted_gets_no_loop_pass() -> None:
    passes = Passes()
    sched = Scheduler(passes)
    sched.start()
    sched.saw(body(deletionTimestamp="2026-01-01T00:00:00Z"), None)
    await settle(30)
    assert passes.calls == []
    await sched.close()


async def test_deleted_event_forgets_the_instance() -> None:
    passes = Passes(delay=5.0)
    sched = Scheduler(passes)
    sched.start()
    sched.saw(body(), None)
    await settle(1)
    sched.saw(body(rv="9"), "DELETED")
    assert "u1" not in sched and len(sched) == 0
    await settle(30)
    assert len(passes.times()) == 1
    await sched.close()


async def test_forgotten_during_its_pass_is_not_rescheduled() -> None:
    passes = Passes(delay=5.0, duration=2.0)
    sched = Scheduler(passes)
    sched.start()
    sched.saw(body(), None)
    await settle(1)
    sched.forget("u1")
    await settle(30)
    assert len(passes.times()) == 1
    await sched.close()


async def test_a_failing_pass_backs_off_exponentially_then_recovers() -> None:
    passes = Passes(delay=100.0)
    passes.fail = 3
    sched = Scheduler(passes, rng=lambda: 0.5)  # no jitter
    sched.start()
    t0 = asyncio.get_running_loop().time()
    sched.saw(body(), None)
    await settle(150)
    assert [round(t - t0, 3) for t in passes.times()] == [0, 1, 3, 7, 107]
    assert MAX_BACKOFF == 60.0
    await sched.close()


async def test_parked_instances_wake_when_the_ring_changes() -> None:
    passes = Passes(delay=15.0)
    passes.parked = True
    sched = Scheduler(passes)
    sched.start()
    t0 = asyncio.get_running_loop().time()
    sched.saw(body("a"), None)
    sched.saw(body("b"), None)
    await settle(2)
    passes.parked = False
    sched.wake_parked()
    await settle(1)
    assert [round(t - t0, 3) for t in passes.times("a")] == [0, 2]
    sched.wake_parked()  # nobody parked any more
    await settle(1)
    assert len(passes.times("a")) == 2 and len(passes.times("b")) == 2
    await sched.close()


async def test_close_starts_nothing_more_and_waits_for_running_passes() -> None:
    passes = Passes(delay=0.5, duration=2.0)
    sched = Scheduler(passes)
    sched.start()
    for i in range(10):
        sched.saw(body(f"u{i}"), None)
    await settle(1)
    assert passes.running == 10
    await sched.close()
    assert passes.running == 0
    count = len(passes.calls)
    sched.saw(body("late"), None)
    sched.wake("u1")
    await settle(30)
    assert len(passes.calls) == count


def test_trigger_ignores_status_and_resource_version() -> None:
    a = body(rv="1")
    b = {**body(rv="2"), "status": {"phase": "Running"}}
    assert trigger(a) == trigger(b)
    assert trigger(a) != trigger(body(generation=2))
    no_finalizer = body()
    no_finalizer["metadata"]["finalizers"] = []
    assert trigger(a) != trigger(no_finalizer)


def test_the_kept_object_leaves_out_what_no_pass_reads_and_shares_spec_and_status() -> None:
    watched = body(
        managedFields=[{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        annotations={LAST_APPLIED: '{"big": "copy"}', PAUSED_ANNOTATION: "true"},
    )
    watched["status"] = {"phase": "Running"}
    original = {**watched, "metadata": {**watched["metadata"]}}
    obj = kept(watched)
    assert "managedFields" not in obj["metadata"]
    assert obj["metadata"]["annotations"] == {PAUSED_ANNOTATION: "true"}
    assert obj["spec"] is watched["spec"] and obj["status"] is watched["status"]  # Parsed's identity
    assert {k: v for k, v in obj["metadata"].items() if k != "annotations"} == {
        k: v for k, v in watched["metadata"].items() if k not in ("annotations", "managedFields")
    }
    assert watched == original  # the watched object is not changed
    plain = body()
    assert kept(plain)["metadata"] is plain["metadata"]  # nothing to leave out: not copied


async def test_an_entry_keeps_the_slim_object() -> None:
    passes = Passes()
    scheduler = Scheduler(passes)
    watched = body(managedFields=[{"manager": "m"}])
    scheduler.saw(watched)
    entry = scheduler.entry("u1")
    assert entry is not None
    assert "managedFields" not in entry.body["metadata"]
    assert entry.body["spec"] is watched["spec"]
    updated = body(rv="2", managedFields=[{"manager": "m"}])
    scheduler.saw(updated)
    assert "managedFields" not in entry.body["metadata"]
    assert entry.body["metadata"]["resourceVersion"] == "2"
