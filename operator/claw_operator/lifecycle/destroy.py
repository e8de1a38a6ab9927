"""Delete: the two-phase destroy (KiloClaw §4.3 in docs/reference/kiloclaw-lifecycle.md) behind
the finalizer, and deletionPolicy.

First pass: phase Destroying with the pending ids, persisted before any Fly call. Then one
step per pass: destroy the machine (the edge waits for `destroyed`), then delete the volume
(404 is done), recording failures in lastDestroyError* and retrying with backoff; a volume
still bound to the destroyed machine is asked again once Fly can have detached it
(`detach_retry`, `detach_wait_left`). The finalizer goes only when both are gone and no machine
tagged with the instance, nor volume named after it, is left. Destroying never creates anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from claw_operator.api import DeletionPolicy, DestroyOp, Phase
from claw_operator.api.conditions import RESTARTING, STALLED
from claw_operator.api.reasons import EventReason, Reason
from claw_operator.lifecycle.conditions import FALSE, TRUE
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.failures import is_auth_failure, retry_delay
from claw_operator.lifecycle.model import (
    ActionResult,
    Decision,
    DeleteVolume,
    DestroyMachine,
    EventType,
    FailureKind,
    FlyFailure,
    Instance,
    Lookup,
    Observation,
    Timings,
)
from claw_operator.lifecycle.recovery import live_volumes, select_recovery_candidate
from claw_operator.lifecycle.timing import detach_retry

# The destroy's last look found no listing of the volumes to go on (none was taken).
_NOT_LISTED: Final = FlyFailure(
    kind=FailureKind.UNAVAILABLE,
    retryable=True,
    message="the volumes named after the instance were not listed",
)
# KiloClaw refuses to act on an attached_machine_id that is not a plain Fly id.
_MACHINE_ID: Final = re.compile(r"^[a-z0-9]+$")


@dataclass(frozen=True)
class DestroyLookups:
    """What a deleting pass must see on Fly for `decide_destroy` (the observer skips the rest).

    `decide_destroy` never reads the recorded machine's GET (the destroy's own answer, 404
    included, tells: the observer skips it). It reads the machines tagged with the instance's
    UID, and the volume's attachment, only while no machine is pending, and the volumes named
    after it only once neither is pending (or on the first pass, for an unrecorded volume).
    So while both ids are known nothing is listed, and the listings come back for the pass
    that must prove Fly empty before the finalizer goes. (A gateway that knows every object
    of the instance answers them without a call, and one that does not lists once, as soon as
    a listing can prove it: `FlyGateway._observe_destroy`.)
    """

    volume_get: bool = False
    tagged_machines: bool = False
    named_volumes: bool = False


def destroy_lookups(instance: Instance) -> DestroyLookups:
    status = instance.status
    if instance.spec.deletion_policy == DeletionPolicy.ORPHAN:
        return DestroyLookups()
    if status.phase == Phase.DESTROYING:
        machine, volume = status.pending_destroy_machine_id, status.pending_destroy_volume_id
    else:
        # The first pass takes the recorded ids as the pending ones.
        machine, volume = status.machine_id, status.volume_id
    no_machine = machine is None
    return DestroyLookups(
        volume_get=no_machine,
        tagged_machines=no_machine,
        named_volumes=volume is None and (no_machine or status.phase != Phase.DESTROYING),
    )


def still_bound_after_detach(instance: Instance) -> bool:
    """The volume delete was refused as bound again after the detach wait (`detach_retry`
    counts that refusal as a failure): not the machine just destroyed, whose volume Fly
    releases within `volume_detach`, but something else may hold the volume. A gateway that
    knows every object of the instance without asking Fly (`FlyGateway._known_objects`) looks
    at the volume's attachment then, so `_recover_pending_machine` can find that machine."""
    status = instance.status
    return (
        status.last_destroy_error_op == DestroyOp.VOLUME
        and status.last_destroy_error_status in _BOUND_STATUSES
        and instance.failures > 0
    )


