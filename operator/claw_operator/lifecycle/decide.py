"""decide(): from what one pass read and observed, the complete new status and the next action.

The order of the checks is the order of what matters: delete and pause first, then the
conditions that block all progress (a missing Secret, a bad token, a terminal failure for this
generation), then losses (volume, machine), then provisioning, then the machine's state.
"""

from __future__ import annotations

from datetime import datetime

from claw_operator.api import DesiredState, Phase, find_condition
from claw_operator.api.conditions import READY, RECONCILING, RESTARTING, STALLED
from claw_operator.api.reasons import EventReason, Reason
from claw_operator.lifecycle import crashes, health, transitions
from claw_operator.lifecycle.boots import booted_since_request, note_request
from claw_operator.lifecycle.capacity import continue_recovery
from claw_operator.lifecycle.conditions import (
    FALSE,
    NO_APP_MESSAGE,
    TRUE,
    UNKNOWN,
    ConditionValue,
)
from claw_operator.lifecycle.destroy import decide_destroy
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.drift import (
    config_drift,
    mount_is_correct,
    mount_repair_message,
    mount_repair_needed,
    restart_trigger,
)
from claw_operator.lifecycle.failures import is_auth_failure, retry_delay
from claw_operator.lifecycle.loss import check_losses
from claw_operator.lifecycle.model import (
    AwaitState,
    CreateMachine,
    Decision,
    EventType,
    FlyFailure,
    Instance,
    Lookup,
    MachineView,
    Observation,
    RestartMachine,
    RestartReason,
    StartMachine,
    StopMachine,
    Timings,
)
from claw_operator.lifecycle.recovery import adopt, select_recovery_candidate
from claw_operator.lifecycle.volumes import grow_volume, locate_volume, provide_volume

# Machine states a desired-Running instance starts (Fly launches them on update).
_STARTABLE = frozenset({"stopped", "created", "suspended"})
# Fly states that mean "not running" for an instance that should be Stopped.
_AT_REST = frozenset({"stopped", "created", "suspended"})


def decide(instance: Instance, observed: Observation, now: datetime, timings: Timings) -> Decision:
    """The complete new status and at most one next Action for this pass.

    With an action, `status` is what to write if the action is *not* executed; `settle()`
    turns it into the status that results. Without one, it is the status to write.
    """
    d = Draft.begin(instance, now, timings)
    if instance.paused:
        # Paused wins over everything, deletion included: the annotation promises no Fly call.
        return _paused(d)
    if instance.deleting:
        return decide_destroy(d, observed)
    return _decide_live(d, observed)


def _paused(d: Draft) -> Decision:
    read = d.instance.status.conditions
    reconciling = find_condition(read, RECONCILING)
    if reconciling is None or reconciling.reason != Reason.PAUSED:
        d.event(
            EventType.NORMAL, EventReason.PAUSED, "reconciliation paused by the claw.dev/paused annotation"
        )
        d.log("paused")
    ready = find_condition(read, READY)
    message = "paused: the machine's state is not being checked"
    d.override(READY, ConditionValue(ready.status if ready else UNKNOWN, Reason.PAUSED, message))
    d.override(RECONCILING, ConditionValue(FALSE, Reason.PAUSED, "the claw.dev/paused annotation is set"))
    return d.finish(handled=False)


def _new_reconcile_request(instance: Instance) -> bool:
    request = instance.reconcile_request
    return request is not None and request != instance.status.last_handled_reconcile_at


def _apply_stall_gate(d: Draft) -> bool:
    """True while Stalled for this generation and nobody asked to try again: no Fly mutation.

    A spec change (new generation) or a new reconcile request lifts the gate; the pass that
    lifts it clears Stalled, and a failure that persists sets it again.
    """
    stalled = find_condition(d.instance.status.conditions, STALLED)
    if stalled is None or stalled.status != TRUE or not d.stalled:
        return False
    if stalled.observed_generation == d.instance.generation and not _new_reconcile_request(d.instance):
        return True
    reason = "spec changed" if stalled.observed_generation != d.instance.generation else "reconcile requested"
    d.record(STALLED, FALSE, Reason.NOT_STALLED, f"retrying: {reason}")
    return False


