"""The user's volume, as decisions (issue 18; issue 11 items 7, 8, 10): loss only on proof, no
create without a conclusive listing, idempotent extend, grow in any power state, the machine in
the volume's region, and the destroy's last look."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from claw_operator.api import Phase
from claw_operator.lifecycle import decide
from claw_operator.lifecycle.model import (
    ActionResult,
    CreateMachine,
    CreateVolume,
    ExtendVolume,
    FailureKind,
    Instance,
    Observation,
)
from tests.unit.lifecycle.builders import (
    GONE,
    MACHINE,
    MISSING_SINCE,
    NAME,
    T0,
    TIMINGS,
    VOLUME,
    Case,
    check,
    failure,
    instance,
    machine,
    observed,
    provisioned,
    run,
    running,
    running_status,
    spec,
    status,
    volume,
)

GRACE = TIMINGS.loss_grace.total_seconds()
LIST_FAILED = failure(FailureKind.UNAVAILABLE, 503, "list failed")
STRAY = "vol-stray"  # a volume the machine mounts that is not the instance's


def with_named_failure(obs: Observation, fly_failure: Any = LIST_FAILED) -> Observation:
    return replace(obs, named_volumes=None, named_failure=fly_failure)


def stopped_desired(size_gb: int = 20, **overrides: Any) -> Instance:
    data: dict[str, Any] = {"phase": Phase.STOPPED, "machine_state": "stopped", "volume_size_gb": 10}
    data.update(overrides)
    return instance(spec_=spec(state="Stopped", volume={"sizeGB": size_gb}), status_=running_status(**data))


def deleting_done(**overrides: Any) -> Instance:
    data: dict[str, Any] = {"phase": Phase.DESTROYING}
    data.update(overrides)
    return instance(status_=status(**data), deleting=True)


CASES = [
    # ---------------------------------------------------------------- volume: loss only on proof
    Case(
        "volume_first_404_is_remembered_and_looked_at_again",
        running(),
        observed(machine("started", volume=STRAY), GONE, named=()),
        action=None,
        events=(),
        fields={"volume_id": VOLUME, "volume_missing_since": T0},
        logs=("volume_not_found_once",),
        requeue_after=GRACE,
    ),
    Case(
        "volume_second_404_within_the_grace_period_waits",
        running(volume_missing_since=T0 - timedelta(seconds=10)),
        observed(machine("started", volume=STRAY), GONE, named=()),
        events=(),
        fields={"volume_id": VOLUME},
        requeue_after=GRACE - 10,
    ),
    Case(
        "volume_second_404_without_a_listing_is_not_proven",
        running(volume_missing_since=MISSING_SINCE),
        with_named_failure(observed(machine("started", volume=STRAY), GONE)),
        events=(),
        fields={"volume_id": VOLUME, "volume_missing_since": MISSING_SINCE},
        retry=True,
    ),
    Case(
        "volume_404_contradicted_by_the_listing_is_no_loss",
        running(volume_missing_since=MISSING_SINCE),
        observed(machine("started", volume=STRAY), GONE, named=(volume(),)),
        # (the pass goes on: the machine's mount is repaired onto the volume)
        fields={"volume_id": VOLUME, "volume_missing_since": None, "lost_volume_id": None},
        logs=("volume_not_found_contradicted",),
    ),
    Case(
        "volume_read_again_clears_the_suspicion",
        running(volume_missing_since=MISSING_SINCE),
        observed(machine("started"), volume()),
        events=(),
        fields={"volume_missing_since": None, "volume_size_gb": 10},
        conditions={"Ready": ("True", "Running")},
    ),
    Case(
        "volume_mounted_by_our_machine_is_never_lost",
        running(volume_missing_since=MISSING_SINCE),
        observed(machine("started"), GONE, named=()),
        events=(),
        fields={"volume_id": VOLUME, "volume_missing_since": None},
    ),
    Case(
        "volume_mounted_by_a_tagged_machine_is_never_lost",
        running(volume_missing_since=MISSING_SINCE, machine_id=None),
        observed(None, GONE, tagged=(machine("stopped"),), named=()),
        events=("MachineRecovered",),
        fields={"volume_id": VOLUME, "machine_id": MACHINE},
    ),
    Case(
        "volume_id_follows_the_volume_the_machine_mounts",
        running(volume_missing_since=MISSING_SINCE),
        observed(machine("started", volume="vol2"), GONE, named=(volume("vol2", attached=MACHINE),)),
        events=(),
        fields={"volume_id": "vol2", "volume_missing_since": None},
        logs=("volume_id_follows_mount",),
    ),
    Case(
        "volume_id_follows_the_mount_onto_another_volume_of_the_instance",
        running(),
        observed(
            machine("started", volume="vol2"), volume(), named=(volume(), volume("vol2", attached=MACHINE))
        ),
        action=None,
        events=(),
        fields={"volume_id": "vol2", "restarting_at": None},
        conditions={"Restarting": ("False", "NotRestarting"), "MountRepaired": ("False", "NoRepair")},
        logs=("volume_id_follows_mount",),
    ),
    Case(
        "a_mount_on_a_foreign_volume_is_still_repaired",
        running(),
        observed(machine("started", volume=STRAY), volume(), named=(volume(),)),
        fields={"volume_id": VOLUME},
        conditions={"Restarting": ("True", "MountRepair")},
    ),
    Case(
        "volume_proven_lost_is_replaced_with_the_evidence",
        running(volume_missing_since=MISSING_SINCE),
        observed(machine("started", volume=STRAY), GONE, named=()),
        events=("VolumeLost",),
        fields={
            "volume_id": None,
            "lost_volume_id": VOLUME,
            "last_volume_loss_at": T0,
            "volume_missing_since": None,
        },
        logs=("replace_lost_volume",),
        requeue_after=0,
    ),
    Case(
        "machine_and_volume_gone_together_are_proven_in_one_pass",
        running(volume_missing_since=MISSING_SINCE, machine_missing_since=MISSING_SINCE),
        observed(GONE, GONE, tagged=(), named=()),
        events=("VolumeLost", "MachineLost"),
        fields={"volume_id": None, "machine_id": None},
        requeue_after=0,
    ),
    Case(
        "machine_and_volume_first_404s_are_both_remembered",
        running(),
        observed(GONE, GONE, tagged=(), named=()),
        events=(),
        fields={"volume_missing_since": T0, "machine_missing_since": T0, "machine_id": MACHINE},
        requeue_after=GRACE,
    ),
    # ---------------------------------------------------------------- machine: loss only on proof
    Case(
        "machine_first_404_is_remembered_without_a_warning",
        running(),
        observed(GONE, volume(), tagged=()),
        action=None,
        events=(),
        phase=Phase.RUNNING,
        fields={"machine_id": MACHINE, "machine_missing_since": T0},
        logs=("machine_not_found_once",),
        requeue_after=GRACE,
    ),
    Case(
        "machine_404_contradicted_by_the_tag_listing_is_no_loss",
        running(machine_missing_since=MISSING_SINCE),
        observed(GONE, volume(), tagged=(machine("started"),)),
        events=(),
        fields={"machine_id": MACHINE, "machine_missing_since": None},
        logs=("machine_not_found_contradicted",),
    ),
    Case(
        "machine_second_404_without_a_listing_is_not_proven",
        running(machine_missing_since=MISSING_SINCE),
        observed(GONE, volume(), tagged=LIST_FAILED),
        events=(),
        fields={"machine_id": MACHINE},
        retry=True,
    ),
    Case(
        "machine_read_again_clears_the_suspicion",
        running(machine_missing_since=MISSING_SINCE),
        observed(machine("started"), volume()),
        events=(),
        fields={"machine_missing_since": None},
        conditions={"Ready": ("True", "Running")},
    ),
    # ---------------------------------------------------------------- provide: conclusive listing
    Case(
        "no_volume_create_on_a_failed_listing",
        instance(),
        with_named_failure(observed(tagged=())),
        action=None,
        events=(),
        fields={"volume_id": None},
        logs=("volume_listing_inconclusive",),
        retry=True,
    ),
    Case(
        "no_volume_create_on_an_unsettled_listing",
        instance(),
        with_named_failure(
            observed(tagged=()), failure(FailureKind.UNAVAILABLE, None, "not settled", retry_after=12.0)
        ),
        action=None,
        retry=True,
        requeue_after=12.0,
    ),
    Case(
        "volume_create_on_an_empty_conclusive_listing",
        instance(),
        observed(tagged=(), named=()),
        action=CreateVolume(region="iad", size_gb=10, name=NAME),
    ),
    Case(
        "recovery_prefers_the_volume_our_machine_mounts",
        running(volume_id=None),
        observed(machine("started", volume="vol5"), named=(volume("vol4"), volume("vol5", attached=MACHINE))),
        action=None,
        fields={"volume_id": "vol5"},
        logs=("recover_volume_by_name", "multiple_volumes_found"),
    ),
    Case(
        "recovery_prefers_a_volume_attached_to_our_machine_over_a_free_one",
        running(volume_id=None),
        observed(machine("started", volume=STRAY), named=(volume("vol4"), volume("vol5", attached=MACHINE))),
        fields={"volume_id": "vol5"},
    ),
    # ---------------------------------------------------------------- grow in any power state
    Case(
        "grow_while_stopped_is_applied",
        stopped_desired(),
        observed(machine("stopped"), volume(size_gb=10)),
        action=ExtendVolume(volume_id=VOLUME, size_gb=20),
        conditions={"Ready": ("False", "Resizing")},
    ),
    Case(
        "grow_while_stopped_without_a_machine_is_applied",
        stopped_desired(machine_id=None, machine_state=None),
        observed(None, volume(size_gb=10), tagged=()),
        action=ExtendVolume(volume_id=VOLUME, size_gb=20),
    ),
    Case(
        "grow_refused_for_now_is_reported_resizing_and_retried",
        stopped_desired(),
        observed(machine("stopped"), volume(size_gb=10)),
        result=ActionResult(failure=failure(FailureKind.UNAVAILABLE, 503), volume=volume(size_gb=10)),
        fields={"volume_size_gb": 10},
        conditions={
            "Ready": ("False", "Resizing"),
            "Reconciling": ("True", "Resizing"),
            "Stalled": ("False", "NotStalled"),
        },
        retry=True,
    ),
    Case(
        "extend_refused_because_it_already_happened_is_a_success",
        instance(spec_=spec(volume={"sizeGB": 20}), status_=running_status(volume_size_gb=10)),
        observed(machine("started"), volume(size_gb=10)),
        decided=ExtendVolume(volume_id=VOLUME, size_gb=20),
        result=ActionResult(
            failure=failure(
                FailureKind.INVALID_CONFIG, 400, "size_gb must be greater than the current size (20)"
            ),
            volume=volume(size_gb=20),
        ),
        fields={"volume_size_gb": 20},
        conditions={"Ready": ("True", "Running"), "Stalled": ("False", "NotStalled")},
        logs=("extend_volume_already_applied",),
        retry=False,
    ),
    Case(
        "extend_refused_for_good_stalls",
        instance(spec_=spec(volume={"sizeGB": 20}), status_=running_status(volume_size_gb=10)),
        observed(machine("started"), volume(size_gb=10)),
        result=ActionResult(
            failure=failure(FailureKind.INVALID_CONFIG, 400, "too big"), volume=volume(size_gb=10)
        ),
        conditions={"Stalled": ("True", "InvalidConfig"), "Ready": ("False", "InvalidConfig")},
    ),
    Case(
        "ready_at_the_wrong_size_is_never_true",
        instance(spec_=spec(volume={"sizeGB": 20}), status_=running_status(volume_size_gb=10)),
        observed(machine("started"), volume(size_gb=10)),
        action=ExtendVolume(volume_id=VOLUME, size_gb=20),
        conditions={"Ready": ("False", "Resizing")},
    ),
    # ---------------------------------------------------------------- the volume's real region
    Case(
        "the_machine_is_created_where_the_volume_really_is",
        provisioned(),
        observed(None, replace(volume(), region="ord"), tagged=()),
        action=CreateMachine(volume_id=VOLUME, region="ord"),
        fields={"region": "ord"},
        logs=("volume_region_corrected",),
    ),
    Case(
        "no_machine_create_while_the_volume_cannot_be_read",
        provisioned(),
        observed(None, failure(FailureKind.UNAVAILABLE, 503), tagged=()),
        action=None,
        retry=True,
    ),
    # ---------------------------------------------------------------- destroy's last look
    Case(
        "destroy_keeps_the_finalizer_while_the_volume_listing_fails",
        deleting_done(),
        with_named_failure(observed(tagged=())),
        action=None,
        events=("DestroyFailed",),
        fields={"last_destroy_error_op": "recover"},
        finalize=False,
        retry=True,
    ),
    Case(
        "destroy_completes_once_with_one_event",
        deleting_done(),
        observed(tagged=(), named=()),
        events=("Destroyed",),
        fields={"destroyed_at": T0},
        finalize=True,
    ),
    Case(
        "a_repeated_last_destroy_pass_posts_no_second_destroyed",
        deleting_done(destroyed_at=MISSING_SINCE),
        observed(tagged=(), named=()),
        events=(),
        fields={"destroyed_at": MISSING_SINCE},
        finalize=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_volume(case: Case) -> None:
    check(case, run(case))


def test_volume_lost_logs_data_loss_only_when_it_held_data() -> None:
    obs = observed(machine("started", volume=STRAY), GONE, named=())
    held = decide(running(volume_missing_since=MISSING_SINCE), obs, T0, TIMINGS)
    fresh = decide(
        running(volume_missing_since=MISSING_SINCE, last_started_at=None, phase=Phase.STARTING),
        obs,
        T0,
        TIMINGS,
    )
    for decision, data_loss, words in ((held, True, "data it held is lost"), (fresh, False, "no data")):
        (log,) = [r for r in decision.logs if r.action == "replace_lost_volume"]
        assert log.details["data_loss"] is data_loss and log.details["old_volume_id"] == VOLUME
        (event,) = decision.events
        assert event.type.value == "Warning" and words in event.message
        assert "404" in event.message and VOLUME in event.message