def decide_destroy(d: Draft, observed: Observation) -> Decision:
    status = d.status
    if d.instance.spec.deletion_policy == DeletionPolicy.ORPHAN:
        status.phase = Phase.DESTROYING
        d.log("orphan_on_delete", deletion_policy=DeletionPolicy.ORPHAN.value)
        return d.finish(finalize=True)

    if status.phase != Phase.DESTROYING:
        # Persisted before any Fly call: from here on the phase never leaves Destroying, and a
        # crash or a concurrent pass resumes the same destroy (contract behaviours 2 and 9).
        status.phase = Phase.DESTROYING
        status.pending_destroy_machine_id = status.machine_id
        status.pending_destroy_volume_id = status.volume_id
        status.starting_at = None
        if status.restarting_at is not None:
            status.restarting_at = None
            d.record(RESTARTING, FALSE, Reason.NOT_RESTARTING, "restart cancelled by the deletion")
        _recover_pending_machine(d, observed)
        _recover_pending_volume(d, observed)
        d.event(
            EventType.NORMAL,
            EventReason.DESTROYING,
            f"destroying machine {status.pending_destroy_machine_id or '-'}, "
            f"then volume {status.pending_destroy_volume_id or '-'}",
        )
        return d.finish(requeue_after=0)

    if status.pending_destroy_machine_id is None:
        recover_failure = _recover_pending_machine(d, observed)
        if recover_failure is not None and status.pending_destroy_volume_id is None:
            return _failed(d, DestroyOp.RECOVER, recover_failure, status.volume_id or "-")
    if status.pending_destroy_machine_id is not None:
        return d.finish(DestroyMachine(machine_id=status.pending_destroy_machine_id))
    _recover_pending_volume(d, observed)
    if status.pending_destroy_volume_id is not None:
        left = detach_wait_left(d.instance, d.now, d.timings)
        if left > 0:
            # Woken before Fly can have detached it (a watch event, a restart): asking now
            # would only be refused again.
            d.log("await_volume_detach", volume_id=status.pending_destroy_volume_id, seconds_left=left)
            return d.finish(requeue_after=left)
        return d.finish(DeleteVolume(volume_id=status.pending_destroy_volume_id))
    if observed.tagged_failure is not None:
        # Without a conclusive listing a machine created but never recorded could be leaked.
        return _failed(d, DestroyOp.RECOVER, observed.tagged_failure, "-")
    if observed.named_volumes is None:
        # Likewise a volume whose create answer was lost: inconclusive is not empty.
        failure = observed.named_failure or _NOT_LISTED
        return _failed(d, DestroyOp.RECOVER, failure, "-")
    if status.destroyed_at is None:
        # Written with this pass, before the Event is posted: a repeated last pass (the
        # finalizer removal lost, an operator restart) finalizes without a second Event.
        status.destroyed_at = d.now
        d.event(EventType.NORMAL, EventReason.DESTROYED, "the machine and the volume are destroyed")
        d.log("destroy_complete")
    return d.finish(finalize=True)


def _recover_pending_machine(d: Draft, observed: Observation) -> FlyFailure | None:
    """Find a machine the status does not name: tagged with our UID, or bound to our volume.

    Returns the failure that kept it from looking, if any.
    """
    status = d.status
    if status.pending_destroy_machine_id is not None:
        return None
    if observed.tagged_machines is not None:
        candidate = select_recovery_candidate(observed.tagged_machines)
        if candidate is not None:
            status.pending_destroy_machine_id = candidate.id
            status.machine_id = candidate.id
            d.log(
                "recover_machine_from_metadata",
                machine_id=candidate.id,
                state=candidate.state,
                reason="destroy",
            )
            return None
    volume = observed.volume
    if volume.outcome == Lookup.FOUND and volume.volume is not None:
        attached = volume.volume.attached_machine_id
        if attached is None:
            return None
        if not _MACHINE_ID.match(attached):
            d.log("recover_bound_machine_invalid_id", attached_machine_id=attached)
            return None
        status.pending_destroy_machine_id = attached
        status.machine_id = attached
        d.log("recover_bound_machine_for_destroy", machine_id=attached, volume_id=volume.volume.id)
        return None
    if volume.outcome == Lookup.ERROR and volume.failure is not None:
        d.log("recover_bound_machine_failed", error=volume.failure.message)
        return volume.failure
    return None


def _recover_pending_volume(d: Draft, observed: Observation) -> None:
    """A volume named after the instance but never recorded (its create answer was lost)."""
    status = d.status
    if status.pending_destroy_volume_id is not None:
        return
    leftover = next(iter(live_volumes(observed.named_volumes)), None)
    if leftover is not None:
        status.pending_destroy_volume_id = leftover.id
        d.log("recover_volume_by_name", volume_id=leftover.id, reason="destroy")