def _auth_failure(observed: Observation) -> FlyFailure | None:
    for failure in (observed.machine.failure, observed.volume.failure, observed.tagged_failure):
        if is_auth_failure(failure):
            return failure
    return None


def _observation_succeeded(observed: Observation) -> bool:
    return (
        observed.machine.outcome in (Lookup.FOUND, Lookup.GONE)
        or observed.volume.outcome in (Lookup.FOUND, Lookup.GONE)
        or observed.tagged_machines is not None
    )


def _decide_live(d: Draft, observed: Observation) -> Decision:
    instance = d.instance
    status = d.status

    if not instance.app:
        # Nothing can be looked up or created without an app; kube makes no Fly call either.
        d.record(STALLED, TRUE, Reason.INVALID_CONFIG, NO_APP_MESSAGE)
        return d.finish()
    if d.stalled and d.condition(STALLED).message == NO_APP_MESSAGE:
        d.record(STALLED, FALSE, Reason.NOT_STALLED, "a Fly app is configured")

    if instance.secret_error is not None:
        # Blocks what needs the machine config (create, start, restart), never observation:
        # what Fly shows is still reported, and a lost machine is still noticed.
        d.record(STALLED, TRUE, Reason.SECRET_NOT_FOUND, instance.secret_error)
    elif d.stalled and d.condition(STALLED).reason == Reason.SECRET_NOT_FOUND:
        d.record(STALLED, FALSE, Reason.NOT_STALLED, "the Secret is available")

    auth = _auth_failure(observed)
    if auth is not None:
        d.record(STALLED, TRUE, Reason.UNAUTHORIZED, auth.message)
        d.log("fly_unauthorized", error=auth.message)
        return d.finish()
    if d.stalled and d.condition(STALLED).reason == Reason.UNAUTHORIZED and _observation_succeeded(observed):
        d.record(STALLED, FALSE, Reason.NOT_STALLED, "Fly accepts the token again")

    # A missing Secret is a stall of its own (recorded above): the gate of terminal failures
    # must not turn it into "retrying: spec changed".
    gated = False if instance.secret_error is not None else _apply_stall_gate(d)

    # Losses only on proof (lifecycle.loss): a single 404 waits for a second look.
    if observed.machine.outcome == Lookup.FOUND:
        # What Fly shows is recorded whatever the pass does next (a held loss check included).
        transitions.observe_machine(d, observed.machine.machine)
    held = check_losses(d, observed)
    if held is not None:
        return held
    recovering = continue_recovery(d, observed, _config_blocked(d, gated))
    if recovering is not None:
        return recovering

    if status.machine_id is None:
        return _without_machine(d, observed, gated)

    lookup = observed.machine
    if lookup.outcome == Lookup.ERROR:
        if transitions.is_starting_timed_out(d):
            transitions.starting_timeout(d, None, error=lookup.failure)
            return d.finish()
        # What the machine is doing is unknown: keep the status as it is, and look again soon.
        return d.finish(retry=True, requeue_after=retry_delay(lookup.failure, instance, d.timings))
    if lookup.outcome != Lookup.FOUND or lookup.machine is None:
        return d.finish()
    return _with_machine(d, lookup.machine, observed, gated)


def _config_blocked(d: Draft, gated: bool) -> bool:
    """True when an action that renders the machine config (create, start, restart) must wait:
    Stalled for this generation, or a Secret of secretEnv is missing."""
    return gated or d.instance.secret_error is not None


