"""Crash loops: a machine that stops or fails soon after its start is started again ever more
slowly, and says so (the kubelet's `CrashLoopBackOff`).

A *crash* is a desired-running machine that Fly shows failed, or stopped by an exit of its own
(not a requested stop), within
`Timings.crash_window` of its start (the stop time is Fly's latest `exit` event, else its
`updated_at`, so a crash seen only after the stopped-check threshold still counts as one).
Each consecutive crash doubles the wait before the next start (`crash_backoff`, `2 *`, …
capped by `crash_backoff_max`), counted in `status.crashCount` from `status.lastCrashAt`; a run longer
than the window resets the count. While it lasts, `StartFailed=True` with reason
`CrashLoopBackOff` names the count and the next attempt, and one Warning Event series (posted
by `kube` as one Event whose count grows) records each crash.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from claw_operator.api.conditions import START_FAILED
from claw_operator.api.reasons import EventReason, Reason
from claw_operator.api.timefmt import rfc3339
from claw_operator.lifecycle import transitions
from claw_operator.lifecycle.conditions import FALSE, TRUE
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.model import EventType, MachineView, Timings


def crash_delay(count: int, timings: Timings) -> timedelta:
    """The wait before the start that follows `count` consecutive crashes."""
    if count <= 0:
        return timedelta(0)
    delay: timedelta = timings.crash_backoff * (2 ** min(count - 1, 32))
    return min(delay, timings.crash_backoff_max)


def _seconds(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def _stopped_at(d: Draft, machine: MachineView, started: datetime) -> datetime:
    """When it stopped: Fly's exit event, else its last state change, else now."""
    for moment in (machine.exited_at, machine.updated_at):
        if moment is not None and started <= moment <= d.now:
            return moment
    return d.now


def is_crash(d: Draft, machine: MachineView, started: datetime | None = None) -> bool:
    """The machine failed, or its process exited on its own, within the crash window of its
    start. A stop someone requested (`fly machine stop`, autostop) is no crash: a stopped
    machine is one only with Fly's evidence of an exit of its own after the start."""
    started = started or d.status.last_started_at
    if started is None:
        return False
    if machine.state != "failed" and (machine.exited_at is None or machine.exited_at < started):
        return False
    return _stopped_at(d, machine, started) - started <= d.timings.crash_window


def record_crash(d: Draft, machine: MachineView, started: datetime | None = None) -> float:
    """Count a crash: Stopped, StartFailed=True (CrashLoopBackOff) with the count and the next
    attempt, the Warning Event of the series. Returns the seconds until the next start."""
    status = d.status
    started = started or status.last_started_at or d.now
    ran = _stopped_at(d, machine, started) - started
    status.crash_count += 1
    status.last_crash_at = d.now
    delay = crash_delay(status.crash_count, d.timings)
    next_at = d.now + delay
    count = status.crash_count
    crashes = "crash" if count == 1 else "crashes"
    message = (
        f"machine {machine.id} {machine.state} {_seconds(ran)} after its start "
        f"({count} {crashes} in a row within the {_seconds(d.timings.crash_window)} crash window); "
        f"next start at {rfc3339(next_at)} (in {_seconds(delay)})"
    )
    transitions.observe_machine(d, machine)
    transitions.enter_stopped(d)
    status.last_start_error_message = message
    status.last_start_error_at = d.now
    d.record(START_FAILED, TRUE, Reason.CRASH_LOOP_BACK_OFF, message)
    d.event(EventType.WARNING, EventReason.CRASH_LOOP_BACK_OFF, message)
    d.log(
        "crash_loop_back_off",
        crash_count=count,
        ran_seconds=ran.total_seconds(),
        fly_state=machine.state,
        next_start_in=delay.total_seconds(),
    )
    return delay.total_seconds()


def backoff_remaining(d: Draft) -> float | None:
    """Seconds until a start is allowed after the last crash (None: it is allowed now)."""
    status = d.status
    if status.crash_count <= 0 or status.last_crash_at is None:
        return None
    due = status.last_crash_at + crash_delay(status.crash_count, d.timings)
    if d.now >= due:
        return None
    return (due - d.now).total_seconds()


def reset_if_stable(d: Draft) -> None:
    """Started and up for longer than the crash window: the crash loop is over."""
    status = d.status
    if status.crash_count <= 0 and status.last_crash_at is None:
        return
    started = status.last_started_at
    if started is None or d.now - started <= d.timings.crash_window:
        return
    count = status.crash_count
    status.crash_count = 0
    status.last_crash_at = None
    status.last_start_error_message = None
    status.last_start_error_at = None
    if d.condition(START_FAILED).reason == Reason.CRASH_LOOP_BACK_OFF:
        d.record(
            START_FAILED,
            FALSE,
            Reason.STARTED,
            f"the machine has run for longer than the {_seconds(d.timings.crash_window)} crash window "
            f"(after {count} crashes)",
        )
    d.log("crash_loop_reset", crash_count=count)
