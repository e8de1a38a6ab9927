"""Capacity recovery: KiloClaw's `replaceStrandedVolume` (§3.3 step 11 of
docs/reference/kiloclaw-lifecycle.md), made crash-safe.

A Fly volume lives on one host, and its machine must run on that host. When the host is full, a
machine create or start on the volume fails with a capacity error that no retry in place can
fix. The instance is moved, with its volume, to a host with room:

- **Replace**: the machine never started (`status.lastStartedAt` unset, and no machine was seen
  launched on the volume: `status.usedVolumeId`), so the volume holds no data. A new, empty
  volume is created (same region first, then `spec.fallbackRegions`), the machine is created
  once on it, then the old volume is deleted.
- **Fork**: the volume holds the user's data. It is forked (`source_volume_id`: a copy on
  another host), same order of regions. A failed fork propagates (StartFailed) and the volume is
  left untouched: the user's data is never silently replaced by an empty volume. The old volume
  is deleted only once the machine on the fork has started.

The recovery is a guard persisted before it acts (`status.strandedVolumeId`, its region, when,
and the mode), then one step per pass, each decided afresh from what Fly shows, so an operator
that dies at any point resumes it and leaks nothing:

1. any live machine of the instance stranded on the old volume is destroyed (force);
2. the replacement (or fork) is adopted when the volumes named after the instance list one
   besides the old volume (a create whose answer was lost), else created — only on a listing
   that can show it (volumes are named from the instance UID; a listing taken too soon after a
   create is "don't know", never "none");
3. the machine is created on it (the ordinary path);
4. the old volume is deleted (Replace: once the machine create on the replacement was tried;
   Fork: once the machine on the fork has started), and the guard goes.

While spec.state is Stopped, a recovery is wound up rather than left half-done (see
`continue_recovery`). At most one recovery per backoff period: a recovery begins only the
retry backoff after the capacity error that called for it, and only such an error (one per
failed pass) begins one.
"""

from __future__ import annotations

from claw_operator.api import CapacityRecovery, DesiredState
from claw_operator.api.conditions import START_FAILED
from claw_operator.api.reasons import EventReason, Reason
from claw_operator.fly.tags import volume_name
from claw_operator.lifecycle import transitions
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.failures import retry_delay, start_failed_reason
from claw_operator.lifecycle.loss import mounted_volume
from claw_operator.lifecycle.model import (
    ActionResult,
    Decision,
    DeleteStrandedVolume,
    DestroyStrandedMachine,
    EventType,
    FailureKind,
    FlyFailure,
    Lookup,
    MachineView,
    Observation,
    ReplaceVolume,
    VolumeView,
)
from claw_operator.lifecycle.recovery import live_machines, live_volumes
from claw_operator.lifecycle.timing import backoff

# Machine states that run nothing.
_AT_REST = frozenset({"stopped", "created", "failed", "suspended"})


def begin_recovery(d: Draft, failure: FlyFailure) -> None:
    """A machine create or start on the instance's volume failed for lack of capacity: record
    the recovery (persisted with this pass, before any of its steps acts)."""
    status = d.status
    if (
        failure.kind != FailureKind.CAPACITY
        or status.volume_id is None
        or status.stranded_volume_id is not None
        or d.instance.deleting
    ):
        return
    # The volume may hold data when a machine ever started on it (KiloClaw: lastStartedAt), or
    # when a machine was seen launched on it at all (status.usedVolumeId: stopped or failed
    # since, its process may have written). Only a volume surely empty is replaced.
    ran = status.machine_id is not None and status.machine_state not in (None, "created")
    used = status.used_volume_id is not None and status.used_volume_id == status.volume_id
    has_data = status.last_started_at is not None or ran or used
    mode = CapacityRecovery.FORK if has_data else CapacityRecovery.REPLACE
    status.stranded_volume_id = status.volume_id
    status.stranded_region = status.region
    status.stranded_at = d.now
    status.capacity_recovery = mode
    d.log(
        "insufficient_resources",
        volume_id=status.volume_id,
        region=status.region,
        recovery=mode.value,
        error=failure.message,
    )


def recovery_cleanup_due(d: Draft) -> bool:
    """A recovery is in progress and its replacement (or fork) is the instance's volume: the
    next pass may have the old volume to delete."""
    status = d.status
    stranded = status.stranded_volume_id
    return stranded is not None and status.volume_id is not None and status.volume_id != stranded