def _without_machine(d: Draft, observed: Observation, gated: bool) -> Decision:
    status = d.status
    if transitions.is_starting_timed_out(d):
        transitions.starting_timeout(d, None)
        return d.finish()
    listing = observed.tagged_machines
    if listing is None:
        # Never create without a conclusive listing: a create whose answer was lost may have
        # landed, and only the UID tag can tell (contract behaviour 8).
        if observed.tagged_failure is not None:
            return transitions.await_listing(d, observed.tagged_failure, "listing of its machines by UID tag")
        return d.finish()
    candidate = select_recovery_candidate(listing)
    if candidate is not None:
        adopt(d, listing, candidate, observed.named_volumes)
        return d.finish(requeue_after=0)
    if status.volume_id is None:
        return provide_volume(d, observed, gated)
    if d.instance.spec.state == DesiredState.STOPPED:
        if status.phase != Phase.STOPPED:
            transitions.enter_stopped(d)
        return grow_volume(d, observed, gated) or d.finish()
    if _config_blocked(d, gated):
        return d.finish()
    located = locate_volume(d, observed)
    if located is not None:
        return located
    wait = crashes.backoff_remaining(d)
    if wait is not None:
        # A machine made anew after a crash (the old one lost, or left on a full host) runs the
        # same process: it waits the backoff like a start of the old one would.
        d.log("crash_loop_wait", crash_count=status.crash_count, next_start_in=wait)
        return d.finish(requeue_after=wait)
    region = status.region or d.instance.spec.region
    return d.finish(CreateMachine(volume_id=status.volume_id, region=region))


def _with_machine(d: Draft, machine: MachineView, observed: Observation, gated: bool) -> Decision:
    status = d.status
    desired = d.instance.spec.state
    transitions.observe_machine(d, machine)
    if status.region is None:
        status.region = machine.region
    if status.volume_id is None:
        # The volume was lost: the one the machine mounts if it is ours, else a new one (the
        # machine's mount is repaired afterwards).
        return provide_volume(d, observed, gated, machine)
    volume_id = status.volume_id

    if (
        machine.state != "started"
        and desired == DesiredState.RUNNING
        and not _config_blocked(d, gated)
        and note_request(d, machine)
    ):
        # A restart is requested and the machine is not running: the start that follows (or
        # the start a restart in flight still has to make) serves the request. What Fly shows
        # now is persisted first, as the request's baseline, so that a boot Fly applies although
        # its answer is lost (or the operator dies before writing) still serves it later
        # (lifecycle.boots). A started machine's baseline goes with the restart guard.
        return d.finish(requeue_after=0)

    if status.restarting_at is not None:
        if desired == DesiredState.RUNNING:
            resumed = _resume_restart(d, machine, volume_id, gated)
            if resumed is not None:
                return resumed
        else:
            status.restarting_at = None
            d.record(RESTARTING, FALSE, Reason.NOT_RESTARTING, "restart cancelled: spec.state is Stopped")

    if machine.state == "started":
        return _started(d, machine, observed, gated, volume_id)
    if machine.state == "failed":
        return _failed(d, machine, observed, gated, volume_id)
    if desired == DesiredState.STOPPED:
        return _at_rest_desired(d, machine, observed, gated)

    if status.phase == Phase.STARTING:
        if transitions.is_starting_timed_out(d):
            transitions.starting_timeout(d, machine)
            return d.finish()
        if machine.state == "stopped" and _stopped_since_start(d, machine):
            # It started (Fly changed it after our start) and stopped again: a crash at boot.
            wait = crashes.record_crash(d, machine, started=status.starting_at)
            return d.finish(requeue_after=wait)
        if machine.state == "stopped" and not _config_blocked(d, gated):
            # Our start never took (its answer was lost, or it timed out before it was sent):
            # send it again; the clock of this start keeps running (startingAt is kept).
            return d.finish(_start(d, machine, volume_id))
        return d.finish(
            AwaitState(machine_id=machine.id, state="started", instance_id=machine.instance_id, seen=machine)
        )
    if machine.state in ("stopped", "created") and status.phase == Phase.RUNNING:
        pending = restart_trigger(d.instance, volume_id, machine)
        if pending is None:
            return _stopped_sighting(d, machine, observed, gated)
        # A change is waiting (a requested restart, a new config, a wrong mount) and Fly shows
        # the machine stopped already: starting it with the desired config applies it now,
        # instead of after the stopped-check threshold.
        if _config_blocked(d, gated):
            return d.finish()
        d.log("start_for_pending_change", reason=pending.reason.value, change=pending.message)
        return d.finish(_start(d, machine, volume_id))
    if machine.state in _STARTABLE and status.phase != Phase.RUNNING:
        if _config_blocked(d, gated):
            return d.finish()
        held = _crash_backoff(d, machine, volume_id)
        if held is not None:
            return held
        return d.finish(_start(d, machine, volume_id))
    if machine.state == "starting" and status.phase != Phase.RUNNING:
        # Booting already (a start whose answer was lost, or one made outside): it is a start,
        # with the Starting cadence and timeout, not something to look at again in 30 minutes.
        status.phase = Phase.STARTING
        status.starting_at = d.now
        return d.finish(
            AwaitState(machine_id=machine.id, state="started", instance_id=machine.instance_id, seen=machine)
        )
    # starting, stopping, replacing, destroying, ...: Fly is mid-transition; look again later
    # (a requested grow does not wait for it: Fly extends a volume whatever the machine does).
    return grow_volume(d, observed, gated) or d.finish()


