"""Liveness: a silent watch is only a symptom when it owes an event."""

from __future__ import annotations

from claw_operator.kube.health import WatchHealth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_cluster_stays_alive_however_long_the_silence() -> None:
    clock = Clock()
    health = WatchHealth(stale_after=600, clock=clock)
    health.event_received("uid-1", "5")
    clock.now += 86_400
    assert health.alive() and health.silent_for() is None


def test_a_write_not_echoed_past_the_bound_fails_liveness() -> None:
    clock = Clock()
    health = WatchHealth(stale_after=600, clock=clock)
    health.change_made("uid-1", "10")
    clock.now += 600
    assert health.alive()
    clock.now += 1
    assert not health.alive()
    assert health.report()["alive"] is False


def test_only_the_echo_of_the_write_or_a_later_event_settles_it() -> None:
    clock = Clock()
    health = WatchHealth(stale_after=1, clock=clock)
    health.change_made("uid-1", "10")
    health.event_received("uid-1", "9")  # an older change, delivered late
    health.event_received("uid-2", "11")  # another object
    clock.now += 2
    assert not health.alive()
    health.event_received("uid-1", "12")
    assert health.alive()


def test_the_oldest_unechoed_write_counts() -> None:
    clock = Clock()
    health = WatchHealth(stale_after=5, clock=clock)
    health.change_made("uid-1", "10")
    clock.now += 3
    health.change_made("uid-1", "11")  # still owed since the first write
    clock.now += 3
    assert not health.alive()


def test_a_deleted_object_owes_nothing() -> None:
    clock = Clock()
    health = WatchHealth(stale_after=1, clock=clock)
    health.change_made("uid-1", "10")
    health.forget("uid-1")
    clock.now += 5
    assert health.alive()
