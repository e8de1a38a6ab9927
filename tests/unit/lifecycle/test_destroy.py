"""Delete: two-phase destroy, lastDestroyError*, deletionPolicy (contract behaviours 2 and 9)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from claw_operator.api import DeletionPolicy, DestroyOp, Phase
from claw_operator.lifecycle.destroy import DestroyLookups, destroy_lookups
from claw_operator.lifecycle.model import DeleteVolume, DestroyMachine, FailureKind, Instance, Timings
from claw_operator.lifecycle.timing import detach_retry
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
        # Still bound right after the destroy: tried again once Fly has detached it, no failure.
        retry=False,
        requeue_after=20.0,
    ),
    Case(
        "volume_delete_refused_again_backs_off_within_the_detach_delay",
        destroying(
            machine_id=None,
            pending_destroy_machine_id=None,
            last_destroy_error_op=DestroyOp.VOLUME,
            last_destroy_error_status=412,
            last_destroy_error_message="failed_precondition: volume is bound",
        ),
        observed(volume=volume(), tagged=()),
        result=failed(failure(FailureKind.PRECONDITION, 412, "failed_precondition: volume is bound")),
        events=(),
        fields={"last_destroy_error_op": DestroyOp.VOLUME, "last_destroy_error_status": 412},
        retry=True,
        requeue_after=5.0,
    ),
    Case(
        "woken_before_the_volume_can_be_detached_waits_the_rest",
        destroying(
            machine_id=None,
            pending_destroy_machine_id=None,
            last_destroy_error_op=DestroyOp.VOLUME,
            last_destroy_error_status=412,
            last_destroy_error_at=T0 - timedelta(seconds=8),
        ),
        observed(volume=volume(), tagged=()),
        action=None,
        events=(),
        logs=("await_volume_detach",),
        requeue_after=12.0,
    ),
    Case(
        "after_the_detach_delay_the_volume_delete_is_tried_again",
        destroying(
            machine_id=None,
            pending_destroy_machine_id=None,
            last_destroy_error_op=DestroyOp.VOLUME,
            last_destroy_error_status=412,
            last_destroy_error_at=T0 - timedelta(seconds=20),
        ),
        observed(volume=volume(), tagged=()),
        action=DeleteVolume(volume_id=VOLUME),
    ),
    Case(
        "refusals_that_became_failures_back_off_as_usual",
        instance(
            status_=status(
                phase=Phase.DESTROYING,
                volume_id=VOLUME,
                pending_destroy_volume_id=VOLUME,
                last_destroy_error_op=DestroyOp.VOLUME,
                last_destroy_error_status=412,
                last_destroy_error_at=T0 - timedelta(seconds=3),
            ),
            deleting=True,
            failures=1,
        ),
        observed(volume=volume(), tagged=()),
        action=DeleteVolume(volume_id=VOLUME),
    ),
    Case(
        "another_volume_failure_does_not_wait_for_a_detach",
        destroying(
            machine_id=None,
            pending_destroy_machine_id=None,
            last_destroy_error_op=DestroyOp.VOLUME,
            last_destroy_error_status=503,
            last_destroy_error_at=T0 - timedelta(seconds=3),
        ),
        observed(volume=volume(), tagged=()),
        action=DeleteVolume(volume_id=VOLUME),
    ),
    Case(
        "volume_delete_409_bound_waits_the_detach_delay",
        destroying(machine_id=None, pending_destroy_machine_id=None),
        observed(volume=volume(), tagged=()),
        result=failed(failure(FailureKind.CONFLICT, 409, "volume is currently bound to machine: m1")),
        events=("DestroyFailed",),
        retry=False,
        requeue_after=20.0,
    ),
    Case(
        "volume_delete_5xx_is_an_ordinary_retry",
        destroying(machine_id=None, pending_destroy_machine_id=None),
        observed(volume=volume(), tagged=()),
        result=failed(failure(FailureKind.UNAVAILABLE, 503, "upstream trouble")),
        events=("DestroyFailed",),
        fields={"pending_destroy_volume_id": VOLUME},
        retry=True,
        requeue_after=5.0,
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


# What a deleting pass must look at on Fly (the observer skips the rest).
LOOKUP_CASES = [
    # (name, instance, volume_get, tagged_machines, named_volumes)
    ("first_pass_with_both_ids_lists_nothing", deleting(), False, False, False),
    (
        "first_pass_without_a_machine_looks_for_one",
        deleting(running_status(machine_id=None)),
        True,
        True,
        False,
    ),
    (
        "first_pass_without_a_volume_lists_volumes",
        deleting(running_status(volume_id=None)),
        False,
        False,
        True,
    ),
    ("machine_pending_lists_nothing", destroying(), False, False, False),
    (
        "machine_pending_without_volume_lists_nothing_yet",
        destroying(volume_id=None, pending_destroy_volume_id=None),
        False,
        False,
        False,
    ),
    (
        "volume_pending_looks_for_a_machine_still_mounting_it",
        destroying(machine_id=None, pending_destroy_machine_id=None),
        True,
        True,
        False,
    ),
    (
        "last_pass_lists_both",
        destroying(
            machine_id=None, volume_id=None, pending_destroy_machine_id=None, pending_destroy_volume_id=None
        ),
        True,
        True,
        True,
    ),
    (
        "orphan_looks_at_nothing",
        deleting(running_status(machine_id=None, volume_id=None), deletion_policy=DeletionPolicy.ORPHAN),
        False,
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "inst", "volume_get", "tagged", "named"), LOOKUP_CASES, ids=[c[0] for c in LOOKUP_CASES]
)
def test_destroy_lookups(name: str, inst: Instance, volume_get: bool, tagged: bool, named: bool) -> None:
    assert destroy_lookups(inst) == DestroyLookups(
        volume_get=volume_get, tagged_machines=tagged, named_volumes=named
    )


DETACH = Timings(volume_detach=timedelta(seconds=20), retry_base=timedelta(seconds=2))
DETACH_CASES = [
    # (name, repeated, failures, retry_after, delay, retry)
    ("first_refusal_waits_the_detach_delay", False, 0, None, 20.0, False),
    ("first_refusal_ignores_earlier_failures", False, 3, None, 20.0, False),
    ("first_refusal_honours_a_longer_retry_after", False, 0, 30.0, 30.0, False),
    ("repeated_refusal_backs_off_from_the_base", True, 0, None, 2.0, True),
    ("repeated_refusal_doubles", True, 2, None, 8.0, True),
    ("repeated_refusal_capped_at_the_detach_delay", True, 6, None, 20.0, True),
    ("repeated_refusal_never_before_retry_after", True, 0, 7.0, 7.0, True),
]


@pytest.mark.parametrize(
    ("name", "repeated", "failures", "retry_after", "delay", "retry"),
    DETACH_CASES,
    ids=[c[0] for c in DETACH_CASES],
)
def test_detach_retry(
    name: str, repeated: bool, failures: int, retry_after: float | None, delay: float, retry: bool
) -> None:
    assert detach_retry(repeated, failures, retry_after, DETACH) == (delay, retry)
