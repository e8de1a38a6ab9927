"""The named transitions `decide` and `settle` share: into Running, into Stopped, a failed start,
the starting timeout, a lost machine, and what a failed Fly call means for the pass.

Each one changes the draft status, records conditions, and emits the Event and log line the
contract and KiloClaw attach to it — so every path into a state reports it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from claw_operator.api import Phase
from claw_operator.api.conditions import MOUNT_REPAIRED, RECONCILING, RESTARTING, STALLED, START_FAILED
from claw_operator.api.reasons import EventReason, Reason
from claw_operator.api.timefmt import rfc3339
from claw_operator.lifecycle.conditions import (
    FALSE,
    TRUE,
    ConditionValue,
)
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.failures import retry_delay, stall_reason
from claw_operator.lifecycle.health import observe_health
from claw_operator.lifecycle.model import Decision, EventType, FlyFailure, MachineView, RestartReason

# Stalls a successful start disproves (the ones about the environment are not: a running
# machine says nothing about a missing Secret, and a token may still be revoked).
_STALLS_CLEARED_BY_A_START = frozenset({Reason.START_TIMEOUT, Reason.INVALID_CONFIG, Reason.QUOTA_EXCEEDED})


@dataclass(frozen=True)
class FailureOutcome:
    """How a pass ends after a failed Fly call: stalled (wait for a change) or retried."""

    retry: bool
    requeue_after: float | None


def apply_failure(d: Draft, failure: FlyFailure) -> FailureOutcome:
    """Terminal → Stalled=True and no retry; anything else → retry with backoff."""
    reason = stall_reason(failure)
    if reason is not None:
        d.record(STALLED, TRUE, reason, failure.message)
        return FailureOutcome(retry=False, requeue_after=None)
    if d.stalled and d.condition(STALLED).reason not in (Reason.SECRET_NOT_FOUND, Reason.UNAUTHORIZED):
        d.record(STALLED, FALSE, Reason.NOT_STALLED)
    return FailureOutcome(retry=True, requeue_after=retry_delay(failure, d.instance, d.timings))


def await_listing(d: Draft, failure: FlyFailure, listing: str) -> Decision:
    """Nothing may be created before a conclusive listing (contract behaviour 8), and this
    pass's is not: it failed, or an earlier create may not show in it yet (after an operator
    restart, `listing_settle`). The pass still writes an honest status — Reconciling=True,
    `ListingInconclusive`, saying what it waits for — and looks again when the wait is over."""
    if not d.stalled:
        message = f"nothing is created until the {listing} is conclusive: {failure.message}"
        d.override(RECONCILING, ConditionValue(TRUE, Reason.LISTING_INCONCLUSIVE, message))
    return d.finish(retry=True, requeue_after=retry_delay(failure, d.instance, d.timings))


def observe_machine(d: Draft, machine: MachineView | None) -> None:
    if machine is None:
        return
    status = d.status
    status.machine_state = machine.state
    if machine.instance_id is not None:
        status.instance_id = machine.instance_id
    if machine.state != "created" and status.volume_id is not None:
        # Seen past `created` (launched: started, or on its way, or back down), mounting the
        # volume: it may hold data, even if no pass saw the machine started.
        path = d.instance.spec.volume.mount_path
        if any(m.volume == status.volume_id and m.path == path for m in machine.mounts):
            status.used_volume_id = status.volume_id


def enter_running(
    d: Draft, machine: MachineView | None, *, log_action: str | None, announce: bool = True
) -> None:
    """The machine reached started: a successful start (contract behaviour 3).

    `announce=False` when another Event already tells the story (MachineRecovered).
    """
    status = d.status
    old = status.phase
    observe_machine(d, machine)
    if machine is None:
        status.machine_state = "started"
    status.phase = Phase.RUNNING
    status.starting_at = None
    status.stopped_checks = 0
    if status.crash_count > 0:
        # A crash loop ends only with a run past the crash window (lifecycle.crashes).
        d.record(START_FAILED, TRUE, Reason.CRASH_LOOP_BACK_OFF, _crash_loop_running(d))
    else:
        status.last_start_error_message = None
        status.last_start_error_at = None
        d.record(START_FAILED, FALSE, Reason.STARTED, "the machine started")
    if d.stalled and d.condition(STALLED).reason in _STALLS_CLEARED_BY_A_START:
        d.record(STALLED, FALSE, Reason.NOT_STALLED)
    if old != Phase.RUNNING:
        status.last_started_at = d.now
        # In a crash loop the CrashLoopBackOff series tells each start: no Event per cycle.
        if announce and status.crash_count == 0:
            d.event(EventType.NORMAL, EventReason.STARTED, f"machine {status.machine_id} is started")
        if log_action is not None:
            d.log(log_action, old_state=_phase(old), new_state=Phase.RUNNING.value)
    elif status.last_started_at is None:
        status.last_started_at = d.now
    observe_health(d, machine)


def _crash_loop_running(d: Draft) -> str:
    count = d.status.crash_count
    crashes = "crash" if count == 1 else "crashes"
    window = int(d.timings.crash_window.total_seconds())
    return (
        f"machine {d.status.machine_id} is started again after {count} {crashes} in a row; "
        f"the count resets once it runs for {window}s"
    )


def enter_stopped(d: Draft) -> Phase | None:
    """Phase Stopped with KiloClaw's bookkeeping; returns the phase it left."""
    status = d.status
    old = status.phase
    status.phase = Phase.STOPPED
    status.starting_at = None
    status.stopped_checks = 0
    status.unhealthy_since = None
    status.health_check_output = None
    if old != Phase.STOPPED or status.last_stopped_at is None:
        status.last_stopped_at = d.now
    return old


