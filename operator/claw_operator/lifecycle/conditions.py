"""The six conditions: their "nothing to report" defaults, and Ready/Reconciling derived from
the situation a pass ends in.

Stalled, StartFailed, MountRepaired and Restarting record *events* (a failure, a repair, a
restart) and persist from pass to pass until something changes them. Ready and Reconciling
describe the *current state* and are recomputed from the final status at the end of every
pass, so no code path can forget to update them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from claw_operator.api import ClawInstanceStatus, ConditionStatus, DesiredState, Phase
from claw_operator.api.conditions import (
    MOUNT_REPAIRED,
    READY,
    RECONCILING,
    RESTARTING,
    STALLED,
    START_FAILED,
)
from claw_operator.api.reasons import Reason
from claw_operator.lifecycle.model import Instance, RestartReason

TRUE: Final = ConditionStatus.TRUE
FALSE: Final = ConditionStatus.FALSE
UNKNOWN: Final = ConditionStatus.UNKNOWN

# The message of the one configuration error the decisions detect themselves.
NO_APP_MESSAGE: Final = "no Fly app: set spec.app, or start the operator with --default-app (env FLY_APP)"

# Conditions that record what happened and are carried over until changed.
RECORDED_TYPES: Final = (STALLED, START_FAILED, MOUNT_REPAIRED, RESTARTING)


@dataclass(frozen=True)
class ConditionValue:
    """A condition's status, reason and message (time and generation are stamped on write)."""

    status: ConditionStatus
    reason: str
    message: str = ""

    @property
    def is_true(self) -> bool:
        return self.status == TRUE


DEFAULTS: Final = {
    STALLED: ConditionValue(FALSE, Reason.NOT_STALLED),
    START_FAILED: ConditionValue(UNKNOWN, Reason.NOT_STARTED),
    MOUNT_REPAIRED: ConditionValue(FALSE, Reason.NO_REPAIR),
    RESTARTING: ConditionValue(FALSE, Reason.NOT_RESTARTING),
}


def volume_grow_pending(instance: Instance, status: ClawInstanceStatus) -> str | None:
    """Why the volume is not the size the spec asks for (None: it is, or its size is unknown).

    Never a silent Ready=True with the wrong size: a grow Fly has not applied yet (refused,
    retried, or not tried) keeps Ready=False with reason Resizing.
    """
    size = status.volume_size_gb
    want = instance.spec.volume.size_gb
    if status.volume_id is None or size is None or size >= want:
        return None
    return f"the volume is {size} GB; growing it to spec.volume.sizeGB {want} GB"


def machine_satisfies_desired(instance: Instance, status: ClawInstanceStatus) -> bool:
    """The machine is in the desired power state, as last observed and recorded."""
    if instance.spec.state == DesiredState.RUNNING:
        return status.phase == Phase.RUNNING and status.machine_state == "started"
    # Desired Stopped: nothing running (no machine at all counts as stopped).
    return status.phase == Phase.STOPPED and status.machine_state != "started"


def _missing(status: ClawInstanceStatus) -> str | None:
    gone = [
        f"{what} {name} since {since.isoformat().replace('+00:00', 'Z')}"
        for what, name, since in (
            ("machine", status.machine_id, status.machine_missing_since),
            ("volume", status.volume_id, status.volume_missing_since),
        )
        if since is not None
    ]
    if not gone:
        return None
    return f"Fly answered 404 for {' and '.join(gone)}; looking again before calling it lost"