def _started(d: Draft, machine: MachineView, observed: Observation, gated: bool, volume_id: str) -> Decision:
    status = d.status
    instance = d.instance
    if status.phase != Phase.RUNNING:
        transitions.enter_running(d, machine, log_action="sync_status")
    else:
        status.stopped_checks = 0
        crashes.reset_if_stable(d)
        health.observe_health(d, machine)
    if instance.spec.state == DesiredState.STOPPED:
        return d.finish(None if gated else StopMachine(machine_id=machine.id))
    trigger = restart_trigger(instance, volume_id, machine)
    if trigger is not None and trigger.reason == RestartReason.REQUESTED:
        booted = booted_since_request(d, machine)
        if booted is not None:
            # The machine was stopped and booted again since the request (a stop and a start
            # that Fly applied although their calls failed, or whose status write was lost):
            # the request is served; restarting again would restart it twice.
            transitions.restart_served_by_boot(d, machine, booted)
            trigger = None
    if trigger is not None:
        if _config_blocked(d, gated):
            return d.finish()
        # The guard is persisted before the restart begins, so no check in between (nor a
        # restarted operator) reads the stopped machine as a crash. With it, the version the
        # machine runs: a resumed restart that finds another one has already been applied; and
        # the boot baseline of a requested restart (lifecycle.boots).
        status.restarting_at = d.now
        status.restarting_instance_id = machine.instance_id
        status.restarting_for = instance.spec.restarted_at
        note_request(d, machine)
        d.record(RESTARTING, TRUE, trigger.reason.condition_reason, trigger.message)
        d.event(EventType.NORMAL, EventReason.RESTARTING, f"{trigger.reason.value}: {trigger.message}")
        return d.finish(requeue_after=0)
    # While the checks fail, look again at the Starting cadence (not the Running one).
    again = health.report_unhealthy(d)
    return grow_volume(d, observed, gated) or d.finish(requeue_after=again)


def _start(d: Draft, machine: MachineView, volume_id: str) -> StartMachine:
    """Start with the desired config; the update before the start also repairs a wrong mount."""
    repair = mount_repair_needed(machine, volume_id, d.instance.spec.volume.mount_path)
    return StartMachine(machine_id=machine.id, volume_id=volume_id, mount_repair=repair)


