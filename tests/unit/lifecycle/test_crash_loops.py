"""Crash loops (issue 12, part 2): what is a crash, how long the next start waits, what the
status says meanwhile, and when the loop is over."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from claw_operator.api import Phase
from claw_operator.lifecycle.crashes import crash_delay
from claw_operator.lifecycle.model import AwaitState, StartMachine, Timings
from tests.unit.lifecycle.builders import (
    MACHINE,
    T0,
    TIMINGS,
    VOLUME,
    Case,
    check,
    conditions,
    machine,
    observed,
    ok,
    run,
    running,
    starting,
    stopped,
)

SOON = T0 - timedelta(seconds=60)  # well within the 10 min crash window
LONG_AGO = T0 - TIMINGS.crash_window - timedelta(minutes=1)

LOOPING = conditions(
    Ready=("False", "CrashLoopBackOff"),
    Reconciling=("True", "Starting"),
    Stalled=("False", "NotStalled"),
    StartFailed=("True", "CrashLoopBackOff"),
    MountRepaired=("False", "NoRepair"),
    Restarting=("False", "NotRestarting"),
)


def waiting(crashes: int, crashed_ago: float, **overrides: Any) -> Any:
    """Stopped after its `crashes`-th crash, `crashed_ago` seconds ago."""
    data: dict[str, Any] = {
        "machine_state": "stopped",
        "last_started_at": T0 - timedelta(seconds=crashed_ago + 30),
        "crash_count": crashes,
        "last_crash_at": T0 - timedelta(seconds=crashed_ago),
        "conditions": LOOPING,
    }
    return stopped(**{**data, **overrides})


CASES = [
    # ------------------------------------------------------------------ what is a crash
    Case(
        "failed_soon_after_its_start_is_a_crash_and_waits_its_backoff",
        running(last_started_at=SOON),
        observed(machine("failed")),
        action=None,
        phase=Phase.STOPPED,
        events=("CrashLoopBackOff",),
        conditions={"StartFailed": ("True", "CrashLoopBackOff"), "Ready": ("False", "CrashLoopBackOff")},
        fields={"crash_count": 1, "last_crash_at": T0},
        logs=("crash_loop_back_off",),
        requeue_after=10.0,
        retry=False,
    ),
    Case(
        "failed_after_a_long_run_is_not_a_crash_and_starts_at_once",
        running(last_started_at=LONG_AGO),
        observed(machine("failed")),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        events=("Stopped",),
        fields={"crash_count": 0, "last_crash_at": None},
    ),
    Case(
        "stopped_on_the_threshold_check_soon_after_its_start_is_a_crash",
        running(last_started_at=SOON, stopped_checks=TIMINGS.stopped_threshold - 1),
        observed(machine("stopped", exited_at=T0 - timedelta(seconds=20))),
        action=None,
        phase=Phase.STOPPED,
        events=("CrashLoopBackOff",),
        fields={"crash_count": 1, "stopped_checks": 0},
        logs=("mark_stopped", "crash_loop_back_off"),
        requeue_after=10.0,
    ),
    Case(
        "stopped_sightings_below_the_threshold_are_not_a_crash_yet",
        running(last_started_at=SOON, stopped_checks=1),
        observed(machine("stopped")),
        action=None,
        phase=Phase.RUNNING,
        events=(),
        fields={"crash_count": 0, "stopped_checks": 2},
    ),
    Case(
        "the_stop_time_is_flys_exit_event_so_a_late_sighting_still_counts",
        running(last_started_at=T0 - timedelta(minutes=30), stopped_checks=TIMINGS.stopped_threshold - 1),
        observed(machine("stopped", exited_at=T0 - timedelta(minutes=29))),
        action=None,
        events=("CrashLoopBackOff",),
        fields={"crash_count": 1},
    ),
    Case(
        "a_requested_stop_soon_after_the_start_is_no_crash",
        # No exit of its own after the start (a `fly machine stop`): the ordinary sighting.
        running(last_started_at=SOON, stopped_checks=TIMINGS.stopped_threshold - 1),
        observed(machine("stopped", updated_at=T0 - timedelta(seconds=20))),
        action=None,
        phase=Phase.STOPPED,
        events=("Stopped",),
        fields={"crash_count": 0},
        requeue_after=0,
    ),
    Case(
        "an_exit_before_the_start_is_no_crash_of_this_run",
        running(last_started_at=SOON, stopped_checks=TIMINGS.stopped_threshold - 1),
        observed(machine("stopped", exited_at=SOON - timedelta(seconds=5))),
        events=("Stopped",),
        fields={"crash_count": 0},
    ),
    Case(
        "a_stop_after_a_long_run_is_the_ordinary_stopped_sighting",
        running(last_started_at=LONG_AGO, stopped_checks=TIMINGS.stopped_threshold - 1),
        observed(machine("stopped", exited_at=T0 - timedelta(seconds=5))),
        action=None,
        phase=Phase.STOPPED,
        events=("Stopped",),
        fields={"crash_count": 0},
        requeue_after=0,
    ),
    Case(
        "stopped_while_starting_after_an_exit_of_its_own_is_a_crash_at_boot",
        starting(),
        observed(machine("stopped", exited_at=T0 - timedelta(seconds=10))),
        action=None,
        phase=Phase.STOPPED,
        events=("CrashLoopBackOff",),
        conditions={"StartFailed": ("True", "CrashLoopBackOff"), "Stalled": ("False", "NotStalled")},
        fields={"crash_count": 1},
        requeue_after=10.0,
    ),
    Case(
        "stopped_while_starting_unchanged_since_the_start_is_a_start_that_never_took",
        starting(),
        observed(machine("stopped", exited_at=T0 - timedelta(seconds=90))),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        fields={"crash_count": 0},
    ),
    Case(
        "stopped_while_starting_changed_by_fly_but_never_exited_is_not_a_crash",
        starting(),
        observed(machine("stopped", updated_at=T0 - timedelta(seconds=5))),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        fields={"crash_count": 0},
    ),
    Case(
        "the_next_crash_doubles_the_wait",
        running(
            last_started_at=SOON, crash_count=2, last_crash_at=T0 - timedelta(minutes=2), conditions=LOOPING
        ),
        observed(machine("failed")),
        action=None,
        fields={"crash_count": 3},
        requeue_after=40.0,
    ),
    # ------------------------------------------------------------------ the wait
    Case(
        "the_start_waits_for_the_backoff",
        waiting(crashes=2, crashed_ago=5),
        observed(machine("stopped")),
        action=None,
        phase=Phase.STOPPED,
        conditions={"Ready": ("False", "CrashLoopBackOff"), "StartFailed": ("True", "CrashLoopBackOff")},
        logs=("crash_loop_wait",),
        requeue_after=15.0,
        events=(),
    ),
    Case(
        "a_failed_machine_waits_for_the_backoff_too",
        waiting(crashes=1, crashed_ago=4, machine_state="failed"),
        observed(machine("failed")),
        action=None,
        requeue_after=6.0,
        events=(),
    ),
    Case(
        "the_start_goes_once_the_backoff_has_passed",
        waiting(crashes=2, crashed_ago=21),
        observed(machine("stopped")),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        fields={"crash_count": 2},
    ),
    Case(
        "a_change_of_the_spec_is_started_without_waiting",
        waiting(crashes=3, crashed_ago=1),
        observed(machine("stopped", image="registry.fly.io/claw:0.9")),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
    ),
    # ------------------------------------------------------------------ between crashes, and the end
    Case(
        "started_again_in_a_loop_keeps_start_failed_and_posts_no_started_event",
        waiting(crashes=2, crashed_ago=21),
        observed(machine("stopped")),
        decided=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        result=ok(machine("started")),
        phase=Phase.RUNNING,
        events=(),
        conditions={"StartFailed": ("True", "CrashLoopBackOff"), "Ready": ("True", "Running")},
        fields={"crash_count": 2, "last_started_at": T0},
    ),
    Case(
        "running_within_the_window_keeps_the_count",
        running(last_started_at=SOON, crash_count=2, last_crash_at=SOON, conditions=LOOPING),
        observed(machine("started")),
        action=None,
        fields={"crash_count": 2},
        conditions={"StartFailed": ("True", "CrashLoopBackOff")},
    ),
    Case(
        "a_run_past_the_window_ends_the_loop",
        running(last_started_at=LONG_AGO, crash_count=4, last_crash_at=LONG_AGO, conditions=LOOPING),
        observed(machine("started")),
        action=None,
        fields={"crash_count": 0, "last_crash_at": None, "last_start_error_message": None},
        conditions={"StartFailed": ("False", "Started"), "Ready": ("True", "Running")},
        logs=("crash_loop_reset",),
    ),
    Case(
        "a_start_in_a_loop_awaited_to_started_keeps_the_loop_visible",
        starting(crash_count=1, last_crash_at=T0 - timedelta(seconds=20), conditions=LOOPING),
        observed(machine("starting")),
        decided=AwaitState(machine_id=MACHINE, state="started", instance_id="inst-1"),
        result=ok(machine("started")),
        events=(),
        conditions={"StartFailed": ("True", "CrashLoopBackOff")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_crash_loops(case: Case) -> None:
    check(case, run(case))


def test_the_backoff_doubles_and_is_capped() -> None:
    delays = [crash_delay(n, TIMINGS).total_seconds() for n in range(0, 8)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    fast = Timings(crash_backoff=timedelta(seconds=1), crash_backoff_max=timedelta(seconds=3))
    assert crash_delay(1000, fast) == timedelta(seconds=3)