def _end_recovery(d: Draft) -> None:
    status = d.status
    status.stranded_volume_id = None
    status.stranded_region = None
    status.stranded_at = None
    status.capacity_recovery = None
    status.superseded_volume_ids = None


def _retire(d: Draft, why: str) -> Decision | None:
    """The volume of record is proven good (a machine started on it): the older volumes of a
    recovery that moved more than once go first, one per pass, each persisted when gone."""
    superseded = d.status.superseded_volume_ids or []
    if not superseded:
        return None
    d.log("delete_superseded_volume", volume_id=superseded[0], reason=why)
    return d.finish(DeleteStrandedVolume(volume_id=superseded[0]))


def _instance_machines(observed: Observation) -> list[MachineView]:
    machines: list[MachineView] = []
    if observed.machine.outcome == Lookup.FOUND and observed.machine.machine is not None:
        machines.append(observed.machine.machine)
    machines.extend(m for m in live_machines(observed.tagged_machines or ()) if m not in machines)
    return live_machines(machines)


def _stranded_machine(d: Draft, observed: Observation, stranded: str) -> MachineView | None:
    path = d.instance.spec.volume.mount_path
    return next(
        (m for m in _instance_machines(observed) if mounted_volume(m, path) == stranded),
        None,
    )


def _destroy(d: Draft, machine_id: str, stranded: str) -> Decision:
    d.log("destroy_stranded_machine", machine_id=machine_id, volume_id=stranded)
    return d.finish(DestroyStrandedMachine(machine_id=machine_id))


def continue_recovery(d: Draft, observed: Observation, blocked: bool) -> Decision | None:
    """The recovery's next step; None when there is none to take now (the ordinary path goes on:
    it creates the machine on the replacement, or waits for it).

    `blocked`: actions that render the machine config must wait (Stalled, a missing Secret):
    the recovery waits too, but for its last step.

    While spec.state is Stopped, the recovery is wound up instead, so a stopped instance never
    rests with two volumes: a Replace keeps the replacement (or, when none was recorded, the old
    volume) and deletes the other; a Fork whose machine never started deletes the fork (an
    unused copy) and keeps the old volume, the one with the data. A later start that finds the
    host still full begins a new recovery.
    """
    status = d.status
    stranded = status.stranded_volume_id
    if stranded is None or d.instance.deleting:
        return None
    if status.volume_id is None:
        # The stranded volume was proven lost (lifecycle.loss): nothing is left to move away
        # from; the ordinary path provides a volume (adopting a replacement made already).
        d.log("capacity_recovery_ended", volume_id=stranded, reason="volume lost")
        _end_recovery(d)
        return None
    stopped = d.instance.spec.state == DesiredState.STOPPED
    if status.volume_id != stranded:
        return _after_replacement(d, observed, stranded, stopped)
    if stopped:
        return _wind_up_before_replacement(d, observed, stranded)
    if blocked:
        return None
    seen = observed.machine.machine if observed.machine.outcome == Lookup.FOUND else None
    if seen is not None and seen.state == "started":
        # The host found room after all (or someone started it): nothing to recover.
        if mounted_volume(seen, d.instance.spec.volume.mount_path) == stranded:
            retire = _retire(d, "a machine started on the volume of record")
            if retire is not None:
                return retire
        d.log("capacity_recovery_abandoned", machine_id=seen.id, volume_id=stranded)
        _end_recovery(d)
        return None
    wait = _not_yet(d)
    if wait is not None:
        return wait
    if status.machine_id is not None:
        return _destroy(d, status.machine_id, stranded)
    listing = observed.tagged_machines
    if listing is None:
        # A machine whose create answer was lost could still hold the volume: look first.
        if observed.tagged_failure is not None:
            failure = observed.tagged_failure
            return d.finish(retry=True, requeue_after=retry_delay(failure, d.instance, d.timings))
        return d.finish()
    tagged = live_machines(listing)
    if tagged:
        # With no replacement yet, every machine of the instance is on the stranded volume.
        return _destroy(d, tagged[0].id, stranded)
    return _provide_replacement(d, observed, stranded)