def _resume_restart(d: Draft, machine: MachineView, volume_id: str, gated: bool) -> Decision | None:
    """The guard says a restart is in flight (persisted; also after an operator restart or a
    lost status write). While it is, a stopped machine is never counted or marked (behaviour 6).

    Idempotent: when the machine runs another version than the guard recorded and nothing is
    left to change, the restart's update already happened — it is finished (or only waited
    for), never stopped, updated and started again. None: the guard is gone, decide on.
    """
    status = d.status
    recorded = d.condition(RESTARTING)
    reason = (_restart_reason(recorded.reason) if recorded.is_true else None) or RestartReason.REQUESTED
    guard = status.restarting_instance_id
    applied = guard is not None and machine.instance_id is not None and machine.instance_id != guard
    if applied and not _drift_left(d, volume_id, machine):
        if machine.state == "started":
            d.log("restart_already_applied", reason=reason.value, instance_id=machine.instance_id)
            # Applied before this pass read the spec: it served the request the guard recorded,
            # not one made since (that one gets its own restart).
            transitions.restart_succeeded(
                d, machine, reason, recorded.message, mount_repair=None, served=status.restarting_for
            )
            # The next pass follows at once: a request made since is its restart, a grow its
            # extend (this rare pass, after a lost write, decides nothing else).
            return d.finish(requeue_after=0)
        if machine.state == "failed":
            transitions.restart_failed(
                d,
                reason,
                f"machine {machine.id} failed after the restart's update",
                machine=machine,
                volume_id=volume_id,
            )
            return None
        if _restart_timed_out(d):
            transitions.restart_failed(
                d,
                reason,
                "the restarted machine did not reach started in time",
                machine=machine,
                volume_id=volume_id,
            )
            return None
        # Updated, not started yet: only start (if needed) and wait.
        return d.finish(
            None
            if _config_blocked(d, gated)
            else RestartMachine(machine_id=machine.id, volume_id=volume_id, reason=reason, resume_from=guard)
        )
    if _config_blocked(d, gated):
        return d.finish()
    if (applied or guard is None) and machine.instance_id is not None:
        # A new version with changes still to apply (the spec moved on), or a guard written
        # before versions were recorded: record the version this restart starts from first.
        status.restarting_instance_id = machine.instance_id
        status.restarting_for = d.instance.spec.restarted_at
        note_request(d, machine)
        return d.finish(requeue_after=0)
    if note_request(d, machine):
        # A request with no boot baseline yet (made while this restart was in flight, or a
        # guard written without one): persisted before the restart's stop (lifecycle.boots).
        return d.finish(requeue_after=0)
    repair = mount_repair_needed(machine, volume_id, d.instance.spec.volume.mount_path)
    if repair is not None and reason != RestartReason.MOUNT_REPAIR:
        # The mount drifted while this restart was in flight: say so in the guard before
        # acting, so the repair is reported even if this pass's own write is lost.
        d.record(RESTARTING, TRUE, RestartReason.MOUNT_REPAIR.condition_reason, repair)
        return d.finish(requeue_after=0)
    return d.finish(_restart_action(d, machine, volume_id))


def _drift_left(d: Draft, volume_id: str, machine: MachineView) -> bool:
    """A wrong mount or config still to apply (a restartedAt request is satisfied by any update)."""
    path = d.instance.spec.volume.mount_path
    changes = config_drift(d.instance, volume_id, machine)
    return not mount_is_correct(machine, volume_id, path) or bool(changes)


def _restart_timed_out(d: Draft) -> bool:
    started = d.status.restarting_at
    return started is not None and d.now - started > d.timings.starting_timeout


def _restart_action(d: Draft, machine: MachineView, volume_id: str) -> RestartMachine:
    recorded = d.condition(RESTARTING)
    reason = _restart_reason(recorded.reason) if recorded.is_true else None
    if reason is None:
        trigger = restart_trigger(d.instance, volume_id, machine)
        reason = trigger.reason if trigger is not None else RestartReason.REQUESTED
        message = trigger.message if trigger is not None else "resuming the restart in flight"
        d.record(RESTARTING, TRUE, reason.condition_reason, message)
    elif reason == RestartReason.MOUNT_REPAIR:
        # Report the mount as it is now, just before the repair.
        path = d.instance.spec.volume.mount_path
        d.record(RESTARTING, TRUE, reason.condition_reason, mount_repair_message(machine, volume_id, path))
    d.log("restart_machine", reason=reason.value)
    repair = mount_repair_needed(machine, volume_id, d.instance.spec.volume.mount_path)
    return RestartMachine(machine_id=machine.id, volume_id=volume_id, reason=reason, mount_repair=repair)


def _restart_reason(value: str) -> RestartReason | None:
    try:
        return RestartReason(value)
    except ValueError:
        return None


