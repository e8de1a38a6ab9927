"""Ready means healthy (issue 12, part 3): the checks Fly reports decide Ready, never the phase."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from claw_operator.api import HealthCheck, Phase
from claw_operator.lifecycle.desired import desired_machine
from claw_operator.lifecycle.drift import config_drift
from claw_operator.lifecycle.health import duration
from claw_operator.lifecycle.model import AwaitState, CheckView, Instance, MachineView
from tests.unit.lifecycle.builders import (
    MACHINE,
    T0,
    TIMINGS,
    VOLUME,
    Case,
    check,
    instance,
    machine,
    observed,
    ok,
    run,
    running_status,
    spec,
    status,
)

CHECK = HealthCheck(port=8080, path="/healthz", interval="15s", timeout="5s", grace_period="30s")
DESCRIBED = "http :8080/healthz every 15s timeout 5s grace 30s"
PASSING = (CheckView("claw", "passing", "200 OK"),)
FAILING = (CheckView("claw", "critical", "connection refused"),)
STARTED_LONG_AGO = T0 - timedelta(minutes=20)
JUST_STARTED = T0 - timedelta(seconds=10)


def checked(**status_overrides: Any) -> Instance:
    return instance(spec_=spec(health_check=CHECK), status_=running_status(**status_overrides))


def started(checks: tuple[CheckView, ...] | None) -> MachineView:
    return machine("started", health_check=DESCRIBED, checks=checks)


CASES = [
    Case(
        "passing_checks_are_ready",
        checked(last_started_at=STARTED_LONG_AGO),
        observed(started(PASSING)),
        action=None,
        phase=Phase.RUNNING,
        conditions={"Ready": ("True", "Running")},
        fields={"unhealthy_since": None, "health_check_output": None},
        requeue_after=None,
        events=(),
    ),
    Case(
        "failing_checks_are_unhealthy_and_the_phase_stays_running",
        checked(last_started_at=JUST_STARTED),
        observed(started(FAILING)),
        action=None,
        phase=Phase.RUNNING,
        conditions={"Ready": ("False", "Unhealthy"), "Reconciling": ("False", "Reconciled")},
        fields={"unhealthy_since": T0, "health_check_output": "check claw is critical: connection refused"},
        # Looked at again at the Starting cadence; no Warning within the grace period.
        requeue_after=TIMINGS.poll_starting.total_seconds(),
        events=(),
    ),
    Case(
        "failing_past_the_grace_period_is_a_warning",
        checked(last_started_at=STARTED_LONG_AGO, unhealthy_since=T0 - timedelta(minutes=1)),
        observed(started(FAILING)),
        action=None,
        events=("Unhealthy",),
        fields={"unhealthy_since": T0 - timedelta(minutes=1)},
        logs=("unhealthy",),
    ),
    Case(
        "no_check_result_yet_is_not_healthy",
        checked(last_started_at=JUST_STARTED),
        observed(started(())),
        conditions={"Ready": ("False", "Unhealthy")},
        fields={"health_check_output": "no check result reported by Fly yet"},
    ),
    Case(
        "passing_again_clears_it",
        checked(
            last_started_at=STARTED_LONG_AGO,
            unhealthy_since=T0 - timedelta(minutes=1),
            health_check_output="check claw is critical: x",
        ),
        observed(started(PASSING)),
        conditions={"Ready": ("True", "Running")},
        fields={"unhealthy_since": None, "health_check_output": None},
        logs=("healthy",),
    ),
    Case(
        "without_a_health_check_checks_are_ignored",
        instance(status_=running_status()),
        observed(machine("started", checks=FAILING)),
        conditions={"Ready": ("True", "Running")},
        fields={"unhealthy_since": None},
    ),
    Case(
        "a_start_reaching_started_with_failing_checks_is_running_but_not_ready",
        instance(
            spec_=spec(health_check=CHECK),
            status_=status(
                phase=Phase.STARTING,
                starting_at=T0 - timedelta(seconds=5),
                machine_id=MACHINE,
                volume_id=VOLUME,
                region="iad",
            ),
        ),
        observed(machine("starting", health_check=DESCRIBED, checks=FAILING)),
        decided=AwaitState(machine_id=MACHINE, state="started", instance_id="inst-1"),
        result=ok(started(FAILING)),
        phase=Phase.RUNNING,
        events=("Started",),
        conditions={"Ready": ("False", "Unhealthy"), "StartFailed": ("False", "Started")},
    ),
    Case(
        "a_machine_seen_stopped_is_not_unhealthy_any_more",
        checked(
            last_started_at=STARTED_LONG_AGO,
            unhealthy_since=T0 - timedelta(minutes=1),
            stopped_checks=TIMINGS.stopped_threshold - 1,
        ),
        observed(machine("stopped", health_check=DESCRIBED, checks=FAILING)),
        phase=Phase.STOPPED,
        fields={"unhealthy_since": None, "health_check_output": None},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_health(case: Case) -> None:
    check(case, run(case))


def test_a_new_health_check_is_a_config_change() -> None:
    inst = instance(spec_=spec(health_check=CHECK))
    assert desired_machine(inst, VOLUME).health_check == DESCRIBED
    assert config_drift(inst, VOLUME, machine("started", health_check="none")) == [
        f"healthCheck none -> {DESCRIBED}"
    ]
    assert config_drift(inst, VOLUME, machine("started", health_check=DESCRIBED)) == []
    # A machine whose config is unknown never drifts on it.
    assert config_drift(inst, VOLUME, machine("started", health_check=None)) == []


def test_go_durations() -> None:
    assert duration("1m30s") == timedelta(seconds=90)
    assert duration("500ms") == timedelta(seconds=0.5)
    assert duration("2h") == timedelta(hours=2)
