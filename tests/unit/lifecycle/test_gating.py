"""What blocks progress: pause, a missing Secret, a bad token, and the Stalled gate
(contract behaviour 7), lifted only by a spec change or a reconcile request."""

from __future__ import annotations

from typing import Any

import pytest

from claw_operator.api import Phase
from claw_operator.lifecycle import volume_name
from claw_operator.lifecycle.conditions import NO_APP_MESSAGE
from claw_operator.lifecycle.model import CreateMachine, CreateVolume, FailureKind, Instance, StartMachine
from tests.unit.lifecycle.builders import (
    MACHINE,
    UID,
    VOLUME,
    Case,
    check,
    conditions,
    failure,
    instance,
    machine,
    observed,
    run,
    running_status,
    spec,
    status,
    volume,
)


def stalled(reason: str, *, generation: int = 1, stalled_generation: int = 1, **overrides: Any) -> Instance:
    data: dict[str, Any] = {
        "phase": Phase.STOPPED,
        "machine_id": MACHINE,
        "volume_id": VOLUME,
        "region": "iad",
        "conditions": conditions(
            stalled_generation,
            Stalled=("True", reason),
            StartFailed=("True", reason),
        ),
    }
    inst_overrides = {k: overrides.pop(k) for k in ("reconcile_request", "secret_error") if k in overrides}
    return instance(status_=status(**{**data, **overrides}), generation=generation, **inst_overrides)


START = StartMachine(machine_id=MACHINE, volume_id=VOLUME)
PAUSED_CONDS = conditions(Ready=("True", "Paused"), Reconciling=("False", "Paused"))

CASES = [
    Case(
        "paused_makes_no_action_and_reports_it",
        instance(status_=running_status(), paused=True),
        action=None,
        events=("Paused",),
        conditions={"Reconciling": ("False", "Paused"), "Ready": ("True", "Paused")},
        phase=Phase.RUNNING,
    ),
    Case(
        "paused_event_only_on_the_transition",
        instance(status_=running_status(conditions=PAUSED_CONDS), paused=True),
        action=None,
        events=(),
        conditions={"Reconciling": ("False", "Paused")},
    ),
    Case(
        "paused_wins_over_deletion",
        instance(status_=running_status(), paused=True, deleting=True),
        action=None,
        phase=Phase.RUNNING,
        finalize=False,
    ),
    Case(
        "paused_does_not_echo_the_reconcile_request",
        instance(status_=running_status(), paused=True, reconcile_request="req-1"),
        fields={"last_handled_reconcile_at": None},
    ),
    Case(
        "missing_secret_stalls_without_acting",
        instance(
            status_=status(volume_id=VOLUME, phase=Phase.PROVISIONED),
            secret_error="Secret default/api has no key token",
        ),
        observed(tagged=()),
        action=None,
        conditions={"Stalled": ("True", "SecretNotFound"), "Ready": ("False", "SecretNotFound")},
    ),
    Case(
        "missing_secret_makes_a_running_machine_not_ready",
        instance(status_=running_status(), secret_error="Secret default/api not found"),
        observed(machine("started"), volume()),
        action=None,
        conditions={"Ready": ("False", "SecretNotFound"), "Reconciling": ("False", "Stalled")},
    ),
    Case(
        "secret_found_again_lifts_the_stall",
        stalled("SecretNotFound", machine_id=None, phase=Phase.PROVISIONED),
        observed(tagged=()),
        action=CreateMachine(volume_id=VOLUME, region="iad"),
        conditions={"Stalled": ("False", "NotStalled")},
    ),
    Case(
        "bad_token_stalls_unauthorized_without_retry_storm",
        instance(status_=running_status()),
        observed(failure(FailureKind.UNAUTHORIZED, 401, "token rejected"), volume()),
        action=None,
        conditions={"Stalled": ("True", "Unauthorized"), "Reconciling": ("False", "Stalled")},
        retry=False,
        requeue_after=None,
        logs=("fly_unauthorized",),
    ),
    Case(
        "accepted_token_lifts_the_unauthorized_stall",
        stalled("Unauthorized"),
        observed(machine("stopped"), volume()),
        action=START,
        conditions={"Stalled": ("False", "NotStalled")},
    ),
    Case(
        "stalled_gate_blocks_fly_mutations",
        stalled("InvalidConfig"),
        observed(machine("stopped"), volume()),
        action=None,
        conditions={"Stalled": ("True", "InvalidConfig"), "Ready": ("False", "StartFailed")},
    ),
    Case(
        "stalled_gate_still_reports_what_fly_says",
        stalled("StartTimeout"),
        observed(machine("started"), volume()),
        phase=Phase.RUNNING,
        conditions={"Stalled": ("False", "NotStalled"), "Ready": ("True", "Running")},
    ),
    Case(
        "stalled_gate_lifted_by_a_spec_change",
        stalled("InvalidConfig", generation=2, stalled_generation=1),
        observed(machine("stopped"), volume()),
        action=START,
    ),
    Case(
        "stalled_gate_lifted_by_a_reconcile_request",
        stalled("InvalidConfig", reconcile_request="2026-11-24T08:00:00Z"),
        observed(machine("stopped"), volume()),
        action=START,
        fields={"last_handled_reconcile_at": "2026-11-24T08:00:00Z"},
    ),
    Case(
        "handled_reconcile_request_does_not_lift_the_gate_again",
        stalled("InvalidConfig", reconcile_request="r1", last_handled_reconcile_at="r1"),
        observed(machine("stopped"), volume()),
        action=None,
    ),
    Case(
        "reconcile_request_is_echoed_once_handled",
        instance(status_=running_status(), reconcile_request="r9"),
        observed(machine("started"), volume()),
        fields={"last_handled_reconcile_at": "r9"},
    ),
    Case(
        "no_app_stalls_invalid_config_without_acting",
        instance(app=""),
        action=None,
        conditions={"Stalled": ("True", "InvalidConfig"), "Ready": ("False", "InvalidConfig")},
    ),
    Case(
        "an_app_lifts_the_no_app_stall",
        instance(
            status_=status(
                conditions=[
                    c.model_copy(update={"message": NO_APP_MESSAGE})
                    for c in conditions(Stalled=("True", "InvalidConfig"))
                ],
            ),
        ),
        observed=observed(tagged=(), named=()),
        action=CreateVolume(region="iad", size_gb=10, name=volume_name(UID)),
        conditions={"Stalled": ("False", "NotStalled")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gating(case: Case) -> None:
    check(case, run(case))


def test_stalled_gate_blocks_the_restart_guard_too() -> None:
    inst = instance(
        spec_=spec(image="registry.fly.io/claw:2.0"),
        status_=running_status(conditions=conditions(Stalled=("True", "InvalidConfig"))),
    )
    decision = run(Case("gated_restart", inst, observed(machine("started"), volume())))
    assert decision.action is None and decision.status.restarting_at is None
