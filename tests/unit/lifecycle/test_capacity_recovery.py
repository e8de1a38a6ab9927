"""Capacity recovery (issue 12, part 1: KiloClaw's replaceStrandedVolume), one pass per row.

A machine create or start that the volume's host has no room for records the recovery (the
guard); then, one step per pass: destroy the stranded machine, adopt or create the replacement
(Replace) or fork (Fork), create the machine on it, delete the old volume.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from claw_operator.api import CapacityRecovery, DesiredState, Phase
from claw_operator.lifecycle.model import (
    AwaitState,
    CreateMachine,
    DeleteStrandedVolume,
    DestroyStrandedMachine,
    FailureKind,
    ReplaceVolume,
    StartMachine,
    VolumeView,
)
from tests.unit.lifecycle.builders import (
    NAME,
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
    running_status,
    spec,
    status,
    volume,
)

CAPACITY = failure(
    FailureKind.CAPACITY, 412, "insufficient resources to create new machine with existing volume 'vol1'"
)
HOST_FULL = failure(FailureKind.CAPACITY, 409, "insufficient memory available to fulfill request")
BEGUN = T0 - timedelta(minutes=1)  # the capacity error, a backoff ago
NEW = VolumeView(id="vol2", region="iad", size_gb=10)


def provisioned(**overrides: object) -> dict[str, object]:
    """A volume, never started (no data): the create failed on it."""
    data: dict[str, object] = {
        "phase": Phase.STOPPED,
        "region": "iad",
        "volume_id": VOLUME,
        "volume_size_gb": 10,
    }
    data.update(overrides)
    return data


def stranded(mode: CapacityRecovery, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "stranded_volume_id": VOLUME,
        "stranded_region": "iad",
        "stranded_at": BEGUN,
        "capacity_recovery": mode,
    }
    data.update(overrides)
    return data


def replace_recovery(**overrides: object) -> object:
    return status(**{**provisioned(), **stranded(CapacityRecovery.REPLACE), **overrides})


def fork_recovery(**overrides: object) -> object:
    data = {**stranded(CapacityRecovery.FORK), "phase": Phase.STOPPED, "machine_state": "stopped"}
    data.update(overrides)
    return running_status(**data)


FORK = ReplaceVolume(stranded_volume_id=VOLUME, fork=True, region="iad", size_gb=10, name=NAME)
REPLACEMENT = ReplaceVolume(stranded_volume_id=VOLUME, fork=False, region="iad", size_gb=10, name=NAME)

CASES = [
    # ------------------------------------------------------------------ the capacity error
    Case(
        "a_machine_create_the_volume_host_has_no_room_for_records_a_replace",
        instance(status_=status(**provisioned())),
        observed(volume=volume(), tagged=()),
        decided=CreateMachine(volume_id=VOLUME, region="iad"),
        result=failed(CAPACITY),
        fields={
            "stranded_volume_id": VOLUME,
            "stranded_region": "iad",
            "stranded_at": T0,
            "capacity_recovery": CapacityRecovery.REPLACE,
            "volume_id": VOLUME,
        },
        conditions={"StartFailed": ("True", "InsufficientCapacity")},
        logs=("insufficient_resources", "start_failed"),
        retry=True,
    ),
    Case(
        "a_start_on_a_full_host_of_a_volume_with_data_records_a_fork",
        instance(status_=running_status(phase=Phase.STOPPED, machine_state="stopped")),
        observed(machine=machine("stopped"), volume=volume()),
        decided=StartMachine(machine_id="m1", volume_id=VOLUME),
        result=failed(HOST_FULL, machine("stopped")),
        fields={"stranded_volume_id": VOLUME, "capacity_recovery": CapacityRecovery.FORK, "machine_id": "m1"},
        conditions={"StartFailed": ("True", "InsufficientCapacity")},
        retry=True,
    ),
    Case(
        "another_failure_begins_no_recovery",
        instance(status_=status(**provisioned())),
        observed(volume=volume(), tagged=()),
        decided=CreateMachine(volume_id=VOLUME, region="iad"),
        result=failed(failure(FailureKind.UNAVAILABLE, 503)),
        fields={"stranded_volume_id": None, "capacity_recovery": None},
    ),
    # ------------------------------------------------------------------ at most one per backoff
    Case(
        "the_recovery_waits_for_the_backoff_after_its_capacity_error",
        instance(status_=replace_recovery(stranded_at=T0), failures=1),
        observed(volume=volume(), tagged=(), named=(volume(),)),
        action=None,
        requeue_after=TIMINGS.retry_base.total_seconds(),
    ),
    # ------------------------------------------------------------------ Replace
    Case(
        "replace_creates_a_new_empty_volume_same_region_then_the_fallbacks",
        instance(
            spec_=spec(fallback_regions=["ord", "ewr"]),
            status_=replace_recovery(),
        ),
        observed(volume=volume(), tagged=(), named=(volume(),)),
        action=ReplaceVolume(
            stranded_volume_id=VOLUME,
            fork=False,
            region="iad",
            size_gb=10,
            name=NAME,
            fallback_regions=("ord", "ewr"),
        ),
    ),
    Case(
        "the_replacement_is_recorded_with_an_event_naming_both",
        instance(status_=replace_recovery()),
        observed(volume=volume(), tagged=(), named=(volume(),)),
        decided=REPLACEMENT,
        result=ok(volume_=VolumeView(id="vol2", region="ord", size_gb=10)),
        fields={"volume_id": "vol2", "region": "ord", "stranded_volume_id": VOLUME, "stranded_at": T0},
        events=("VolumeReplaced",),
        logs=("create_replacement_volume",),
        requeue_after=0,
    ),
    Case(
        "then_the_machine_is_created_on_the_replacement_while_the_old_volume_waits",
        instance(status_=replace_recovery(volume_id="vol2")),
        observed(volume=NEW, tagged=()),
        action=CreateMachine(volume_id="vol2", region="iad"),
    ),
    Case(
        "replace_deletes_the_old_volume_once_the_machine_is_created",
        instance(status_=replace_recovery(volume_id="vol2", machine_id="m2", phase=Phase.STARTING)),
        observed(machine=machine("starting", id="m2", volume="vol2"), volume=NEW),
        action=DeleteStrandedVolume(volume_id=VOLUME),
    ),
    Case(
        "replace_deletes_the_old_volume_also_when_the_create_on_the_replacement_failed",
        instance(status_=replace_recovery(volume_id="vol2", last_start_error_at=T0 - timedelta(seconds=5))),
        observed(volume=NEW, tagged=()),
        action=DeleteStrandedVolume(volume_id=VOLUME),
    ),
    Case(
        "an_error_from_before_the_replacement_does_not_count_as_its_try",
        # The failed fork/replacement create, then the replacement recorded (strandedAt moved).
        instance(
            status_=replace_recovery(
                volume_id="vol2", stranded_at=T0 - timedelta(seconds=10), last_start_error_at=BEGUN
            )
        ),
        observed(volume=NEW, tagged=()),
        action=CreateMachine(volume_id="vol2", region="iad"),
    ),
    Case(
        "the_old_volume_deleted_ends_the_recovery",
        instance(status_=replace_recovery(volume_id="vol2", machine_id="m2", phase=Phase.STARTING)),
        observed(machine=machine("starting", id="m2", volume="vol2"), volume=NEW),
        decided=DeleteStrandedVolume(volume_id=VOLUME),
        result=ok(),
        fields={
            "stranded_volume_id": None,
            "capacity_recovery": None,
            "stranded_at": None,
            "volume_id": "vol2",
        },
        logs=("delete_stranded_volume",),
    ),
    Case(
        "an_old_volume_already_gone_ends_it_too",
        instance(status_=replace_recovery(volume_id="vol2", machine_id="m2", phase=Phase.STARTING)),
        observed(machine=machine("starting", id="m2", volume="vol2"), volume=NEW),
        decided=DeleteStrandedVolume(volume_id=VOLUME),
        result=failed(failure(FailureKind.NOT_FOUND, 404)),
        fields={"stranded_volume_id": None},
    ),
    Case(
        "a_failed_delete_of_the_old_volume_is_retried_never_forgotten",
        instance(status_=replace_recovery(volume_id="vol2", machine_id="m2", phase=Phase.STARTING)),
        observed(machine=machine("starting", id="m2", volume="vol2"), volume=NEW),
        decided=DeleteStrandedVolume(volume_id=VOLUME),
        result=failed(failure(FailureKind.PRECONDITION, 412, "volume is currently bound")),
        fields={"stranded_volume_id": VOLUME},
        logs=("delete_stranded_volume_failed",),
        retry=True,
    ),
    # ------------------------------------------------------------------ Fork
    Case(
        "fork_destroys_the_stranded_machine_first",
        instance(status_=fork_recovery()),
        observed(machine=machine("stopped"), volume=volume()),
        action=DestroyStrandedMachine(machine_id="m1"),
        logs=("destroy_stranded_machine",),
    ),
    Case(
        "the_destroyed_machine_is_forgotten",
        instance(status_=fork_recovery()),
        observed(machine=machine("stopped"), volume=volume()),
        decided=DestroyStrandedMachine(machine_id="m1"),
        result=failed(failure(FailureKind.NOT_FOUND, 404)),
        fields={"machine_id": None, "volume_id": VOLUME, "stranded_volume_id": VOLUME},
        requeue_after=0,
    ),
    Case(
        "a_machine_listed_on_the_stranded_volume_is_destroyed_not_adopted",
        instance(status_=fork_recovery(machine_id=None)),
        observed(volume=volume(), tagged=(machine("stopped", id="m7"),), named=(volume(),)),
        action=DestroyStrandedMachine(machine_id="m7"),
    ),
    Case(
        "then_the_volume_is_forked_never_replaced_by_an_empty_one",
        instance(status_=fork_recovery(machine_id=None)),
        observed(volume=volume(), tagged=(), named=(volume(),)),
        action=FORK,
    ),
    Case(
        "no_fork_without_a_conclusive_listing",
        instance(status_=fork_recovery(machine_id=None)),
        observed(volume=volume(), tagged=()),
        action=None,
    ),
    Case(
        "a_fork_whose_answer_was_lost_is_adopted_by_its_name_not_made_twice",
        instance(status_=fork_recovery(machine_id=None)),
        observed(
            volume=volume(), tagged=(), named=(volume(), VolumeView(id="vol2", region="ord", size_gb=10))
        ),
        action=None,
        fields={"volume_id": "vol2", "region": "ord", "stranded_volume_id": VOLUME},
        logs=("recover_volume_by_name",),
        requeue_after=0,
    ),
    Case(
        "a_failed_fork_propagates_and_leaves_the_volume_the_instance_s",
        instance(status_=fork_recovery(machine_id=None)),
        observed(volume=volume(), tagged=(), named=(volume(),)),
        decided=FORK,
        result=failed(failure(FailureKind.CAPACITY, 412, "no capacity available in iad")),
        fields={"volume_id": VOLUME, "stranded_volume_id": VOLUME},
        conditions={"StartFailed": ("True", "InsufficientCapacity")},
        events=("StartFailed",),
        logs=("fork_stranded_volume_failed",),
        retry=True,
    ),
    Case(
        "the_fork_is_recorded_with_an_event_naming_both",
        instance(status_=fork_recovery(machine_id=None)),
        observed(volume=volume(), tagged=(), named=(volume(),)),
        decided=FORK,
        result=ok(volume_=NEW),
        fields={"volume_id": "vol2", "stranded_volume_id": VOLUME},
        events=("VolumeForked",),
        logs=("fork_stranded_volume",),
    ),
    Case(
        "the_old_volume_stays_while_the_machine_on_the_fork_boots",
        instance(status_=fork_recovery(volume_id="vol2", machine_id="m2", phase=Phase.STARTING)),
        observed(machine=machine("starting", id="m2", volume="vol2"), volume=NEW),
        action=AwaitState(machine_id="m2", state="started", instance_id="inst-1"),
    ),
    Case(
        "the_old_volume_stays_while_the_machine_on_the_fork_has_not_started_since",
        # Not started yet (the status still says it last started before the recovery began).
        instance(status_=fork_recovery(volume_id="vol2", machine_id="m2", phase=Phase.STARTING)),
        observed(machine=machine("created", id="m2", volume="vol2"), volume=NEW),
        action=AwaitState(machine_id="m2", state="started", instance_id="inst-1"),
    ),
    Case(
        "the_old_volume_goes_once_the_machine_on_the_fork_started",
        instance(
            status_=fork_recovery(
                volume_id="vol2",
                machine_id="m2",
                phase=Phase.RUNNING,
                machine_state="started",
                last_started_at=T0,
            )
        ),
        observed(machine=machine("started", id="m2", volume="vol2"), volume=NEW),
        action=DeleteStrandedVolume(volume_id=VOLUME),
    ),
    Case(
        "a_machine_that_started_on_the_stranded_volume_after_all_ends_the_recovery",
        instance(status_=fork_recovery()),
        observed(machine=machine("started"), volume=volume()),
        fields={"stranded_volume_id": None, "volume_id": VOLUME, "machine_id": "m1"},
        logs=("capacity_recovery_abandoned",),
    ),
    # ------------------------------------------------------------------ spec.state Stopped
    Case(
        "stopped_before_any_replacement_ends_the_recovery",
        instance(spec_=spec(state=DesiredState.STOPPED), status_=fork_recovery()),
        observed(machine=machine("stopped"), volume=volume(), named=(volume(),)),
        action=None,
        fields={"stranded_volume_id": None, "volume_id": VOLUME, "machine_id": "m1"},
        logs=("capacity_recovery_wound_up",),
    ),
    Case(
        "stopped_deletes_a_fork_whose_record_was_lost",
        instance(spec_=spec(state=DesiredState.STOPPED), status_=fork_recovery(machine_id=None)),
        observed(volume=volume(), tagged=(), named=(volume(), NEW)),
        action=DeleteStrandedVolume(volume_id="vol2"),
        fields={"volume_id": VOLUME},
    ),
    Case(
        "stopped_with_an_unused_fork_keeps_the_volume_with_the_data",
        instance(
            spec_=spec(state=DesiredState.STOPPED),
            status_=fork_recovery(machine_id=None, volume_id="vol2", region="ord"),
        ),
        observed(volume=NEW, tagged=()),
        action=DeleteStrandedVolume(volume_id="vol2"),
        fields={"volume_id": VOLUME, "region": "iad", "stranded_volume_id": VOLUME},
        logs=("capacity_recovery_wound_up",),
    ),
    Case(
        "stopped_destroys_the_resting_machine_on_an_unused_fork_first",
        instance(
            spec_=spec(state=DesiredState.STOPPED),
            status_=fork_recovery(machine_id="m2", volume_id="vol2"),
        ),
        observed(machine=machine("created", id="m2", volume="vol2"), volume=NEW),
        action=DestroyStrandedMachine(machine_id="m2"),
    ),
    Case(
        "stopped_keeps_both_when_a_machine_was_launched_on_the_fork",
        # It may have written to the fork, and never proved it good by starting: neither goes.
        instance(
            spec_=spec(state=DesiredState.STOPPED),
            status_=fork_recovery(machine_id="m2", volume_id="vol2"),
        ),
        observed(machine=machine("stopped", id="m2", volume="vol2"), volume=NEW),
        action=None,
        fields={"volume_id": "vol2", "stranded_volume_id": VOLUME, "used_volume_id": "vol2"},
    ),
    Case(
        "a_fork_stranded_too_is_dropped_when_unused_and_the_data_volume_kept",
        instance(
            status_=fork_recovery(
                machine_id=None,
                volume_id="vol2",
                last_start_error_at=T0,
                conditions=conditions(StartFailed=("True", "InsufficientCapacity")),
            )
        ),
        observed(volume=NEW, tagged=()),
        action=DeleteStrandedVolume(volume_id="vol2"),
        fields={"volume_id": VOLUME, "stranded_volume_id": VOLUME},
    ),
    # ------------------------------------------------------------------ a fork of the fork
    Case(
        "a_fork_stranded_too_after_a_machine_was_launched_on_it_is_forked_in_turn",
        # The fork may hold newer data and is not proven good: neither volume may go. The fork
        # becomes the stranded volume; the old one is superseded (kept until the end).
        instance(
            status_=fork_recovery(
                machine_id="m2",
                volume_id="vol2",
                region="ord",
                used_volume_id="vol2",
                last_start_error_at=T0,
                conditions=conditions(StartFailed=("True", "InsufficientCapacity")),
            )
        ),
        observed(machine=machine("stopped", id="m2", volume="vol2"), volume=NEW),
        action=None,
        fields={
            "volume_id": "vol2",
            "stranded_volume_id": "vol2",
            "stranded_region": "ord",
            "stranded_at": T0,
            "superseded_volume_ids": [VOLUME],
        },
        logs=("fork_stranded_fork",),
        requeue_after=0,
    ),
    Case(
        "the_fork_of_the_fork_is_made_from_the_newest_volume",
        instance(
            status_=fork_recovery(
                machine_id=None, volume_id="vol2", stranded_volume_id="vol2", superseded_volume_ids=[VOLUME]
            )
        ),
        observed(volume=NEW, tagged=(), named=(volume(), NEW)),
        decided=ReplaceVolume(stranded_volume_id="vol2", fork=True, region="iad", size_gb=10, name=NAME),
        result=ok(volume_=VolumeView(id="vol3", region="iad", size_gb=10)),
        fields={"volume_id": "vol3", "stranded_volume_id": "vol2", "superseded_volume_ids": [VOLUME]},
        events=("VolumeForked",),
    ),
    Case(
        "a_superseded_volume_is_never_adopted_as_the_fork_of_the_fork",
        instance(
            status_=fork_recovery(
                machine_id=None, volume_id="vol2", stranded_volume_id="vol2", superseded_volume_ids=[VOLUME]
            )
        ),
        observed(
            volume=NEW, tagged=(), named=(volume(), NEW, VolumeView(id="vol3", region="iad", size_gb=10))
        ),
        action=None,
        fields={"volume_id": "vol3", "stranded_volume_id": "vol2", "superseded_volume_ids": [VOLUME]},
        logs=("recover_volume_by_name",),
        requeue_after=0,
    ),
    Case(
        "the_superseded_volumes_go_first_once_the_machine_on_the_newest_fork_started",
        instance(
            status_=fork_recovery(
                volume_id="vol3",
                machine_id="m3",
                stranded_volume_id="vol2",
                superseded_volume_ids=[VOLUME],
                phase=Phase.RUNNING,
                machine_state="started",
                last_started_at=T0,
            )
        ),
        observed(
            machine=machine("started", id="m3", volume="vol3"),
            volume=VolumeView(id="vol3", region="iad", size_gb=10),
        ),
        decided=DeleteStrandedVolume(volume_id=VOLUME),
        result=ok(),
        fields={"superseded_volume_ids": None, "stranded_volume_id": "vol2"},
        logs=("delete_superseded_volume", "delete_stranded_volume"),
        requeue_after=0,
    ),
    Case(
        "stopped_keeps_the_newest_fork_and_the_superseded_volume_until_a_start",
        instance(
            spec_=spec(state=DesiredState.STOPPED),
            status_=fork_recovery(
                machine_id=None, volume_id="vol2", stranded_volume_id="vol2", superseded_volume_ids=[VOLUME]
            ),
        ),
        observed(volume=NEW, tagged=(), named=(volume(), NEW)),
        action=None,
        fields={"volume_id": "vol2", "stranded_volume_id": "vol2", "superseded_volume_ids": [VOLUME]},
    ),
    Case(
        "stopped_after_a_replace_keeps_the_replacement",
        instance(spec_=spec(state=DesiredState.STOPPED), status_=replace_recovery(volume_id="vol2")),
        observed(volume=NEW, tagged=()),
        action=DeleteStrandedVolume(volume_id=VOLUME),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_capacity_recovery(case: Case) -> None:
    check(case, run(case))