def fail_start(d: Draft, failure: FlyFailure | None, reason: Reason, message: str) -> FailureOutcome:
    """The start-failure fast path (contract behaviour 1): Stopped at once, StartFailed=True."""
    enter_stopped(d)
    status = d.status
    status.last_start_error_message = message
    status.last_start_error_at = d.now
    d.record(START_FAILED, TRUE, reason, message)
    d.event(EventType.WARNING, EventReason.START_FAILED, message)
    d.log("start_failed", reason=reason, error=message)
    if failure is None:
        return FailureOutcome(retry=True, requeue_after=retry_delay(None, d.instance, d.timings))
    return apply_failure(d, failure)


def is_starting_timed_out(d: Draft) -> bool:
    """KiloClaw's strict comparison: now - startingAt > timeout."""
    status = d.status
    return (
        status.phase == Phase.STARTING
        and status.starting_at is not None
        and d.now - status.starting_at > d.timings.starting_timeout
    )


def starting_timeout(d: Draft, machine: MachineView | None, *, error: FlyFailure | None = None) -> None:
    """Starting for longer than the timeout → Stopped, StartTimeout (contract behaviour 5)."""
    status = d.status
    started_at = status.starting_at
    elapsed_ms = int((d.now - started_at).total_seconds() * 1000) if started_at else None
    last_error = status.last_start_error_message
    seconds = int(d.timings.starting_timeout.total_seconds())
    message = f"the machine did not reach started within {seconds}s"
    if machine is not None:
        message += f" (Fly state {machine.state})"
    if last_error:
        message += f"; last start error: {last_error}"
    if error is not None:
        action = "starting_timeout_transient_error"
        details: dict[str, object] = {"error": error.message}
    elif machine is not None or status.machine_id is not None:
        action = "starting_timeout_with_machine"
        details = {"fly_state": machine.state if machine else None, "last_start_error": last_error}
    else:
        action = "starting_timeout"
        details = {"last_start_error": last_error}
    observe_machine(d, machine)
    enter_stopped(d)
    # The contract keeps StartFailed and lastStartError* in step: the timeout is the start's error.
    status.last_start_error_message = message
    status.last_start_error_at = d.now
    d.record(STALLED, TRUE, Reason.START_TIMEOUT, message)
    d.record(START_FAILED, TRUE, Reason.START_TIMEOUT, message)
    d.event(EventType.WARNING, EventReason.START_TIMEOUT, message)
    d.log(
        action,
        starting_at=started_at.isoformat() if started_at else None,
        elapsed_ms=elapsed_ms,
        new_state=Phase.STOPPED.value,
        **details,
    )