def _failed(d: Draft, machine: MachineView, observed: Observation, gated: bool, volume_id: str) -> Decision:
    """A failed machine is handled at once (no threshold): Stopped, then started again."""
    status = d.status
    if status.phase == Phase.STARTING:
        # The start we launched ended in failed: a start failure, retried with backoff.
        d.log("sync_status_failed", old_state=Phase.STARTING.value, fly_state=machine.state)
        message = f"machine {machine.id} failed to start"
        outcome = transitions.fail_start(d, None, Reason.START_FAILED, message)
        return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)
    running = d.instance.spec.state == DesiredState.RUNNING
    if status.phase == Phase.RUNNING and running and crashes.is_crash(d, machine):
        d.log("sync_status_failed", old_state=Phase.RUNNING.value, fly_state=machine.state)
        crashes.record_crash(d, machine)
    elif status.phase != Phase.STOPPED:
        old = transitions.enter_stopped(d)
        d.log("sync_status_failed", old_state=old.value if old else None, fly_state=machine.state)
        d.event(EventType.NORMAL, EventReason.STOPPED, f"machine {machine.id} failed")
    if running and not _config_blocked(d, gated):
        held = _crash_backoff(d, machine, volume_id)
        if held is not None:
            return held
        return d.finish(_start(d, machine, volume_id))
    # Desired Stopped: a failed machine is at rest too, and a grow is applied as for any other.
    return grow_volume(d, observed, gated) or d.finish()


def _stopped_since_start(d: Draft, machine: MachineView) -> bool:
    """Fly reports the machine's process exited after our start began: it started and stopped
    again (a start that never took, or one still parked by Fly, has no such exit)."""
    started = d.status.starting_at
    return started is not None and machine.exited_at is not None and machine.exited_at > started


def _crash_backoff(d: Draft, machine: MachineView, volume_id: str) -> Decision | None:
    """After a crash, the next start waits its backoff (a pending change of the spec does not:
    a new image or config deserves its try at once). None: start now."""
    wait = crashes.backoff_remaining(d)
    if wait is None or restart_trigger(d.instance, volume_id, machine) is not None:
        return None
    d.log("crash_loop_wait", crash_count=d.status.crash_count, next_start_in=wait)
    return d.finish(requeue_after=wait)


def _at_rest_desired(d: Draft, machine: MachineView, observed: Observation, gated: bool) -> Decision:
    """Desired Stopped, machine neither started nor failed."""
    status = d.status
    if machine.state in _AT_REST:
        if status.phase != Phase.STOPPED:
            old = transitions.enter_stopped(d)
            if old == Phase.RUNNING:
                d.event(EventType.NORMAL, EventReason.STOPPED, f"machine {machine.id} is stopped")
        # A grow asked for while Stopped is applied now (Fly extends a stopped machine's volume).
        return grow_volume(d, observed, gated) or d.finish()
    if machine.state == "starting" and not gated:
        return d.finish(StopMachine(machine_id=machine.id))
    return d.finish()


def _stopped_sighting(d: Draft, machine: MachineView, observed: Observation, gated: bool) -> Decision:
    """Running, but Fly says stopped/created: KiloClaw's self-heal threshold before acting (a
    requested grow is applied meanwhile)."""
    status = d.status
    status.stopped_checks += 1
    if status.stopped_checks < d.timings.stopped_threshold:
        return grow_volume(d, observed, gated) or d.finish()
    fail_count = status.stopped_checks
    old, new = Phase.RUNNING.value, Phase.STOPPED.value
    if crashes.is_crash(d, machine):
        d.log("mark_stopped", old_state=old, new_state=new, fail_count=fail_count)
        # The next pass starts it again once the backoff has passed.
        return d.finish(requeue_after=crashes.record_crash(d, machine))
    transitions.enter_stopped(d)
    d.log("mark_stopped", old_state=old, new_state=new, fail_count=fail_count)
    d.event(
        EventType.NORMAL,
        EventReason.STOPPED,
        f"machine {status.machine_id} was seen {status.machine_state} on {fail_count} consecutive checks",
    )
    # The next pass starts it again (desired Running).
    return d.finish(requeue_after=0)
