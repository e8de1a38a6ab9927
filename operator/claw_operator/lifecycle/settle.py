"""settle(): after `kube` executed the decided action, the status (and events, logs, requeue)
that results.

The returned Decision is the whole pass: it carries `decide`'s events and logs followed by
its own, so `kube` posts and writes only what `settle` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar, assert_never

from claw_operator.api import Phase
from claw_operator.api.conditions import READY, RECONCILING, RESTARTING, START_FAILED
from claw_operator.api.reasons import EventReason, Reason
from claw_operator.lifecycle import transitions
from claw_operator.lifecycle.capacity import (
    begin_recovery,
    recovery_cleanup_due,
    settle_delete_stranded_volume,
    settle_destroy_stranded_machine,
    settle_replace_volume,
)
from claw_operator.lifecycle.conditions import FALSE, TRUE, ConditionValue
from claw_operator.lifecycle.destroy import settle_delete_volume, settle_destroy_machine
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.drift import mount_is_correct, restart_trigger
from claw_operator.lifecycle.failures import start_failed_reason
from claw_operator.lifecycle.loss import suspect_machine_missing
from claw_operator.lifecycle.model import (
    ActionResult,
    AwaitState,
    CreateMachine,
    CreateVolume,
    Decision,
    DeleteStrandedVolume,
    DeleteVolume,
    DestroyMachine,
    DestroyStrandedMachine,
    EventType,
    ExtendVolume,
    FailureKind,
    FlyFailure,
    Instance,
    MachineView,
    ReplaceVolume,
    RestartMachine,
    StartMachine,
    StopMachine,
    Timings,
    VolumeView,
)

_Created = TypeVar("_Created", MachineView, VolumeView)

# Fly states that mean the machine is not running, reported as phase Stopped after a failed restart.
_NOT_RUNNING = frozenset({"stopped", "created", "failed", "suspended"})


def settle(
    instance: Instance, decided: Decision, result: ActionResult, now: datetime, timings: Timings
) -> Decision:
    """The complete status after `decided.action` gave `result` (no further action)."""
    action = decided.action
    if action is None:
        return decided
    d = Draft.resume(instance, decided, now, timings)
    # Exhaustive: mypy names this match when a new Action is added and not settled here.
    match action:
        case CreateVolume():
            return _created(d, result, "volume", result.volume, _volume_created)
        case ExtendVolume():
            return _volume_extended(d, action, result)
        case CreateMachine():
            return _created(d, result, "machine", result.machine, _machine_created)
        case StartMachine():
            return _machine_started(d, action, result)
        case AwaitState():
            return _awaited(d, action, result)
        case StopMachine():
            return _machine_stopped(d, action, result)
        case RestartMachine():
            return _machine_restarted(d, action, result)
        case DestroyMachine():
            return settle_destroy_machine(d, action, result)
        case DeleteVolume():
            return settle_delete_volume(d, action, result)
        case DestroyStrandedMachine():
            return settle_destroy_stranded_machine(d, action, result)
        case ReplaceVolume():
            return settle_replace_volume(d, action, result)
        case DeleteStrandedVolume():
            return settle_delete_stranded_volume(d, action, result)
        case _:
            assert_never(action)


def _failed_start(d: Draft, failure: FlyFailure, what: str) -> Decision:
    # A machine create or start that the volume's host has no room for: move off it.
    begin_recovery(d, failure)
    outcome = transitions.fail_start(d, failure, start_failed_reason(failure), f"{what}: {failure.message}")
    return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)


def _in_failing_streak(d: Draft) -> bool:
    """A start attempted while the last one failed: the pass still counts toward the backoff,
    so a machine that keeps failing to boot is retried ever more slowly, not every few seconds.
    """
    return d.condition(START_FAILED).is_true


def _enter_starting(d: Draft) -> None:
    status = d.status
    if status.phase != Phase.STARTING or status.starting_at is None:
        status.starting_at = d.now
    status.phase = Phase.STARTING


def _created(
    d: Draft,
    result: ActionResult,
    what: str,
    created: _Created | None,
    record: Callable[[Draft, _Created], Decision],
) -> Decision:
    """A create's answer: a failed start, or no object to record (the answer was lost: the next
    pass finds it by its name or its UID tag), or the object `record` records."""
    if result.failure is not None:
        return _failed_start(d, result.failure, f"creating the {what} failed")
    if created is None:
        return d.finish(requeue_after=0)
    return record(d, created)


def _volume_created(d: Draft, volume: VolumeView) -> Decision:
    status = d.status
    status.volume_id = volume.id
    status.region = volume.region
    status.volume_size_gb = volume.size_gb
    if status.phase is None:
        status.phase = Phase.PROVISIONED
    d.event(
        EventType.NORMAL,
        EventReason.VOLUME_CREATED,
        f"volume {volume.id} ({volume.size_gb} GB) created in {volume.region}",
    )
    d.log("create_volume", fly_app_name=d.instance.app, volume_id=volume.id, region=volume.region)
    # The machine create follows at once; the volume is found by its name if this is lost.
    return d.finish(requeue_after=0, write_can_wait=True)


def _volume_extended(d: Draft, action: ExtendVolume, result: ActionResult) -> Decision:
    status = d.status
    reached = result.volume
    if reached is not None and reached.size_gb >= action.size_gb:
        # Idempotent: an extend whose answer was lost, retried, gets a 400 ("must be greater
        # than the current size") although it happened. The size Fly reports is what counts.
        status.volume_size_gb = reached.size_gb
        if result.failure is not None:
            d.log(
                "extend_volume_already_applied",
                volume_id=action.volume_id,
                size_gb=reached.size_gb,
                error=result.failure.message,
            )
        else:
            d.log("extend_volume", volume_id=action.volume_id, size_gb=reached.size_gb)
        return d.finish()
    if result.failure is not None:
        if reached is not None:
            status.volume_size_gb = reached.size_gb
        d.log("extend_volume_failed", volume_id=action.volume_id, error=result.failure.message)
        outcome = transitions.apply_failure(d, result.failure)
        return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)
    status.volume_size_gb = action.size_gb
    d.log("extend_volume", volume_id=action.volume_id, size_gb=action.size_gb)
    return d.finish()


def _machine_created(d: Draft, machine: MachineView) -> Decision:
    status = d.status
    streak = _in_failing_streak(d)
    # Persisted with this write, before anything waits on the machine.
    status.machine_id = machine.id
    status.region = machine.region
    transitions.observe_machine(d, machine)
    # A new machine carries the whole current spec: any restart request is satisfied.
    status.handled_restarted_at = d.instance.spec.restarted_at
    created = f"machine {machine.id} created in {machine.region}"
    d.event(EventType.NORMAL, EventReason.MACHINE_CREATED, created)
    d.log("create_machine", machine_id=machine.id, region=machine.region)
    if machine.state == "started":
        transitions.enter_running(d, machine, log_action=None)
        return d.finish(requeue_after=0)
    _enter_starting(d)
    return d.finish(requeue_after=0, retry=streak)


def _machine_started(d: Draft, action: StartMachine, result: ActionResult) -> Decision:
    failure = result.failure
    if failure is not None and failure.kind == FailureKind.NOT_FOUND:
        suspect_machine_missing(d)  # lost only on proof (lifecycle.loss)
        return d.finish(requeue_after=0)
    streak = _in_failing_streak(d)
    status = d.status
    transitions.observe_machine(d, result.machine)
    if failure is not None and failure.kind != FailureKind.TIMEOUT:
        if result.machine is not None:
            # The update went in before the start failed (a full host, say): the mount was
            # repaired all the same, as a failed repair restart's is (transitions.restart_failed).
            _report_mount_repair(d, action, result.machine)
        return _failed_start(d, failure, f"starting machine {action.machine_id} failed")
    _report_mount_repair(d, action, result.machine)
    if failure is not None:
        # The start did not finish within --fly-wait-timeout: slow is not failed. The start
        # stays in flight (same startingAt); only --starting-timeout may end it.
        state = f" (Fly state {result.machine.state})" if result.machine is not None else ""
        status.last_start_error_message = f"starting machine {action.machine_id}{state}: {failure.message}"
        status.last_start_error_at = d.now
        d.log("start_machine_slow", machine_id=action.machine_id, error=failure.message)
        if result.machine is not None and result.machine.state == "started":
            transitions.enter_running(d, result.machine, log_action=None)
            return d.finish()
        _enter_starting(d)
        if transitions.is_starting_timed_out(d):
            transitions.starting_timeout(d, result.machine)
            return d.finish()
        return d.finish(retry=streak)
    # The start applied the desired config: any restart request is satisfied.
    status.handled_restarted_at = d.instance.spec.restarted_at
    d.log("start_machine", machine_id=action.machine_id)
    if result.machine is not None and result.machine.state == "started":
        transitions.enter_running(d, result.machine, log_action=None)
        return d.finish(requeue_after=0)
    _enter_starting(d)
    return d.finish(requeue_after=0, retry=streak)


def _report_mount_repair(d: Draft, action: StartMachine, machine: MachineView | None) -> None:
    """The update before the start re-pointed a wrong mount: report it like any repair, once
    the machine Fly shows mounts our volume (or, with no answer, once the update went in)."""
    if action.mount_repair is None:
        return
    path = d.instance.spec.volume.mount_path
    if machine is not None and not mount_is_correct(machine, action.volume_id, path):
        return
    transitions.mount_repaired(d, action.mount_repair)


def _awaited(d: Draft, action: AwaitState, result: ActionResult) -> Decision:
    failure = result.failure
    machine = result.machine
    if failure is not None and failure.kind == FailureKind.NOT_FOUND:
        suspect_machine_missing(d)  # lost only on proof (lifecycle.loss)
        return d.finish(requeue_after=0)
    if action.state != "started":
        transitions.observe_machine(d, machine)
        return d.finish()
    if failure is None and (machine is None or machine.state == "started"):
        transitions.enter_running(d, machine, log_action="machine_started")
        volume_id = d.status.volume_id
        if machine is not None and volume_id is not None and restart_trigger(d.instance, volume_id, machine):
            # Started, but not as the spec now asks (a restart requested or a config changed
            # while it booted): Ready must not stand; the next pass restarts it.
            return d.finish(requeue_after=0)
        if recovery_cleanup_due(d):
            # The machine on the fork (or replacement) started: the old volume goes next.
            return d.finish(requeue_after=0)
        return d.finish()
    if machine is not None and machine.state == "failed":
        transitions.observe_machine(d, machine)
        message = f"machine {machine.id} failed to start"
        outcome = transitions.fail_start(d, None, Reason.START_FAILED, message)
        return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)
    transitions.observe_machine(d, machine)
    if failure is not None and failure.kind == FailureKind.TIMEOUT:
        # Not a failed start yet (the machine may still boot), but the error the starting
        # timeout will report if it never does (contract behaviour 5).
        state = f" (Fly state {machine.state})" if machine is not None else ""
        d.status.last_start_error_message = (
            f"waiting for machine {action.machine_id} to start{state}: {failure.message}"
        )
        d.status.last_start_error_at = d.now
    if transitions.is_starting_timed_out(d):
        transitions.starting_timeout(d, machine)
        return d.finish()
    if failure is not None and failure.kind != FailureKind.TIMEOUT:
        outcome = transitions.apply_failure(d, failure)
        return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)
    # Still booting: stay Starting and check again at the Starting cadence.
    return d.finish(retry=_in_failing_streak(d))


def _machine_stopped(d: Draft, action: StopMachine, result: ActionResult) -> Decision:
    failure = result.failure
    if failure is not None and failure.kind != FailureKind.NOT_FOUND:
        # KiloClaw: a failed stop writes no status; the machine may well still run.
        d.log("stop_machine_failed", machine_id=action.machine_id, error=failure.message)
        outcome = transitions.apply_failure(d, failure)
        return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)
    transitions.enter_stopped(d)
    d.status.machine_state = result.machine.state if result.machine is not None else "stopped"
    stopped = f"machine {action.machine_id} stopped (spec.state is Stopped)"
    d.event(EventType.NORMAL, EventReason.STOPPED, stopped)
    d.log("stop_machine", machine_id=action.machine_id)
    return d.finish()


def _machine_restarted(d: Draft, action: RestartMachine, result: ActionResult) -> Decision:
    status = d.status
    failure = result.failure
    announced = d.condition(RESTARTING).message
    version_before = status.restarting_instance_id or status.instance_id
    if failure is not None:
        applied = _update_applied(version_before, result.machine)
        if applied and failure.kind == FailureKind.TIMEOUT and _booting(result.machine):
            # The update is in and the machine is on its way up, only slower than the wait:
            # slow is not failed. The guard stays; the next pass finds the new version and
            # waits for it (never a second stop/update/start).
            transitions.observe_machine(d, result.machine)
            if action.mount_repair is not None:
                # The update repaired a mount: the guard remembers it for the pass that ends it.
                d.record(RESTARTING, TRUE, Reason.MOUNT_REPAIR, action.mount_repair)
            d.log("restart_still_starting", machine_id=action.machine_id, error=failure.message)
            return d.finish(retry=False, requeue_after=d.timings.poll_starting.total_seconds())
        if applied:
            # The machine runs a new version (only the final wait failed): the requested
            # restart happened, and redoing it would restart the machine a second time.
            status.handled_restarted_at = d.instance.spec.restarted_at
        transitions.restart_failed(
            d, action.reason, failure.message, machine=result.machine, volume_id=action.volume_id
        )
        if failure.kind == FailureKind.NOT_FOUND:
            # Lost only on proof (lifecycle.loss): one 404 mid-restart is looked at again.
            suspect_machine_missing(d)
            return d.finish(requeue_after=0)
        _report_real_state(d, result.machine)
        _not_ready_while_the_change_waits(d, action, result.machine)
        # The restart's start found no room on the volume's host: move off it.
        begin_recovery(d, failure)
        outcome = transitions.apply_failure(d, failure)
        return d.finish(retry=outcome.retry, requeue_after=outcome.requeue_after)

    # A full restart ran with the spec this pass read: it serves that spec's request. A resumed
    # one only started what an earlier pass updated: it serves the request its guard recorded
    # (one made since gets a restart of its own).
    served = d.status.restarting_for if action.resume_from is not None else d.instance.spec.restarted_at
    transitions.restart_succeeded(
        d,
        result.machine,
        action.reason,
        announced,
        mount_repair=action.mount_repair,
        served=served,
    )
    requested = d.instance.spec.restarted_at
    if requested is not None and requested != d.status.handled_restarted_at:
        # A request made while this restart ran is the next pass's restart: Ready must not stand.
        return d.finish(requeue_after=0)
    return d.finish()


def _not_ready_while_the_change_waits(d: Draft, action: RestartMachine, machine: MachineView | None) -> None:
    """A failed restart leaves a started machine that does not run what the spec asks (the
    requested restart, the new config, the right mount): not Ready, and still reconciling,
    until the retry applies it — never `Ready=True`/`Reconciled` on the old machine."""
    if machine is None or machine.state != "started":
        return
    pending = restart_trigger(d.instance, action.volume_id, machine)
    if pending is None:
        return
    message = f"the restart failed and is retried: {pending.message}"
    d.override(READY, ConditionValue(FALSE, Reason.RESTART_FAILED, message))
    d.override(RECONCILING, ConditionValue(TRUE, Reason.RESTARTING, message))


def _booting(machine: MachineView | None) -> bool:
    return machine is not None and machine.state in ("starting", "created", "started")


def _update_applied(version_before: str | None, machine: MachineView | None) -> bool:
    return (
        version_before is not None
        and machine is not None
        and machine.instance_id is not None
        and machine.instance_id != version_before
    )


def _report_real_state(d: Draft, machine: MachineView | None) -> None:
    """After a failed restart the phase says what Fly says (contract behaviour 6)."""
    if machine is None:
        return
    transitions.observe_machine(d, machine)
    if machine.state in _NOT_RUNNING:
        transitions.enter_stopped(d)
    elif machine.state == "started":
        d.status.phase = Phase.RUNNING