def restart_succeeded(
    d: Draft,
    machine: MachineView | None,
    reason: RestartReason,
    announced: str,
    *,
    mount_repair: str | None,
    served: str | None,
) -> None:
    """The restart reached a started machine on its new version: the guard goes, the request
    it `served` (a spec.restartedAt value) is handled, and the Restarted Event (plus
    MountRepaired when the restart fixed a mount) is posted."""
    status = d.status
    status.restarting_at = None
    status.restarting_instance_id = None
    d.record(RESTARTING, FALSE, Reason.RESTART_SUCCEEDED, f"{reason.value}: {announced}")
    status.handled_restarted_at = served
    enter_running(d, machine, log_action=None)
    status.last_started_at = d.now
    restarted = f"machine {status.machine_id} restarted ({reason.value})"
    d.event(EventType.NORMAL, EventReason.RESTARTED, restarted)
    repaired = (
        mount_repair
        if mount_repair is not None
        else (announced if reason == RestartReason.MOUNT_REPAIR else None)
    )
    if repaired is not None:
        mount_repaired(d, repaired)


def restart_served_by_boot(d: Draft, machine: MachineView, booted: datetime) -> None:
    """Fly shows the machine started on a boot after the pending restart request
    (`lifecycle.boots`): the request is served, though the calls that stopped and started it got
    no answer, or an error although Fly applied them. It is handled, and reported as a restart
    that happened, never run a second time."""
    status = d.status
    requested = d.instance.spec.restarted_at
    status.handled_restarted_at = requested
    at = rfc3339(booted)
    d.record(
        RESTARTING,
        FALSE,
        Reason.RESTART_SUCCEEDED,
        f"{RestartReason.REQUESTED.value}: the machine was stopped and booted again after "
        f"spec.restartedAt changed to {requested} (Fly's start event at {at})",
    )
    d.event(
        EventType.NORMAL,
        EventReason.RESTARTED,
        f"machine {machine.id} restarted ({RestartReason.REQUESTED.value}): Fly shows it booted at {at}, "
        "after the request",
    )
    d.log("restart_served_by_boot", restarted_at=requested, booted_at=at)


def restart_failed(
    d: Draft, reason: RestartReason, message: str, *, machine: MachineView | None, volume_id: str | None
) -> None:
    """The restart in flight failed: the guard goes, and the real state is decided afresh.

    A mount-repair restart whose update went in (the machine Fly shows mounts our volume) did
    repair the mount, even if what followed failed: that is reported, not `RepairFailed`."""
    status = d.status
    announced = d.condition(RESTARTING).message
    status.restarting_at = None
    status.restarting_instance_id = None
    d.record(RESTARTING, FALSE, Reason.RESTART_FAILED, message)
    if reason == RestartReason.MOUNT_REPAIR:
        path = d.instance.spec.volume.mount_path
        if (
            machine is not None
            and volume_id is not None
            and any(m.volume == volume_id and m.path == path for m in machine.mounts)
        ):
            mount_repaired(d, announced)
        else:
            d.record(MOUNT_REPAIRED, FALSE, Reason.REPAIR_FAILED, f"{announced}: {message}")
    d.event(EventType.WARNING, EventReason.RESTART_FAILED, f"{reason.value}: {message}")
    d.log("restart_failed", reason=reason.value, error=message)


def mount_repaired(d: Draft, repaired: str) -> None:
    """The one report of a repaired mount, whichever path repaired it (contract behaviour 4)."""
    machine_id = d.status.machine_id
    d.record(MOUNT_REPAIRED, TRUE, Reason.MOUNT_REPAIRED, repaired)
    d.event(EventType.NORMAL, EventReason.MOUNT_REPAIRED, f"machine {machine_id} mount repaired {repaired}")
    d.log("repair_mount", repaired=repaired)


def machine_lost(d: Draft) -> None:
    """The machine is gone from Fly (404): forget it; it is recreated on the existing volume."""
    status = d.status
    machine_id = status.machine_id
    was_starting = status.phase == Phase.STARTING
    d.event(
        EventType.WARNING,
        EventReason.MACHINE_LOST,
        f"machine {machine_id} is gone from Fly; a new one will be created on volume {status.volume_id}",
    )
    d.log(
        "starting_machine_gone" if was_starting else "clear_stale_machine",
        old_state=_phase(status.phase),
        new_state=Phase.STOPPED.value,
        machine_id=machine_id,
    )
    status.machine_id = None
    status.machine_state = None
    status.instance_id = None
    if status.phase is not None:
        enter_stopped(d)
    if status.restarting_at is not None:
        status.restarting_at = None
        status.restarting_instance_id = None
        d.record(RESTARTING, FALSE, Reason.RESTART_FAILED, "the machine was lost during the restart")


def _phase(phase: Phase | None) -> str | None:
    return phase.value if phase is not None else None
