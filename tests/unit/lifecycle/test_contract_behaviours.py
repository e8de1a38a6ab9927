"""One named case per behaviour of the contract (clawinstance-api.md, "Behaviour that must hold").

The transition tables pin the details; this table is the index a reviewer reads against the
contract, numbered as it is.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from claw_operator.api import Phase
from claw_operator.lifecycle.model import (
    CreateMachine,
    DestroyMachine,
    FailureKind,
    RestartMachine,
    RestartReason,
    StartMachine,
)
from tests.unit.lifecycle.builders import (
    GONE,
    MACHINE,
    MISSING_SINCE,
    T0,
    TIMINGS,
    VOLUME,
    Case,
    check,
    conditions,
    failed,
    failure,
    instance,
    machine,
    observed,
    ok,
    run,
    running,
    running_status,
    spec,
    status,
    volume,
)

PROVISIONED = status(phase=Phase.PROVISIONED, volume_id=VOLUME, region="iad")

CASES = [
    Case(
        "behaviour_01_start_failure_before_a_machine_is_stopped_at_once",
        instance(status_=PROVISIONED),
        observed(tagged=()),
        decided=CreateMachine(volume_id=VOLUME, region="iad"),
        result=failed(failure(FailureKind.UNAVAILABLE, 503, "Fly API unavailable")),
        phase=Phase.STOPPED,
        events=("StartFailed",),
        conditions={"StartFailed": ("True", "FlyAPIError")},
        fields={
            "last_start_error_message": "creating the machine failed: Fly API unavailable",
            "starting_at": None,
        },
    ),
    Case(
        "behaviour_02_a_deletion_is_never_overwritten_by_a_start",
        instance(status_=status(phase=Phase.STARTING, starting_at=T0, volume_id=VOLUME), deleting=True),
        observed(tagged=()),
        action=None,
        phase=Phase.DESTROYING,
    ),
    Case(
        "behaviour_03_a_successful_start_clears_the_start_error",
        instance(
            status_=status(
                phase=Phase.STARTING,
                starting_at=T0,
                machine_id=MACHINE,
                volume_id=VOLUME,
                last_start_error_message="no capacity",
                last_start_error_at=T0,
                conditions=conditions(StartFailed=("True", "InsufficientCapacity")),
            )
        ),
        observed(machine("created"), volume()),
        result=ok(machine("started")),
        conditions={"StartFailed": ("False", "Started")},
        fields={"last_start_error_message": None, "last_start_error_at": None},
    ),
    Case(
        "behaviour_04_one_mount_repair_routine_for_start_and_periodic_check",
        running(),
        observed(machine("started", volume="vol-old"), volume()),
        action=None,
        conditions={"Restarting": ("True", "MountRepair")},
        requeue_after=0,
    ),
    Case(
        "behaviour_05_starting_past_the_timeout_is_stopped_with_start_timeout",
        instance(
            status_=status(
                phase=Phase.STARTING,
                starting_at=T0 - TIMINGS.starting_timeout - timedelta(seconds=1),
                volume_id=VOLUME,
                last_start_error_message="no capacity",
            )
        ),
        observed(tagged=()),
        phase=Phase.STOPPED,
        events=("StartTimeout",),
        conditions={"Stalled": ("True", "StartTimeout")},
        logs=("starting_timeout",),
    ),
    Case(
        "behaviour_06_a_stopped_machine_mid_restart_is_not_marked_stopped",
        instance(
            status_=running_status(
                restarting_at=T0,
                restarting_instance_id="inst-1",
                stopped_checks=4,
                conditions=conditions(Restarting=("True", "RestartRequested")),
            )
        ),
        observed(machine("stopped"), volume()),
        action=RestartMachine(machine_id=MACHINE, volume_id=VOLUME, reason=RestartReason.REQUESTED),
        phase=Phase.RUNNING,
    ),
    Case(
        "behaviour_07_retryable_errors_back_off_and_terminal_ones_stall",
        instance(status_=PROVISIONED, failures=2),
        observed(tagged=()),
        result=failed(failure(FailureKind.RATE_LIMITED, 429, "slow down")),
        conditions={"Stalled": ("False", "NotStalled")},
        retry=True,
        requeue_after=20.0,
    ),
    Case(
        "behaviour_07_terminal_errors_stall_until_the_spec_changes",
        instance(status_=PROVISIONED),
        observed(tagged=()),
        result=failed(failure(FailureKind.UNAUTHORIZED, 401, "unauthorized")),
        conditions={"Stalled": ("True", "Unauthorized")},
        retry=False,
    ),
    Case(
        "behaviour_08_a_lost_machine_id_is_recovered_by_the_uid_tag",
        instance(status_=PROVISIONED),
        observed(tagged=(machine("started", id="m-landed"),)),
        action=None,
        events=("MachineRecovered",),
        fields={"machine_id": "m-landed"},
    ),
    Case(
        "behaviour_08_no_create_without_a_conclusive_listing",
        instance(status_=PROVISIONED),
        observed(tagged=failure(FailureKind.TIMEOUT, None, "list timed out")),
        action=None,
        retry=True,
    ),
    Case(
        "behaviour_09_destroy_the_machine_then_the_volume",
        instance(
            status_=status(
                phase=Phase.DESTROYING,
                machine_id=MACHINE,
                volume_id=VOLUME,
                pending_destroy_machine_id=MACHINE,
                pending_destroy_volume_id=VOLUME,
            ),
            deleting=True,
        ),
        observed(machine("stopped"), volume(attached=MACHINE)),
        action=DestroyMachine(machine_id=MACHINE),
    ),
    Case(
        "behaviour_10_a_failed_machine_is_handled_at_once",
        running(),
        observed(machine("failed"), volume()),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
    ),
    Case(
        "behaviour_10_a_gone_machine_is_recreated_on_the_existing_volume",
        running(machine_missing_since=MISSING_SINCE),
        observed(GONE, volume(), tagged=()),
        events=("MachineLost",),
        fields={"volume_id": VOLUME, "machine_id": None, "machine_missing_since": None},
    ),
    Case(
        "behaviour_10_a_lost_volume_is_recreated_empty",
        instance(spec_=spec(), status_=running_status(volume_missing_since=MISSING_SINCE)),
        observed(machine("started", volume="vol-stray"), GONE, named=()),
        events=("VolumeLost",),
        fields={"volume_id": None, "lost_volume_id": VOLUME, "last_volume_loss_at": T0},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract_behaviour(case: Case) -> None:
    check(case, run(case))
