"""Which boot serves a requested restart (spec.restartedAt).

A request is served when the machine was stopped and booted again after it. The operator's own
calls cannot always tell: Fly may apply a stop or a start and still answer 408 or 5xx, and a
process killed between a call and its status write forgets it made it. Fly's machine events
can: each time a machine reaches started, Fly records a `start` event.

So before the first Fly call that may serve a request (the restart guard, or the start of a
machine that is not running), the operator persists a *baseline* in Fly's own clock: the
machine's latest start event, or its `updated_at` if later, as a pass that had read the request
saw them. A start event later than the baseline is a boot this pass had not seen — one after
the request, of a machine that was not running just before it. Fly's clock is compared only
with Fly's clock: never with the operator's, nor with restartedAt (a free-form string).

Anything unknown counts as "not served" (the restart then runs, as before): no baseline (Fly
showed neither a start event nor `updated_at`; the machine was mid-boot, whose start event
would belong to a launch made before), no start event now, or one not strictly later than the
baseline.
"""

from __future__ import annotations

from datetime import datetime

from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.drift import restart_requested
from claw_operator.lifecycle.model import MachineView

# States in which no boot is under way: a start event after what Fly shows now is a new launch.
# (`starting`, `replacing`: a launch made before this pass, whose start event is still to come.)
_SETTLED = frozenset({"started", "stopped", "created", "failed", "suspended"})


def boot_baseline(machine: MachineView) -> datetime | None:
    """Fly's time after which a start event is a boot this view has not seen (persisted to the
    microsecond: a restart can stop and boot a machine within a second). Without a start event
    (a machine stopped before it ever booted, or one whose start scrolled out of the events Fly
    embeds: that one never shows again) its `updated_at`, which moves with every state change.
    None when it cannot be told."""
    if machine.state not in _SETTLED:
        return None
    known = [moment for moment in (machine.booted_at, machine.updated_at) if moment is not None]
    return max(known) if known else None


def note_request(d: Draft, machine: MachineView) -> bool:
    """Record the baseline of the pending restart request from what Fly shows now, unless one is
    recorded for it already. True when recorded (the caller persists it before acting)."""
    requested = d.instance.spec.restarted_at
    status = d.status
    if not restart_requested(d.instance) or status.restart_baseline_for == requested:
        return False
    baseline = boot_baseline(machine)
    if baseline is None:
        return False
    status.restart_baseline_for = requested
    status.restart_baseline_at = baseline
    return True


def booted_since_request(d: Draft, machine: MachineView) -> datetime | None:
    """The start event of the boot that served the pending request, when Fly shows the machine
    started on a boot later than the request's baseline; None otherwise."""
    requested = d.instance.spec.restarted_at
    status = d.status
    baseline = status.restart_baseline_at
    if not restart_requested(d.instance) or status.restart_baseline_for != requested or baseline is None:
        return None
    booted = machine.booted_at
    if machine.state != "started" or booted is None or booted <= baseline:
        return None
    return booted