def ready(
    instance: Instance,
    status: ClawInstanceStatus,
    stalled: ConditionValue,
    start_failed: ConditionValue,
) -> ConditionValue:
    """Ready: the machine is in the desired state, for this generation, with no restart in flight."""
    if instance.deleting:
        return ConditionValue(FALSE, Reason.DESTROYING, "the instance is being deleted")
    if status.restarting_at is not None:
        return ConditionValue(FALSE, Reason.RESTARTING, "a restart is in flight")
    missing = _missing(status)
    if missing is not None:
        # One 404 proves nothing (lifecycle.loss), but neither is it "Fly shows it started":
        # until the second look, the honest answer is "don't know".
        return ConditionValue(UNKNOWN, Reason.NOT_FOUND_ONCE, missing)
    if stalled.is_true:
        # Blocked: even a machine that runs does not run what the spec asks for (a rejected
        # config, an unresolvable Secret), or cannot be checked (a rejected token).
        if start_failed.is_true:
            return ConditionValue(FALSE, Reason.START_FAILED, start_failed.message)
        return ConditionValue(FALSE, stalled.reason, stalled.message)
    if instance.spec.state == DesiredState.RUNNING and status.volume_id is None:
        # A machine runs, but on no volume of the instance (its own is being provided): the
        # user's data is not where the spec says.
        return ConditionValue(FALSE, Reason.PROVISIONING, "the instance's volume is being provided")
    if machine_satisfies_desired(instance, status):
        pending = volume_grow_pending(instance, status)
        if pending is not None:
            return ConditionValue(FALSE, Reason.RESIZING, pending)
        if instance.spec.state == DesiredState.RUNNING:
            if instance.spec.health_check is not None and status.unhealthy_since is not None:
                # Started is not healthy: the phase stays Running, Ready says what fails.
                return ConditionValue(FALSE, Reason.UNHEALTHY, status.health_check_output or "")
            return ConditionValue(TRUE, Reason.RUNNING, "the machine is started")
        return ConditionValue(TRUE, Reason.STOPPED, "the machine is stopped, as desired")
    if instance.spec.state == DesiredState.STOPPED:
        return ConditionValue(FALSE, Reason.STOPPING, "the machine is not stopped yet")
    if start_failed.is_true and status.phase != Phase.STARTING:
        # A crash loop waiting for its next start says so (the message names the next attempt).
        crashing = start_failed.reason == Reason.CRASH_LOOP_BACK_OFF
        return ConditionValue(
            FALSE, Reason.CRASH_LOOP_BACK_OFF if crashing else Reason.START_FAILED, start_failed.message
        )
    if status.phase == Phase.STARTING:
        return ConditionValue(FALSE, Reason.STARTING, "the machine is starting")
    if status.phase == Phase.RUNNING:
        state = status.machine_state or "unknown"
        return ConditionValue(FALSE, Reason.MACHINE_NOT_STARTED, f"the machine is {state}")
    if status.phase == Phase.STOPPED:
        return ConditionValue(FALSE, Reason.STOPPED, "the machine is stopped")
    return ConditionValue(FALSE, Reason.PROVISIONING, "the volume and machine are being created")


def reconciling(
    instance: Instance,
    status: ClawInstanceStatus,
    stalled: ConditionValue,
    restarting: ConditionValue,
) -> ConditionValue:
    """Reconciling (kstatus): the operator is working toward the spec."""
    if instance.deleting:
        return ConditionValue(TRUE, Reason.DESTROYING, "destroying the machine, then the volume")
    if stalled.is_true:
        # kstatus: a stalled object is not progressing; Stalled says why.
        return ConditionValue(FALSE, Reason.STALLED, stalled.message)
    if status.restarting_at is not None:
        if restarting.reason == RestartReason.MOUNT_REPAIR:
            return ConditionValue(TRUE, Reason.REPAIRING_MOUNT, restarting.message)
        return ConditionValue(TRUE, Reason.RESTARTING, restarting.message)
    if machine_satisfies_desired(instance, status):
        pending = volume_grow_pending(instance, status)
        if pending is not None:
            return ConditionValue(TRUE, Reason.RESIZING, pending)
        return ConditionValue(FALSE, Reason.RECONCILED, "")
    if status.volume_id is None or (
        status.machine_id is None and instance.spec.state == DesiredState.RUNNING
    ):
        return ConditionValue(TRUE, Reason.PROVISIONING, "creating the volume and machine")
    if instance.spec.state == DesiredState.STOPPED:
        return ConditionValue(TRUE, Reason.STOPPING, "stopping the machine")
    return ConditionValue(TRUE, Reason.STARTING, "starting the machine")


def _ready(
    instance: Instance, status: ClawInstanceStatus, recorded: Mapping[str, ConditionValue]
) -> ConditionValue:
    return ready(instance, status, recorded[STALLED], recorded[START_FAILED])


def _reconciling(
    instance: Instance, status: ClawInstanceStatus, recorded: Mapping[str, ConditionValue]
) -> ConditionValue:
    return reconciling(instance, status, recorded[STALLED], recorded[RESTARTING])


# Conditions derived at the end of every pass (`Draft.finish`) from the final status and the
# recorded conditions, unless the pass set one itself.
DERIVED: Final[
    Mapping[str, Callable[[Instance, ClawInstanceStatus, Mapping[str, ConditionValue]], ConditionValue]]
] = {
    READY: _ready,
    RECONCILING: _reconciling,
}
