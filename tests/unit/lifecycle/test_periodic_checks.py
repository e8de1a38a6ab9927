"""decide() on the periodic check: one named case per KiloClaw transition (§1.2, §5, §7.5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from claw_operator.api import Phase
from claw_operator.lifecycle.model import (
    AwaitState,
    CreateMachine,
    CreateVolume,
    ExtendVolume,
    FailureKind,
    Instance,
    StartMachine,
    StopMachine,
)
from tests.unit.lifecycle.builders import (
    GONE,
    MACHINE,
    MISSING_SINCE,
    T0,
    TIMINGS,
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
    running,
    spec,
    status,
    volume,
)

LONG_AGO = T0 - TIMINGS.starting_timeout - timedelta(seconds=1)
JUST_NOW = T0 - timedelta(seconds=30)


def starting(**overrides: Any) -> Instance:
    data: dict[str, Any] = {
        "phase": Phase.STARTING,
        "starting_at": JUST_NOW,
        "machine_id": MACHINE,
        "volume_id": VOLUME,
        "region": "iad",
    }
    return instance(status_=status(**{**data, **overrides}))


def stopped(**overrides: Any) -> Instance:
    data: dict[str, Any] = {
        "phase": Phase.STOPPED,
        "machine_id": MACHINE,
        "volume_id": VOLUME,
        "region": "iad",
    }
    return instance(status_=status(**{**data, **overrides}))


CASES = [
    # ------------------------------------------------------------------ provisioning
    Case(
        "provisioning_creates_volume_after_an_empty_listing",
        instance(),
        observed(tagged=(), named=()),
        action=CreateVolume(region="iad", size_gb=10, name="claw_5f3a9c1e0b7d4e2a9c118d6f"),
        conditions={
            "Ready": ("False", "Provisioning"),
            "Reconciling": ("True", "Provisioning"),
            "StartFailed": ("Unknown", "NotStarted"),
        },
    ),
    Case(
        "provisioning_adopts_a_volume_whose_create_answer_was_lost",
        instance(),
        observed(tagged=(), named=(volume("vol9", attached="m-other"), volume("vol8"))),
        action=None,
        fields={"volume_id": "vol8", "machine_id": None},
        logs=("recover_volume_by_name",),
        requeue_after=0,
    ),
    Case(
        "provisioning_never_adopts_a_deleted_volume",
        instance(),
        observed(tagged=(), named=(replace(volume("vol9"), state="pending_destroy"),)),
        action=CreateVolume(region="iad", size_gb=10, name="claw_5f3a9c1e0b7d4e2a9c118d6f"),
    ),
    Case(
        "provisioning_never_creates_without_a_conclusive_listing",
        instance(),
        observed(tagged=failure(FailureKind.UNAVAILABLE, 503)),
        action=None,
        retry=True,
        requeue_after=5.0,
    ),
    Case(
        "metadata_recovery_adopts_started_machine",
        instance(),
        observed(
            tagged=(machine("stopped", id="m0"), machine("started", id="m9", volume="vol9")),
            named=(volume("vol9"),),
        ),
        action=None,
        phase=Phase.RUNNING,
        events=("MachineRecovered",),
        fields={"machine_id": "m9", "volume_id": "vol9", "machine_state": "started"},
        logs=("recover_machine_from_metadata", "recover_volume_from_mount", "multiple_machines_found"),
        requeue_after=0,
    ),
    Case(
        "metadata_recovery_never_adopts_a_mounted_volume_that_is_not_the_instances",
        instance(),
        observed(tagged=(machine("started", id="m9", volume="someone-elses"),), named=()),
        fields={"machine_id": "m9", "volume_id": None},
        events=("MachineRecovered",),
    ),
    Case(
        "metadata_recovery_after_an_ambiguous_create_counts_as_a_started_start",
        instance(
            status_=status(
                phase=Phase.STOPPED,
                volume_id=VOLUME,
                last_start_error_message="creating the machine failed: timeout",
                conditions=conditions(StartFailed=("True", "FlyAPIError")),
            )
        ),
        observed(tagged=(machine("started"),)),
        phase=Phase.RUNNING,
        events=("MachineRecovered",),
        conditions={"StartFailed": ("False", "Started"), "Ready": ("True", "Running")},
        fields={"last_start_error_message": None, "machine_id": MACHINE},
    ),
    Case(
        "metadata_recovery_keeps_starting_for_a_booting_machine",
        instance(status_=status(phase=Phase.STARTING, starting_at=JUST_NOW, volume_id=VOLUME)),
        observed(tagged=(machine("created"),)),
        phase=Phase.STARTING,
        fields={"machine_id": MACHINE, "starting_at": JUST_NOW},
    ),
    Case(
        "metadata_recovery_adopts_failed_machine_as_stopped",
        instance(status_=status(volume_id=VOLUME, phase=Phase.PROVISIONED)),
        observed(tagged=(machine("failed"), machine("destroyed", id="m2"))),
        phase=Phase.STOPPED,
        fields={"machine_id": MACHINE},
        events=("MachineRecovered",),
        requeue_after=0,
    ),
    Case(
        "metadata_recovery_ignores_destroyed_machines_and_creates",
        instance(status_=status(volume_id=VOLUME, phase=Phase.PROVISIONED, region="iad")),
        observed(tagged=(machine("destroyed"), machine("destroying", id="m2"))),
        action=CreateMachine(volume_id=VOLUME, region="iad"),
    ),
    Case(
        "provisioned_creates_machine_on_its_volume",
        instance(status_=status(volume_id=VOLUME, phase=Phase.PROVISIONED, region="iad")),
        observed(tagged=()),
        action=CreateMachine(volume_id=VOLUME, region="iad"),
    ),
    Case(
        "desired_stopped_without_machine_is_stopped_and_ready",
        instance(
            spec_=spec(state="Stopped"),
            status_=status(volume_id=VOLUME, phase=Phase.PROVISIONED, region="iad"),
        ),
        observed(tagged=()),
        action=None,
        phase=Phase.STOPPED,
        conditions={"Ready": ("True", "Stopped"), "Reconciling": ("False", "Reconciled")},
    ),
    # ------------------------------------------------------------------ starting
    Case(
        "starting_to_running_when_fly_started",
        starting(last_start_error_message="earlier failure", last_start_error_at=JUST_NOW),
        observed(machine("started"), volume()),
        action=None,
        phase=Phase.RUNNING,
        events=("Started",),
        conditions={"Ready": ("True", "Running"), "StartFailed": ("False", "Started")},
        fields={
            "starting_at": None,
            "last_started_at": T0,
            "last_start_error_message": None,
            "stopped_checks": 0,
        },
        logs=("sync_status",),
    ),
    Case(
        "starting_waits_for_a_booting_machine",
        starting(),
        observed(machine("created"), volume()),
        action=AwaitState(machine_id=MACHINE, state="started", instance_id="inst-1"),
        phase=Phase.STARTING,
        conditions={"Ready": ("False", "Starting"), "Reconciling": ("True", "Starting")},
    ),
    Case(
        "starting_to_stopped_on_timeout_without_machine",
        starting(starting_at=LONG_AGO, machine_id=None, last_start_error_message="no capacity in iad"),
        observed(tagged=()),
        action=None,
        phase=Phase.STOPPED,
        events=("StartTimeout",),
        conditions={"Stalled": ("True", "StartTimeout"), "StartFailed": ("True", "StartTimeout")},
        fields={"starting_at": None, "last_stopped_at": T0},
        logs=("starting_timeout",),
    ),
    Case(
        "starting_to_stopped_on_timeout_with_machine",
        starting(starting_at=LONG_AGO),
        observed(machine("created"), volume()),
        action=None,
        phase=Phase.STOPPED,
        events=("StartTimeout",),
        conditions={"Stalled": ("True", "StartTimeout"), "Ready": ("False", "StartFailed")},
        logs=("starting_timeout_with_machine",),
    ),
    Case(
        "starting_checks_fly_before_timing_out",
        starting(starting_at=LONG_AGO),
        observed(machine("started"), volume()),
        phase=Phase.RUNNING,
        events=("Started",),
    ),
    Case(
        "starting_to_stopped_on_transient_error_after_timeout",
        starting(starting_at=LONG_AGO),
        observed(failure(FailureKind.UNAVAILABLE, 503)),
        phase=Phase.STOPPED,
        events=("StartTimeout",),
        logs=("starting_timeout_transient_error",),
    ),
    Case(
        "starting_stays_on_transient_error_before_timeout",
        starting(),
        observed(failure(FailureKind.UNAVAILABLE, 503)),
        action=None,
        phase=Phase.STARTING,
        events=(),
        retry=True,
    ),
    Case(
        "starting_machine_404_is_cleared",
        starting(machine_missing_since=MISSING_SINCE),
        observed(GONE, tagged=()),
        phase=Phase.STOPPED,
        events=("MachineLost",),
        fields={"machine_id": None, "starting_at": None},
        logs=("starting_machine_gone",),
        requeue_after=0,
    ),
    Case(
        "failed_boot_while_starting_is_a_start_failure_retried_with_backoff",
        starting(),
        observed(machine("failed"), volume()),
        action=None,
        phase=Phase.STOPPED,
        events=("StartFailed",),
        conditions={"StartFailed": ("True", "StartFailed"), "Stalled": ("False", "NotStalled")},
        retry=True,
        requeue_after=5.0,
    ),
    # ------------------------------------------------------------------ running: self-heal
    Case(
        "running_counts_a_stopped_sighting",
        running(),
        observed(machine("stopped"), volume()),
        action=None,
        phase=Phase.RUNNING,
        events=(),
        fields={"stopped_checks": 1},
    ),
    Case(
        "running_to_stopped_after_five_stopped_sightings",
        running(stopped_checks=4),
        observed(machine("stopped"), volume()),
        action=None,
        phase=Phase.STOPPED,
        events=("Stopped",),
        fields={"stopped_checks": 0, "last_stopped_at": T0},
        logs=("mark_stopped",),
        requeue_after=0,
    ),
    Case(
        "created_counts_like_stopped",
        running(stopped_checks=2),
        observed(machine("created"), volume()),
        fields={"stopped_checks": 3},
        phase=Phase.RUNNING,
    ),
    Case(
        "healthy_check_resets_stopped_checks",
        running(stopped_checks=3),
        observed(machine("started"), volume()),
        action=None,
        events=(),
        fields={"stopped_checks": 0},
        conditions={"Ready": ("True", "Running")},
    ),
    Case(
        "transitional_states_change_nothing_while_running",
        running(),
        observed(machine("replacing"), volume()),
        action=None,
        phase=Phase.RUNNING,
        fields={"stopped_checks": 0},
    ),
    Case(
        "stopped_machine_is_started_again_when_desired_running",
        stopped(),
        observed(machine("stopped"), volume()),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
    ),
    Case(
        "failed_is_handled_at_once",
        running(),
        observed(machine("failed"), volume()),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        phase=Phase.STOPPED,
        events=("Stopped",),
        logs=("sync_status_failed",),
    ),
    Case(
        "failed_while_stopped_is_started",
        stopped(),
        observed(machine("failed"), volume()),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        events=(),
    ),
    Case(
        "stopped_to_running_when_started_outside",
        stopped(),
        observed(machine("started"), volume()),
        phase=Phase.RUNNING,
        events=("Started",),
        logs=("sync_status",),
    ),
    Case(
        "provisioned_to_running_when_fly_started",
        instance(status_=status(phase=Phase.PROVISIONED, machine_id=MACHINE, volume_id=VOLUME)),
        observed(machine("started"), volume()),
        phase=Phase.RUNNING,
    ),
    Case(
        "machine_404_is_cleared_and_recreated",
        running(machine_missing_since=MISSING_SINCE),
        observed(GONE, volume(), tagged=()),
        action=None,
        phase=Phase.STOPPED,
        events=("MachineLost",),
        fields={"machine_id": None, "volume_id": VOLUME},
        logs=("clear_stale_machine",),
        requeue_after=0,
    ),
    Case(
        "destroyed_machine_is_lost_without_waiting_for_the_404",
        running(),
        observed(machine("destroyed"), volume()),
        events=("MachineLost",),
        fields={"machine_id": None},
        requeue_after=0,
    ),
    Case(
        "booting_machine_outside_starting_is_a_start",
        stopped(),
        observed(machine("starting"), volume()),
        action=AwaitState(machine_id=MACHINE, state="started", instance_id="inst-1"),
        phase=Phase.STARTING,
        fields={"starting_at": T0},
    ),
    Case(
        "lost_machine_is_recreated_on_the_existing_volume",
        stopped(machine_id=None),
        observed(tagged=()),
        action=CreateMachine(volume_id=VOLUME, region="iad"),
    ),
    # ------------------------------------------------------------------ the volume
    Case(
        "volume_404_is_replaced_empty",
        running(volume_missing_since=MISSING_SINCE),
        observed(machine("started", volume="vol-stray"), GONE, named=()),
        action=None,
        events=("VolumeLost",),
        fields={"volume_id": None, "machine_id": MACHINE},
        logs=("replace_lost_volume",),
        requeue_after=0,
    ),
    Case(
        "soft_deleted_volume_is_lost",
        running(),
        observed(machine("started", volume="vol-stray"), replace(volume(), state="pending_destroy")),
        events=("VolumeLost",),
        fields={"volume_id": None},
    ),
    Case(
        "lost_volume_is_recreated_first",
        running(volume_id=None),
        observed(machine("started"), named=()),
        action=CreateVolume(region="iad", size_gb=10, name="claw_" + UID.replace("-", "").lower()[:24]),
    ),
    Case(
        "growing_volume_extends_it",
        instance(spec_=spec(volume={"sizeGB": 20}), status_=running().status),
        observed(machine("started"), volume(size_gb=10)),
        action=ExtendVolume(volume_id=VOLUME, size_gb=20),
    ),
    Case(
        "volume_lookup_error_keeps_status_and_retries",
        running(),
        observed(machine("started"), failure(FailureKind.UNAVAILABLE, 502)),
        action=None,
        phase=Phase.RUNNING,
        retry=True,
    ),
    Case(
        "machine_lookup_error_keeps_status_and_retries",
        running(),
        observed(failure(FailureKind.RATE_LIMITED, 429, retry_after=42.0), volume()),
        action=None,
        phase=Phase.RUNNING,
        events=(),
        conditions={"Ready": ("True", "Running")},
        retry=True,
        requeue_after=42.0,
    ),
    # ------------------------------------------------------------------ desired Stopped
    Case(
        "desired_stopped_stops_a_started_machine",
        instance(spec_=spec(state="Stopped"), status_=running().status),
        observed(machine("started"), volume()),
        action=StopMachine(machine_id=MACHINE),
    ),
    Case(
        "desired_stopped_with_stopped_machine_is_ready",
        instance(
            spec_=spec(state="Stopped"),
            status_=status(phase=Phase.STOPPED, machine_id=MACHINE, volume_id=VOLUME, region="iad"),
        ),
        observed(machine("stopped"), volume()),
        action=None,
        conditions={"Ready": ("True", "Stopped"), "Reconciling": ("False", "Reconciled")},
    ),
    Case(
        "desired_stopped_marks_a_machine_stopped_outside_without_threshold",
        instance(spec_=spec(state="Stopped"), status_=running().status),
        observed(machine("stopped"), volume()),
        action=None,
        phase=Phase.STOPPED,
        events=("Stopped",),
    ),
    Case(
        "desired_stopped_never_starts_a_failed_machine",
        instance(spec_=spec(state="Stopped"), status_=running().status),
        observed(machine("failed"), volume()),
        action=None,
        phase=Phase.STOPPED,
    ),
    Case(
        "stale_conditions_are_completed_to_all_six",
        instance(
            status_=status(
                phase=Phase.RUNNING,
                machine_id=MACHINE,
                volume_id=VOLUME,
                conditions=conditions(Ready=("True", "Running")),
            )
        ),
        observed(machine("started"), volume()),
        conditions={"Restarting": ("False", "NotRestarting"), "MountRepaired": ("False", "NoRepair")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_periodic_check(case: Case) -> None:
    check(case, run(case))