def _not_yet(d: Draft) -> Decision | None:
    """At most one recovery per backoff period: it begins the backoff after its capacity error."""
    since = d.status.stranded_at
    if since is None:
        return None
    delay = backoff(max(d.instance.failures - 1, 0), d.timings)
    left = delay - (d.now - since).total_seconds()
    if left <= 0:
        return None
    return d.finish(requeue_after=left)


def _provide_replacement(d: Draft, observed: Observation, stranded: str) -> Decision:
    status = d.status
    named = observed.named_volumes
    if named is None:
        failure = observed.named_failure
        if failure is None:
            return d.finish(requeue_after=0)
        d.log("volume_listing_inconclusive", error=failure.message)
        return d.finish(retry=True, requeue_after=retry_delay(failure, d.instance, d.timings))
    kept = {stranded, *(status.superseded_volume_ids or ())}
    others = [v for v in live_volumes(named) if v.id not in kept]
    if others:
        # Created by an earlier pass whose answer or status write was lost: finish its job.
        found = min(others, key=lambda v: (v.attached_machine_id is not None, v.id))
        status.volume_id = found.id
        status.region = found.region
        status.volume_size_gb = found.size_gb
        status.volume_missing_since = None
        status.stranded_at = d.now
        d.log("recover_volume_by_name", volume_id=found.id, region=found.region, reason="capacity_recovery")
        return d.finish(requeue_after=0)
    spec = d.instance.spec
    region = status.stranded_region or status.region or spec.region
    fallbacks: list[str] = []
    for candidate in (spec.region, *spec.fallback_regions):
        if candidate != region and candidate not in fallbacks:
            fallbacks.append(candidate)
    fork = status.capacity_recovery == CapacityRecovery.FORK
    return d.finish(
        ReplaceVolume(
            stranded_volume_id=stranded,
            fork=fork,
            region=region,
            size_gb=spec.volume.size_gb,
            name=volume_name(d.instance.uid),
            fallback_regions=tuple(fallbacks),
        )
    )


def _after_replacement(d: Draft, observed: Observation, stranded: str, stopped: bool) -> Decision | None:
    """The replacement (or fork) is the instance's volume: a machine left on the old volume is
    destroyed; the old volume goes once the recovery is done."""
    machine = _stranded_machine(d, observed, stranded)
    if machine is not None:
        # Never adopted, never left holding the old volume (Fly refuses to delete a bound one).
        return _destroy(d, machine.id, stranded)
    status = d.status
    if stopped:
        if status.machine_id is not None and observed.machine.outcome != Lookup.FOUND:
            return None  # what the machine does is not known this pass
        if any(m.state not in _AT_REST for m in _instance_machines(observed)):
            return None  # the ordinary path stops it first (and records a start it sees)
    if _done(d, observed):
        return _retire(d, "the machine on the fork started") or d.finish(
            DeleteStrandedVolume(volume_id=stranded)
        )
    if not stopped:
        if status.capacity_recovery == CapacityRecovery.FORK and _fork_stranded_too(d):
            # The fork's host is full too: an unused fork goes, and the next capacity error on
            # the old volume forks it again (elsewhere); a fork a machine was launched on is
            # forked in turn (it holds the newest data).
            dropped = _drop_unused_fork(d, observed, stranded, "its host has no room either")
            return dropped if dropped is not None else _refork(d, stranded)
        return None
    if status.capacity_recovery == CapacityRecovery.REPLACE:
        # No data on either: the replacement stays the instance's volume.
        d.log("capacity_recovery_wound_up", volume_id=status.volume_id, reason="spec.state is Stopped")
        return d.finish(DeleteStrandedVolume(volume_id=stranded))
    since, started = status.stranded_at, status.last_started_at
    if since is not None and started is not None and started >= since:
        # A machine ran on the fork (stopped since): the fork holds the data of record now.
        retire = _retire(d, "a machine started on the fork")
        if retire is not None:
            return retire
        d.log("capacity_recovery_wound_up", volume_id=status.volume_id, reason="spec.state is Stopped")
        return d.finish(DeleteStrandedVolume(volume_id=stranded))
    return _drop_unused_fork(d, observed, stranded, "spec.state is Stopped")


