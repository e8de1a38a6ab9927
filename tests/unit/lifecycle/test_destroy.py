"""Delete: two-phase destroy, lastDestroyError*, deletionPolicy (contract behaviours 2 and 9)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from claw_operator.api import DestroyOp, Phase
from claw_operator.lifecycle.model import DeleteVolume, DestroyMachine, FailureKind, Instance
from tests.unit.lifecycle.builders import (
    GONE,
    MACHINE,
    T0,
    VOLUME,
    Case,
    check,
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


def deleting(status_: Any = None, **spec_overrides: Any) -> Instance:
    return instance(
        spec_=spec(**spec_overrides),
        status_=status_ if status_ is not None else running_status(),
        deleting=True,
    )


def destroying(**overrides: Any) -> Instance:
    data: dict[str, Any] = {
        "phase": Phase.DESTROYING,
        "machine_id": MACHINE,
        "volume_id": VOLUME,
        "pending_destroy_machine_id": MACHINE,
        "pending_destroy_volume_id": VOLUME,
    }
    return deleting(status(**{**data, **overrides}))


ERROR_FIELDS = ("last_destroy_error_op", "last_destroy_error_status", "last_destroy_error_message")
NO_ERROR = dict.fromkeys(ERROR_FIELDS)

CASES = [
    Case(
        "delete_first_persists_destroying_and_the_pending_ids",
        deleting(),
        observed(machine("started"), volume()),
        action=None,
        phase=Phase.DESTROYING,
        events=("Destroying",),
        fields={"pending_destroy_machine_id": MACHINE, "pending_destroy_volume_id": VOLUME},
        conditions={"Ready": ("False", "Destroying"), "Reconciling": ("True", "Destroying")},
        requeue_after=0,
    ),
    Case(
        "delete_while_starting_goes_to_destroying",  # behaviour 2
        deleting(status(phase=Phase.STARTING, starting_at=T0, machine_id=MACHINE, volume_id=VOLUME)),
        observed(machine("created"), volume()),
        action=None,
        phase=Phase.DESTROYING,
        fields={"starting_at": None},
    ),
    Case(
        "delete_records_a_tagged_machine_never_written_to_status",
        deleting(status(phase=Phase.STOPPED, volume_id=VOLUME)),
        observed(volume=volume(), tagged=(machine("created", id="m7"),)),
        phase=Phase.DESTROYING,
        fields={"pending_destroy_machine_id": "m7", "pending_destroy_volume_id": VOLUME},
        logs=("recover_machine_from_metadata",),
    ),
    Case(
        "delete_records_a_named_volume_never_written_to_status",
        deleting(status(phase=Phase.STOPPED)),
        observed(tagged=(), named=(volume("vol9"),)),
        fields={"pending_destroy_volume_id": "vol9", "pending_destroy_machine_id": None},
        logs=("recover_volume_by_name",),
        requeue_after=0,
    ),
    Case(
        "delete_recovers_the_machine_bound_to_the_volume",
        deleting(status(phase=Phase.STOPPED, volume_id=VOLUME)),
        observed(volume=volume(attached="m8"), tagged=()),
        fields={"pending_destroy_machine_id": "m8"},
        logs=("recover_bound_machine_for_destroy",),
    ),
    Case(
        "delete_ignores_an_invalid_bound_machine_id",
        deleting(status(phase=Phase.STOPPED, volume_id=VOLUME)),
        observed(volume=volume(attached="../etc"), tagged=()),
        fields={"pending_destroy_machine_id": None},
        logs=("recover_bound_machine_invalid_id",),
    ),
    Case(
        "destroying_destroys_the_machine_first",
        destroying(),
        observed(machine("started"), volume(attached=MACHINE)),
        action=DestroyMachine(machine_id=MACHINE),
    ),
    Case(
        "destroyed_machine_clears_pending_and_error",
        destroying(last_destroy_error_op=DestroyOp.MACHINE, last_destroy_error_status=500),
        observed(machine("started"), volume()),
        result=ok(),
        phase=Phase.DESTROYING,
        fields={"pending_destroy_machine_id": None, "machine_id": None, **NO_ERROR},
        logs=("destroy_machine_ok",),
        requeue_after=0,
    ),
    Case(
        "destroy_machine_404_counts_as_done",
        destroying(),
        observed(GONE, volume()),
        result=failed(failure(FailureKind.NOT_FOUND, 404)),
        fields={"pending_destroy_machine_id": None, "machine_id": None},
        logs=("destroy_machine_already_gone",),
    ),
    Case(
        "destroy_machine_500_is_recorded_and_retried",
        destroying(),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.UNAVAILABLE, 500, "internal error")),
        phase=Phase.DESTROYING,
        events=("DestroyFailed",),
        fields={
            "pending_destroy_machine_id": MACHINE,
            "last_destroy_error_op": DestroyOp.MACHINE,
            "last_destroy_error_status": 500,
            "last_destroy_error_message": "internal error",
            "last_destroy_error_at": T0,
        },
        logs=("destroy_machine_failed",),
        retry=True,
        requeue_after=5.0,
    ),
    Case(
        "the_same_destroy_failure_again_updates_the_fields_without_a_new_event",
        destroying(
            last_destroy_error_op=DestroyOp.MACHINE,
            last_destroy_error_status=500,
            last_destroy_error_message="internal error (request 1)",
        ),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.UNAVAILABLE, 500, "internal error (request 2)")),
        events=(),
        fields={"last_destroy_error_message": "internal error (request 2)", "last_destroy_error_at": T0},
        logs=("destroy_machine_failed",),
        retry=True,
    ),
    Case(
        "a_different_destroy_failure_posts_its_event",
        destroying(last_destroy_error_op=DestroyOp.MACHINE, last_destroy_error_status=412),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.UNAVAILABLE, 500, "internal error")),
        events=("DestroyFailed",),
        retry=True,
    ),
    Case(
        "destroy_failure_without_a_response_records_status_zero",
        destroying(),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.TIMEOUT, None, "read timeout")),
        fields={"last_destroy_error_status": 0},
        retry=True,
    ),
    Case(
        "destroying_deletes_the_volume_after_the_machine",
        destroying(machine_id=None, pending_destroy_machine_id=None),
        observed(volume=volume(), tagged=()),
        action=DeleteVolume(volume_id=VOLUME),
    ),
    Case(
        "volume_delete_412_is_recorded_and_retried",
        destroying(machine_id=None, pending_destroy_machine_id=None),
        observed(volume=volume(), tagged=()),
        result=failed(failure(FailureKind.PRECONDITION, 412, "failed_precondition: volume is bound")),
        events=("DestroyFailed",),
        fields={"last_destroy_error_op": DestroyOp.VOLUME, "last_destroy_error_status": 412},
        logs=("destroy_volume_failed",),
        retry=True,
    ),
    Case(
        "deleted_volume_clears_pending",
        destroying(machine_id=None, pending_destroy_machine_id=None),
        observed(volume=volume(), tagged=()),
        result=failed(failure(FailureKind.NOT_FOUND, 404)),
        fields={"pending_destroy_volume_id": None, "volume_id": None},
        logs=("destroy_volume_already_gone",),
        requeue_after=0,
    ),
    Case(
        "destroying_finalizes_when_both_are_gone",
        destroying(
            machine_id=None, volume_id=None, pending_destroy_machine_id=None, pending_destroy_volume_id=None
        ),
        observed(tagged=(), named=()),
        action=None,
        events=("Destroyed",),
        fields={"destroyed_at": T0},
        logs=("destroy_complete",),
        finalize=True,
    ),
    Case(
        "destroying_finds_a_leaked_machine_before_finalizing",
        destroying(
            machine_id=None, volume_id=None, pending_destroy_machine_id=None, pending_destroy_volume_id=None
        ),
        observed(tagged=(machine("started", id="m5"), machine("destroyed", id="m6"))),
        action=DestroyMachine(machine_id="m5"),
        finalize=False,
    ),
    Case(
        "destroying_deletes_a_leftover_named_volume_before_finalizing",
        destroying(
            machine_id=None, volume_id=None, pending_destroy_machine_id=None, pending_destroy_volume_id=None
        ),
        observed(tagged=(), named=(volume("vol9"),)),
        action=DeleteVolume(volume_id="vol9"),
        finalize=False,
    ),
    Case(
        "destroying_never_finalizes_on_an_inconclusive_listing",
        destroying(
            machine_id=None, volume_id=None, pending_destroy_machine_id=None, pending_destroy_volume_id=None
        ),
        observed(tagged=failure(FailureKind.UNAVAILABLE, 503)),
        action=None,
        fields={"last_destroy_error_op": DestroyOp.RECOVER},
        retry=True,
        finalize=False,
    ),
    Case(
        "destroying_never_creates_anything",
        destroying(
            machine_id=None, volume_id=None, pending_destroy_machine_id=None, pending_destroy_volume_id=None
        ),
        observed(GONE, GONE, tagged=(), named=()),
        action=None,
        finalize=True,
    ),
    Case(
        "orphan_policy_finalizes_at_once_and_keeps_fly_objects",
        deleting(deletionPolicy="Orphan"),
        observed(machine("started"), volume()),
        action=None,
        events=(),
        fields={"machine_id": MACHINE, "volume_id": VOLUME},
        finalize=True,
    ),
    Case(
        "destroy_with_a_revoked_token_stalls_but_keeps_retrying",
        destroying(),
        observed(failure(FailureKind.UNAUTHORIZED, 401), volume()),
        result=failed(failure(FailureKind.UNAUTHORIZED, 401, "unauthorized")),
        conditions={"Stalled": ("True", "Unauthorized")},
        retry=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_destroy(case: Case) -> None:
    check(case, run(case))


def test_phase_never_leaves_destroying_even_when_fly_reports_started() -> None:
    later = destroying(machine_id=MACHINE)
    decision = run(
        Case("started", later, observed(machine("started"), volume()), now=T0 + timedelta(hours=1))
    )
    assert decision.status.phase == Phase.DESTROYING
    assert isinstance(decision.action, DestroyMachine)
