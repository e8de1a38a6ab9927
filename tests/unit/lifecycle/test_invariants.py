"""Condition invariants every pass keeps, and the small pure helpers (cadence, backoff, names,
recovery candidate selection)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from claw_operator.api import CONDITION_TYPES, Phase, find_condition
from claw_operator.lifecycle import backoff, cadence, decide, select_recovery_candidate, settle, volume_name
from claw_operator.lifecycle.model import FailureKind, Instance, Observation, Timings
from tests.unit.lifecycle.builders import (
    MACHINE,
    T0,
    T_OLD,
    TIMINGS,
    VOLUME,
    conditions,
    failed,
    failure,
    instance,
    machine,
    observed,
    ok,
    running,
    running_status,
    spec,
    status,
    volume,
)


def test_first_pass_writes_all_six_conditions_unknown_until_known() -> None:
    decision = decide(instance(), observed(tagged=()), T0, TIMINGS)
    assert [c.type for c in decision.status.conditions] == list(CONDITION_TYPES)
    start_failed = find_condition(decision.status.conditions, "StartFailed")
    assert start_failed is not None
    assert (start_failed.status.value, start_failed.reason) == ("Unknown", "NotStarted")
    assert all(c.last_transition_time == T0 for c in decision.status.conditions)


def test_unchanged_condition_keeps_its_last_transition_time() -> None:
    decision = decide(running(), observed(machine("started"), volume()), T0, TIMINGS)
    assert all(c.last_transition_time == T_OLD for c in decision.status.conditions)


def test_flipped_condition_moves_its_last_transition_time() -> None:
    decision = decide(running(stopped_checks=4), observed(machine("stopped"), volume()), T0, TIMINGS)
    ready = find_condition(decision.status.conditions, "Ready")
    assert ready is not None and ready.status.value == "False" and ready.last_transition_time == T0


def test_observed_generation_is_stamped_on_the_status_and_every_condition() -> None:
    inst = instance(status_=running_status(), generation=7)
    decision = decide(inst, observed(machine("started"), volume()), T0, TIMINGS)
    assert decision.status.observed_generation == 7
    assert {c.observed_generation for c in decision.status.conditions} == {7}


def test_a_stall_cleared_by_decide_and_set_again_by_settle_never_shows_a_transition() -> None:
    """The gate lifts (new generation) and the retry fails the same way: Stalled stayed True."""
    conds = conditions(1, Stalled=("True", "InvalidConfig"), StartFailed=("True", "InvalidConfig"))
    inst = instance(
        status_=status(phase=Phase.STOPPED, machine_id=MACHINE, volume_id=VOLUME, conditions=conds),
        generation=2,
    )
    decided = decide(inst, observed(machine("stopped"), volume()), T0, TIMINGS)
    assert decided.action is not None
    result = failed(failure(FailureKind.INVALID_CONFIG, 422, "still invalid"))
    settled = settle(inst, decided, result, T0 + timedelta(seconds=1), TIMINGS)
    stalled = find_condition(settled.status.conditions, "Stalled")
    assert stalled is not None
    assert (stalled.status.value, stalled.last_transition_time, stalled.observed_generation) == (
        "True",
        T_OLD,
        2,
    )


def test_settle_carries_the_events_and_logs_of_decide() -> None:
    inst = running()
    decided = decide(inst, observed(machine("failed"), volume()), T0, TIMINGS)
    assert [e.reason for e in decided.events] == ["Stopped"]
    settled = settle(inst, decided, ok(machine("starting")), T0, TIMINGS)
    assert [e.reason for e in settled.events] == ["Stopped"]
    assert [log.action for log in settled.logs] == ["sync_status_failed", "start_machine"]
    assert settled.action is None


def test_settle_without_an_action_returns_the_decision() -> None:
    decided = decide(running(), observed(machine("started"), volume()), T0, TIMINGS)
    assert settle(running(), decided, ok(), T0, TIMINGS) is decided


def test_decide_leaves_its_inputs_untouched() -> None:
    inst = running(stopped_checks=2)
    before = inst.status.model_dump()
    decide(inst, observed(machine("stopped"), volume()), T0, TIMINGS)
    assert inst.status.model_dump() == before


def test_logs_carry_the_fly_ids() -> None:
    decision = decide(running(stopped_checks=4), observed(machine("stopped"), volume()), T0, TIMINGS)
    (mark,) = [log for log in decision.logs if log.action == "mark_stopped"]
    assert mark.details["machine_id"] == MACHINE and mark.details["volume_id"] == VOLUME
    assert mark.details["fail_count"] == 5


def test_env_values_never_reach_a_message() -> None:
    inst = instance(status_=running_status(), env_digest="sha256:new")
    decision = decide(inst, observed(machine("started"), volume()), T0, TIMINGS)
    texts = [e.message for e in decision.events] + [c.message for c in decision.status.conditions]
    assert not any("sha256" in text for text in texts)


# ---------------------------------------------------------------------------- cadence and backoff


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        pytest.param(Phase.STARTING, timedelta(seconds=60), id="starting_every_minute"),
        pytest.param(Phase.DESTROYING, timedelta(seconds=60), id="destroying_every_minute"),
        pytest.param(Phase.RUNNING, timedelta(minutes=5), id="running_every_five_minutes"),
        pytest.param(Phase.STOPPED, timedelta(minutes=30), id="stopped_idle"),
        pytest.param(Phase.PROVISIONED, timedelta(minutes=30), id="provisioned_idle"),
        pytest.param(None, timedelta(minutes=30), id="new_idle"),
    ],
)
def test_cadence(phase: Phase | None, expected: timedelta) -> None:
    assert cadence(phase, TIMINGS) == expected


def test_cadence_follows_the_flags() -> None:
    timings = Timings(poll_destroying=timedelta(seconds=7), poll_starting=timedelta(seconds=3))
    assert cadence(Phase.DESTROYING, timings) == timedelta(seconds=7)
    assert cadence(Phase.STARTING, timings) == timedelta(seconds=3)


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        pytest.param(0, 5.0, id="first_retry_at_base"),
        pytest.param(1, 10.0, id="doubles"),
        pytest.param(4, 80.0, id="doubles_again"),
        pytest.param(6, 300.0, id="capped"),
        pytest.param(10_000, 300.0, id="capped_without_overflow"),
        pytest.param(-1, 5.0, id="never_below_base"),
    ],
)
def test_backoff(failures: int, expected: float) -> None:
    assert backoff(failures, TIMINGS) == expected


# ---------------------------------------------------------------------------- names


def test_volume_name_is_the_uid_compacted_within_flys_limit() -> None:
    name = volume_name("5F3A9C1E-0B7D-4E2A-9C11-8D6F2B4A7E90")
    assert name == "claw_5f3a9c1e0b7d4e2a9c118d6f"
    assert len(name) <= 30


# ---------------------------------------------------------------------------- recovery candidates

NEWER = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
OLDER = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("machines", "expected"),
    [
        pytest.param((), None, id="empty_list_has_no_candidate"),
        pytest.param((machine("destroyed"), machine("destroying", id="m2")), None, id="dead_machines_only"),
        pytest.param(
            (machine("stopped", id="a"), machine("started", id="b")), "b", id="started_beats_stopped"
        ),
        pytest.param(
            (machine("stopped", id="a"), machine("starting", id="b")), "b", id="starting_beats_stopped"
        ),
        pytest.param((machine("failed", id="a"), machine("created", id="b")), "b", id="created_beats_failed"),
        pytest.param(
            (machine("stopped", id="old", updated_at=OLDER), machine("stopped", id="new", updated_at=NEWER)),
            "new",
            id="newest_updated_at_breaks_ties",
        ),
        pytest.param(
            (machine("destroyed", id="a"), machine("suspended", id="b")), "b", id="dead_machines_are_ignored"
        ),
        pytest.param((machine("weird", id="a"), machine("failed", id="b")), "b", id="unknown_states_last"),
    ],
)
def test_select_recovery_candidate(machines: tuple, expected: str | None) -> None:  # type: ignore[type-arg]
    candidate = select_recovery_candidate(machines)
    assert (candidate.id if candidate else None) == expected


STEADY = [
    pytest.param(running(), observed(machine("started"), volume()), id="running"),
    pytest.param(
        instance(
            spec_=spec(state="Stopped"),
            status_=status(phase=Phase.STOPPED, machine_id=MACHINE, volume_id=VOLUME, region="iad"),
        ),
        observed(machine("stopped"), volume()),
        id="stopped_as_desired",
    ),
    pytest.param(
        instance(status_=running_status(), paused=True),
        observed(),
        id="paused",
    ),
    pytest.param(
        instance(status_=running_status(), secret_error="Secret default/api not found"),
        observed(machine("started"), volume()),
        id="secret_missing",
    ),
]


@pytest.mark.parametrize(("inst", "seen"), STEADY)
def test_a_steady_state_decides_the_same_status_again(inst: Instance, seen: Observation) -> None:
    """Nothing changed on Fly or in the spec → the same status, so `kube` writes nothing."""
    first = decide(inst, seen, T0, TIMINGS)
    again = decide(replace(inst, status=first.status), seen, T0 + timedelta(minutes=5), TIMINGS)
    assert again.status.to_wire() == first.status.to_wire()
    assert again.events == () and again.action is None