def _refork(d: Draft, stranded: str) -> Decision:
    """The fork's host is full too, and a machine was launched on the fork (it may hold newer
    data than the old volume, and is not proven good): the fork is forked in turn. The recovery
    moves on, its guard persisted before any step acts: the fork becomes the stranded volume and
    the old one is superseded — kept until a machine on the newest fork has started, then
    deleted with it. Never dropped, never replaced by an empty volume."""
    status = d.status
    fork = status.volume_id
    assert fork is not None
    status.superseded_volume_ids = [*(status.superseded_volume_ids or ()), stranded]
    status.stranded_volume_id = fork
    status.stranded_region = status.region
    status.stranded_at = d.now
    d.log("fork_stranded_fork", volume_id=fork, region=status.region, superseded=stranded)
    return d.finish(requeue_after=0)


def _fork_stranded_too(d: Draft) -> bool:
    """A machine create or start on the fork failed for lack of capacity since it was made."""
    status = d.status
    failed = d.condition(START_FAILED)
    since, at = status.stranded_at, status.last_start_error_at
    return (
        failed.is_true
        and failed.reason == Reason.INSUFFICIENT_CAPACITY
        and since is not None
        and at is not None
        and at >= since
    )


def _drop_unused_fork(d: Draft, observed: Observation, stranded: str, why: str) -> Decision | None:
    """Back to the old volume (it has the data) and delete the fork — only when no machine was
    ever launched on the fork: one that was may have written to it, and the fork is not proven
    good; then both stay (the recovery stays recorded) until a machine starts on the fork."""
    status = d.status
    fork = status.volume_id
    path = d.instance.spec.volume.mount_path
    on_fork = [m for m in _instance_machines(observed) if mounted_volume(m, path) == fork]
    if status.used_volume_id == fork or any(m.state != "created" for m in on_fork):
        return None
    if on_fork:
        d.log("destroy_machine_on_unused_fork", machine_id=on_fork[0].id, volume_id=fork)
        return d.finish(DestroyStrandedMachine(machine_id=on_fork[0].id))
    assert fork is not None
    status.volume_id = stranded
    status.region = status.stranded_region or status.region
    status.volume_missing_since = None
    d.log("capacity_recovery_wound_up", volume_id=stranded, fork=fork, reason=why)
    return d.finish(DeleteStrandedVolume(volume_id=fork))


def _wind_up_before_replacement(d: Draft, observed: Observation, stranded: str) -> Decision | None:
    """spec.state is Stopped and the old volume is still the instance's: a replacement or fork
    made by a pass whose answer or status write was lost is deleted (it holds nothing new: no
    machine ever used it), then the recovery ends."""
    named = observed.named_volumes
    if named is None:
        failure = observed.named_failure
        if failure is None:
            return d.finish(requeue_after=0)
        return d.finish(retry=True, requeue_after=retry_delay(failure, d.instance, d.timings))
    kept = {stranded, *(d.status.superseded_volume_ids or ())}
    others = [v for v in live_volumes(named) if v.id not in kept]
    free = [v for v in others if v.attached_machine_id is None]
    if free:
        d.log(
            "capacity_recovery_wound_up", volume_id=stranded, fork=free[0].id, reason="spec.state is Stopped"
        )
        return d.finish(DeleteStrandedVolume(volume_id=free[0].id))
    if others:
        return None  # attached still (Fly detaches a destroyed machine's volume later): look again
    if d.status.superseded_volume_ids:
        # No machine was seen started on the stranded volume (a fork a machine was launched on):
        # it and the volumes it superseded all stay, recorded, until one starts there.
        return None
    d.log("capacity_recovery_wound_up", volume_id=stranded, reason="spec.state is Stopped")
    _end_recovery(d)
    return None


def _done(d: Draft, observed: Observation) -> bool:
    status = d.status
    since = status.stranded_at
    if status.capacity_recovery == CapacityRecovery.REPLACE:
        # The old volume never held data: it goes once the machine create on the replacement
        # was tried (created, or failed since the replacement was recorded: a replacement
        # that is stranded too starts anew).
        tried = (
            status.last_start_error_at is not None
            and since is not None
            and status.last_start_error_at >= since
        )
        return status.machine_id is not None or tried
    # Fork: the user's data is on the old volume until the machine on the fork has started.
    seen = observed.machine.machine if observed.machine.outcome == Lookup.FOUND else None
    path = d.instance.spec.volume.mount_path
    started = status.last_started_at
    return (
        seen is not None
        and seen.id == status.machine_id
        and seen.state == "started"
        and mounted_volume(seen, path) == status.volume_id
        and started is not None
        and since is not None
        and started >= since
    )


