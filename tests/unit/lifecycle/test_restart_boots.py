"""A requested restart is served by a boot after it, even one whose calls failed (lifecycle.boots).

`make chaos` on 42ce2c9 (seed 2, chaos-1/claw-0081): the restart's stop was applied by Fly
although the call timed out (RestartFailed); the operator was killed; its next life started the
stopped machine for the pending request, a start Fly applied although it answered 502
(StartFailed); once a pass saw the machine started it restarted it a second time. The first
table replays that interleaving pass by pass — each pass reads only the status the one before
wrote, as a new operator life would — and the negatives show the restart still runs whenever a
boot after the request cannot be shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from claw_operator.api import ClawInstanceStatus, Phase, find_condition
from claw_operator.lifecycle import decide, settle
from claw_operator.lifecycle.boots import boot_baseline
from claw_operator.lifecycle.model import (
    ActionResult,
    Decision,
    FailureKind,
    Instance,
    MachineView,
    RestartMachine,
    RestartReason,
    StartMachine,
)
from tests.unit.lifecycle.builders import (
    MACHINE,
    T0,
    TIMINGS,
    VOLUME,
    Case,
    check,
    check_invariants,
    failed,
    failure,
    instance,
    machine,
    observed,
    run,
    running_status,
    spec,
    volume,
)

REQUEST = "2026-11-24T08:00:00Z"
# The boot the machine runs when the request is made (Fly's start event), and its updated_at.
BOOTED = datetime(2026, 11, 24, 7, 0, 0, 500_000, tzinfo=UTC)
BASELINE = BOOTED  # what the guard's pass saw: Fly's latest start event
# The boot after the request: the silently applied start.
REBOOTED = T0 + timedelta(seconds=7, milliseconds=340)


def up(booted: datetime | None = BOOTED, **overrides: Any) -> MachineView:
    return machine("started", booted_at=booted, updated_at=overrides.pop("updated_at", booted), **overrides)


def down(state: str = "stopped", *, at: datetime = T0 + timedelta(seconds=1)) -> MachineView:
    return machine(state, booted_at=BOOTED, updated_at=at)


def requested(status: ClawInstanceStatus, restarted_at: str = REQUEST) -> Instance:
    return instance(spec_=spec(restartedAt=restarted_at), status_=status, generation=2)


@dataclass(frozen=True)
class Step:
    """One pass: what Fly shows, the action decide must choose, and what Fly answers to it."""

    seen: MachineView
    action: Any = None
    result: ActionResult | None = None
    seconds: float = 0


def passes(inst: Instance, steps: list[Step]) -> tuple[Instance, list[Decision]]:
    """Each step is one pass over the status the previous one wrote (nothing else is carried:
    what a new operator life after a kill -9 would read)."""
    decisions = []
    for step in steps:
        now = T0 + timedelta(seconds=step.seconds)
        decision = decide(inst, observed(step.seen, volume()), now, TIMINGS)
        assert decision.action == step.action, f"pass at +{step.seconds}s chose {decision.action!r}"
        if step.result is not None:
            decision = settle(inst, decision, step.result, now, TIMINGS)
        check_invariants(inst, decision)
        decisions.append(decision)
        # Read back as the apiserver gives it (the wire form: the baseline keeps its fraction).
        inst = replace(inst, status=ClawInstanceStatus.model_validate(decision.status.to_wire()))
    return inst, decisions


RESTART = RestartMachine(machine_id=MACHINE, volume_id=VOLUME, reason=RestartReason.REQUESTED)
START = StartMachine(machine_id=MACHINE, volume_id=VOLUME)
STOP_TIMED_OUT = failure(FailureKind.TIMEOUT, 408, "[POST stop 408] deadline_exceeded: request timed out")
START_502 = failure(FailureKind.UNAVAILABLE, 502, "[POST start 502] upstream connect error")

# The chaos interleaving, up to the pass that sees the machine started again.
SILENT_STOP_THEN_SILENT_START = [
    Step(up()),  # the guard, with the request's boot baseline
    # The restart: Fly applies the stop, the call times out (RestartFailed).
    Step(up(), RESTART, failed(STOP_TIMED_OUT, down("stopping")), seconds=1),
    # kill -9; the next life finds the machine stopped, the request pending: it starts it. Fly
    # boots it, and answers 502 (StartFailed).
    Step(down(), START, failed(START_502, machine("starting", booted_at=BOOTED)), seconds=5),
]


def reason(decision: Decision, type_: str) -> tuple[str, str]:
    found = find_condition(decision.status.conditions, type_)
    assert found is not None
    return found.status.value, found.reason


def test_the_chaos_interleaving_restarts_once() -> None:
    inst, decisions = passes(
        requested(running_status()),
        [*SILENT_STOP_THEN_SILENT_START, Step(up(REBOOTED), seconds=9)],
    )
    guard, restart, start, seen = decisions
    assert guard.status.restarting_at == T0 and guard.requeue_after == 0
    assert (guard.status.restart_baseline_for, guard.status.restart_baseline_at) == (REQUEST, BASELINE)
    # The failed restart drops its guard, not the request's baseline.
    assert reason(restart, "Restarting") == ("False", "RestartFailed")
    assert restart.status.restarting_at is None and restart.status.restart_baseline_at == BASELINE
    assert restart.status.phase == Phase.RUNNING  # Fly showed it stopping
    assert "start_for_pending_change" in [log.action for log in start.logs]
    assert reason(start, "StartFailed") == ("True", "FlyAPIError")  # the 502
    assert start.status.restart_baseline_at == BASELINE
    # Started on a boot after the baseline: served, no second restart.
    assert seen.action is None and seen.status.restarting_at is None
    assert seen.status.handled_restarted_at == REQUEST
    assert seen.status.restart_baseline_for is None and seen.status.restart_baseline_at is None
    assert reason(seen, "Restarting") == ("False", "RestartSucceeded")
    assert reason(seen, "StartFailed") == ("False", "Started")
    assert reason(seen, "Ready") == ("True", "Running")
    assert seen.status.phase == Phase.RUNNING
    assert [e.reason for e in seen.events] == ["Started", "Restarted"]
    assert "restart_served_by_boot" in [log.action for log in seen.logs]
    # And the passes after it leave it alone.
    decision = decide(inst, observed(up(REBOOTED), volume()), T0 + timedelta(seconds=300), TIMINGS)
    assert decision.action is None and decision.status.restarting_at is None and not decision.events


@dataclass(frozen=True)
class Last:
    """The last pass of the interleaving, with what Fly shows then."""

    id: str
    seen: MachineView
    restarts: bool
    status: dict[str, Any] | None = None  # overrides of the status the interleaving wrote


LAST = [
    Last("booted_after_the_baseline_is_served", up(REBOOTED), restarts=False),
    Last(
        "booted_just_after_the_baseline_is_served", up(BASELINE + timedelta(milliseconds=1)), restarts=False
    ),
    # Negatives: no boot after the request can be shown, so the restart runs.
    Last("the_boot_before_the_request_is_not_a_new_one", up(BOOTED), restarts=True),
    Last("no_start_event_shown_is_no_boot", up(None, updated_at=REBOOTED), restarts=True),
    Last(
        "no_baseline_recorded_for_this_request_restarts",
        up(REBOOTED),
        restarts=True,
        status={"restart_baseline_for": None, "restart_baseline_at": None},
    ),
    Last(
        "a_baseline_of_an_earlier_request_does_not_count",
        up(REBOOTED),
        restarts=True,
        status={"restart_baseline_for": "2026-11-24T07:30:00Z"},
    ),
]


@pytest.mark.parametrize("last", LAST, ids=[c.id for c in LAST])
def test_the_pass_that_sees_the_machine_started_again(last: Last) -> None:
    inst, _ = passes(requested(running_status()), SILENT_STOP_THEN_SILENT_START)
    if last.status is not None:
        inst = replace(inst, status=inst.status.model_copy(update=last.status))
    decision = decide(inst, observed(last.seen, volume()), T0 + timedelta(seconds=9), TIMINGS)
    events = [e.reason for e in decision.events]
    if last.restarts:
        # The restart guard again: the stop, update and start follow.
        assert decision.status.restarting_at is not None and decision.requeue_after == 0
        assert decision.status.handled_restarted_at is None
        assert reason(decision, "Restarting") == ("True", "RestartRequested")
        assert "Restarting" in events and "Restarted" not in events
    else:
        assert decision.status.restarting_at is None
        assert decision.status.handled_restarted_at == REQUEST
        assert "Restarted" in events and "Restarting" not in events
        assert reason(decision, "Ready") == ("True", "Running")


def test_a_request_never_seen_served_still_restarts_when_its_calls_really_failed() -> None:
    """The same calls failing for real (Fly applied nothing): the machine never stopped, so no
    boot after the baseline; the next guard restarts it (the request is not dropped)."""
    inst, decisions = passes(
        requested(running_status()),
        [
            Step(up()),
            Step(up(), RESTART, failed(STOP_TIMED_OUT, up()), seconds=1),
            Step(up(), seconds=5),  # still on the boot before the request: a new guard
            Step(up(), RESTART, ActionResult(machine=up(REBOOTED, instance_id="inst-2")), seconds=6),
        ],
    )
    _, _, again, done = decisions
    assert again.status.restarting_at is not None and again.status.handled_restarted_at is None
    assert again.status.restart_baseline_at == BASELINE  # the first baseline is kept
    assert done.status.handled_restarted_at == REQUEST
    assert reason(done, "Restarting") == ("False", "RestartSucceeded")
    assert inst.status.restart_baseline_for is None


# ---------------------------------------------------------------------------- the baseline


CASES = [
    Case(
        "a_stopped_machine_with_a_request_persists_the_baseline_before_the_start",
        requested(running_status(machine_state="stopped")),
        observed(down(at=T0 - timedelta(seconds=30)), volume()),
        action=None,
        requeue_after=0,
        fields={
            "restart_baseline_for": REQUEST,
            "restart_baseline_at": T0 - timedelta(seconds=30),
            "handled_restarted_at": None,
        },
    ),
    Case(
        "then_the_start_follows",
        requested(
            running_status(
                machine_state="stopped",
                restart_baseline_for=REQUEST,
                restart_baseline_at=T0 - timedelta(seconds=30),
            )
        ),
        observed(down(at=T0 - timedelta(seconds=30)), volume()),
        action=START,
        logs=("start_for_pending_change",),
    ),
    Case(
        "a_failed_machine_with_a_request_persists_the_baseline_first_too",
        requested(running_status(machine_state="failed")),
        observed(down("failed", at=T0 - timedelta(seconds=30)), volume()),
        action=None,
        requeue_after=0,
        fields={"restart_baseline_for": REQUEST, "crash_count": 0},
    ),
    Case(
        "a_machine_mid_boot_gives_no_baseline",  # its start event would be a launch made before
        requested(running_status(phase=Phase.STARTING, starting_at=T0, machine_state="starting")),
        observed(machine("starting", booted_at=BOOTED, updated_at=T0), volume()),
        fields={"restart_baseline_for": None, "restart_baseline_at": None},
    ),
    Case(
        "a_machine_that_never_booted_takes_its_updated_at_as_the_baseline",  # stopped mid-boot
        requested(running_status(machine_state="stopped")),
        observed(machine("stopped", updated_at=T0 - timedelta(seconds=30)), volume()),
        action=None,
        requeue_after=0,
        fields={"restart_baseline_for": REQUEST, "restart_baseline_at": T0 - timedelta(seconds=30)},
    ),
    Case(
        "no_time_shown_no_baseline_and_the_start_goes_ahead",  # never a wait on nothing
        requested(running_status(machine_state="stopped")),
        observed(machine("stopped"), volume()),
        action=START,
        fields={"restart_baseline_for": None},
    ),
    Case(
        "desired_stopped_records_no_baseline",
        instance(
            spec_=spec(restartedAt=REQUEST, state="Stopped"),
            status_=running_status(phase=Phase.STOPPED, machine_state="stopped"),
            generation=2,
        ),
        observed(down(), volume()),
        action=None,
        fields={"restart_baseline_for": None},
    ),
    Case(
        "a_missing_secret_records_no_baseline",  # nothing can be started: nothing to serve it
        instance(
            spec_=spec(restartedAt=REQUEST),
            status_=running_status(machine_state="stopped"),
            generation=2,
            secret_error="Secret default/s not found",
        ),
        observed(down(), volume()),
        action=None,
        fields={"restart_baseline_for": None},
    ),
    Case(
        "the_guard_of_a_requested_restart_carries_the_baseline",
        requested(running_status()),
        observed(up(updated_at=BOOTED + timedelta(seconds=30)), volume()),
        action=None,
        requeue_after=0,
        fields={
            "restarting_at": T0,
            "restart_baseline_for": REQUEST,
            "restart_baseline_at": BOOTED + timedelta(seconds=30),
        },
    ),
    Case(
        "a_boot_after_the_baseline_with_a_config_change_left_still_restarts_for_the_config",
        instance(
            spec_=spec(restartedAt=REQUEST, image="registry.fly.io/claw:2.0"),
            status_=running_status(restart_baseline_for=REQUEST, restart_baseline_at=BASELINE),
            generation=3,
        ),
        observed(up(REBOOTED), volume()),
        action=None,
        conditions={"Restarting": ("True", "ConfigChanged")},
        fields={"handled_restarted_at": None, "restart_baseline_for": REQUEST},
    ),
    Case(
        "a_newer_request_drops_the_baseline_of_the_old_one_and_records_its_own",
        requested(running_status(restart_baseline_for="r-old", restart_baseline_at=BASELINE), "r-new"),
        observed(up(REBOOTED), volume()),
        action=None,
        conditions={"Restarting": ("True", "RestartRequested")},
        fields={"restart_baseline_for": "r-new", "restart_baseline_at": boot_baseline(up(REBOOTED))},
    ),
    Case(
        "a_handled_request_drops_its_baseline",
        instance(
            spec_=spec(restartedAt=REQUEST),
            status_=running_status(
                handled_restarted_at=REQUEST, restart_baseline_for=REQUEST, restart_baseline_at=BASELINE
            ),
        ),
        observed(up(REBOOTED), volume()),
        action=None,
        events=(),
        fields={"restart_baseline_for": None, "restart_baseline_at": None},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_restart_baseline(case: Case) -> None:
    check(case, run(case))


@pytest.mark.parametrize(
    ("seen", "baseline"),
    [
        (up(BOOTED), BOOTED),
        (up(BOOTED, updated_at=BOOTED + timedelta(seconds=5)), BOOTED + timedelta(seconds=5)),
        # flysim writes updated_at to the second: the start event is the later one.
        (up(BOOTED, updated_at=BOOTED.replace(microsecond=0)), BOOTED),
        (machine("stopped", booted_at=BOOTED, updated_at=T0), T0),
        (machine("stopped", booted_at=BOOTED, updated_at=None), BOOTED),
        (machine("stopped", booted_at=None, updated_at=T0), T0),  # never booted
        (machine("started", booted_at=None, updated_at=None), None),
        (machine("starting", booted_at=BOOTED, updated_at=T0), None),
        (machine("replacing", booted_at=BOOTED, updated_at=T0), None),
    ],
)
def test_boot_baseline(seen: MachineView, baseline: datetime | None) -> None:
    assert boot_baseline(seen) == baseline


def test_the_baseline_keeps_its_fraction_of_a_second_on_the_wire() -> None:
    """A restart can stop and boot a machine within a second (flysim's fast profile does): a
    baseline rounded to the second would hide that boot, or take an older one for it."""
    written = ClawInstanceStatus(restart_baseline_for=REQUEST, restart_baseline_at=BOOTED).to_wire()
    assert written["restartBaselineAt"] == "2026-11-24T07:00:00.500000Z"
    assert ClawInstanceStatus.model_validate(written).restart_baseline_at == BOOTED