def _settle_step(d: Draft, op: DestroyOp, target: str, result: ActionResult) -> Decision:
    """A destroy step's result: a failure is recorded and retried (404 counts as done); success
    is logged, clears the last destroy error and forgets `target`, and the next pass takes the
    next step (after the volume, the finalizing pass first lists by tag for a machine never
    recorded)."""
    failure = result.failure
    if failure is not None and failure.kind != FailureKind.NOT_FOUND:
        return _failed(d, op, failure, target, detaching=op == DestroyOp.VOLUME and is_still_bound(failure))
    outcome = "ok" if failure is None else "already_gone"
    d.log(f"destroy_{op.value}_{outcome}", **{f"{op.value}_id": target})
    _clear_destroy_error(d)
    status = d.status
    if op == DestroyOp.MACHINE:
        if status.pending_destroy_machine_id == target:
            status.pending_destroy_machine_id = None
        if status.machine_id == target:
            status.machine_id = status.machine_state = status.instance_id = None
    else:
        if status.pending_destroy_volume_id == target:
            status.pending_destroy_volume_id = None
        if status.volume_id == target:
            status.volume_id = None
    return d.finish(requeue_after=0)


def settle_destroy_machine(d: Draft, action: DestroyMachine, result: ActionResult) -> Decision:
    return _settle_step(d, DestroyOp.MACHINE, action.machine_id, result)


def settle_delete_volume(d: Draft, action: DeleteVolume, result: ActionResult) -> Decision:
    return _settle_step(d, DestroyOp.VOLUME, action.volume_id, result)


def _clear_destroy_error(d: Draft) -> None:
    status = d.status
    status.last_destroy_error_op = None
    status.last_destroy_error_status = None
    status.last_destroy_error_message = None
    status.last_destroy_error_at = None
    if d.stalled and d.condition(STALLED).reason == Reason.UNAUTHORIZED:
        d.record(STALLED, FALSE, Reason.NOT_STALLED)


# HTTP statuses of a volume delete refused because the volume is still bound (`is_still_bound`).
_BOUND_STATUSES: Final = frozenset({409, 412})


def detach_wait_left(instance: Instance, now: datetime, timings: Timings) -> float:
    """Seconds before the volume delete is worth trying again after Fly refused it as bound for
    the first time (`detach_retry`: `volume_detach` after that refusal, whoever wakes the
    pass). 0 once that is over, after any other failure, and once refusals have become
    failures (`instance.failures` > 0: they back off as usual)."""
    status = instance.status
    at = status.last_destroy_error_at
    if (
        status.last_destroy_error_op != DestroyOp.VOLUME
        or status.last_destroy_error_status not in _BOUND_STATUSES
        or at is None
        or instance.failures > 0
    ):
        return 0.0
    return max((at + timings.volume_detach - now).total_seconds(), 0.0)


def is_still_bound(failure: FlyFailure) -> bool:
    """A volume delete refused because the volume is still bound to a machine (Fly answers
    409/412 `failed_precondition: volume is currently bound to machine`): volumes take no
    lease, so either kind means that."""
    return failure.kind in (FailureKind.PRECONDITION, FailureKind.CONFLICT)


def _failed(
    d: Draft, op: DestroyOp, failure: FlyFailure, target: str, *, detaching: bool = False
) -> Decision:
    status = d.status
    # The same step failing the same way again (a volume still bound while Fly detaches it,
    # retried with backoff) updates the fields but posts no new Event: one Warning per kind of
    # failure, not one per retry.
    repeated = status.last_destroy_error_op == op and status.last_destroy_error_status == (
        failure.status or 0
    )
    status.last_destroy_error_op = op
    status.last_destroy_error_status = failure.status or 0
    status.last_destroy_error_message = failure.message
    status.last_destroy_error_at = d.now
    if not repeated:
        d.event(
            EventType.WARNING,
            EventReason.DESTROY_FAILED,
            f"destroying {op.value} {target} failed: {failure.message}",
        )
    d.log(
        f"destroy_{op.value}_failed" if op != DestroyOp.RECOVER else "recover_bound_machine_failed",
        target=target,
        error=failure.message,
        status=failure.status,
    )
    if is_auth_failure(failure):
        d.record(STALLED, TRUE, Reason.UNAUTHORIZED, failure.message)
    if detaching:
        # Fly detaches a destroyed machine's volume on its own schedule: the first refusal
        # waits the known detach delay (un-jittered, not counted as a failure), further ones
        # back off from the base, never longer than that delay.
        delay, retry = detach_retry(repeated, d.instance.failures, failure.retry_after, d.timings)
        return d.finish(retry=retry, requeue_after=delay)
    # A deletion is always retried: the user asked for it, and Fly may recover.
    return d.finish(retry=True, requeue_after=retry_delay(failure, d.instance, d.timings))