# ---------------------------------------------------------------------------- settle


def settle_destroy_stranded_machine(
    d: Draft, action: DestroyStrandedMachine, result: ActionResult
) -> Decision:
    failure = result.failure
    if failure is not None and failure.kind != FailureKind.NOT_FOUND:
        d.log("destroy_stranded_machine_failed", machine_id=action.machine_id, error=failure.message)
        outcome = transitions.apply_failure(d, failure)
        return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)
    status = d.status
    if status.machine_id == action.machine_id:
        status.machine_id = None
        status.machine_state = None
        status.instance_id = None
        status.machine_missing_since = None
    return d.finish(requeue_after=0)


def settle_replace_volume(d: Draft, action: ReplaceVolume, result: ActionResult) -> Decision:
    what = "forking" if action.fork else "creating a replacement for"
    if result.failure is not None:
        # A failed fork propagates: the volume with the data stays the instance's, untouched.
        failure = result.failure
        d.log(
            "fork_stranded_volume_failed" if action.fork else "create_replacement_volume_failed",
            volume_id=action.stranded_volume_id,
            error=failure.message,
        )
        message = f"{what} volume {action.stranded_volume_id} failed: {failure.message}"
        outcome = transitions.fail_start(d, failure, start_failed_reason(failure), message)
        return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)
    volume = result.volume
    if volume is None or volume.id == action.stranded_volume_id:
        return d.finish(requeue_after=0)
    _record_replacement(d, action, volume)
    return d.finish(requeue_after=0)


def _record_replacement(d: Draft, action: ReplaceVolume, volume: VolumeView) -> None:
    status = d.status
    old, old_region = action.stranded_volume_id, status.stranded_region or "?"
    status.volume_id = volume.id
    status.region = volume.region
    status.volume_size_gb = volume.size_gb
    status.volume_missing_since = None
    # The recovery's clock restarts: what happens on the new volume is judged from here.
    status.stranded_at = d.now
    details = {
        "fly_app_name": d.instance.app,
        "old_volume_id": old,
        "old_region": old_region,
        "volume_id": volume.id,
        "region": volume.region,
    }
    if action.fork:
        d.event(
            EventType.NORMAL,
            EventReason.VOLUME_FORKED,
            f"volume {old} ({old_region}) forked to {volume.id} ({volume.region}): its host has no "
            f"room for the machine; {old} is deleted once the machine on {volume.id} has started",
        )
        d.log("fork_stranded_volume", **details)
    else:
        d.event(
            EventType.NORMAL,
            EventReason.VOLUME_REPLACED,
            f"volume {old} ({old_region}) replaced by {volume.id} ({volume.region}): its host has no "
            "room for the machine, and it held no data (the machine never started)",
        )
        d.log("create_replacement_volume", **details)


def settle_delete_stranded_volume(d: Draft, action: DeleteStrandedVolume, result: ActionResult) -> Decision:
    failure = result.failure
    if failure is not None and failure.kind != FailureKind.NOT_FOUND:
        # Retried with backoff (a volume Fly still shows bound to the destroyed machine is
        # refused for a while): the recovery stays recorded until it is gone, never leaked.
        d.log("delete_stranded_volume_failed", volume_id=action.volume_id, error=failure.message)
        return d.finish(retry=True, requeue_after=retry_delay(failure, d.instance, d.timings))
    d.log(
        "delete_stranded_volume",
        volume_id=action.volume_id,
        outcome="ok" if failure is None else "already_gone",
    )
    status = d.status
    superseded = status.superseded_volume_ids or []
    if action.volume_id in superseded:
        status.superseded_volume_ids = [v for v in superseded if v != action.volume_id] or None
        return d.finish(requeue_after=0)
    if superseded and action.volume_id != status.stranded_volume_id:
        # An unused fork was dropped: the recovery of the stranded volume (the newest data) goes
        # on, the volumes it superseded kept until a machine started on the volume of record.
        status.stranded_at = d.now
        return d.finish(requeue_after=0)
    _end_recovery(d)
    # The ordinary path follows at once (this pass took its turn: a machine to stop, say).
    return d.finish(requeue_after=0)
