"""Desired vs observed machine: the mount and the config, and which restart they call for."""

from __future__ import annotations

from dataclasses import dataclass

from claw_operator.lifecycle.desired import config_changes, desired_machine
from claw_operator.lifecycle.model import Instance, MachineView, RestartReason


@dataclass(frozen=True)
class RestartTrigger:
    reason: RestartReason
    message: str


def mount_is_correct(machine: MachineView, volume_id: str, path: str) -> bool:
    """KiloClaw's rule: some mount has our volume at the desired path (extra mounts are fine)."""
    return any(m.volume == volume_id and m.path == path for m in machine.mounts)


def describe_mounts(machine: MachineView) -> str:
    if not machine.mounts:
        return "(no mount)"
    return ",".join(f"{m.volume}:{m.path}" for m in machine.mounts)


def mount_repair_message(machine: MachineView, volume_id: str, path: str) -> str:
    """MountRepaired's message: from what to what."""
    return f"from {describe_mounts(machine)} to {volume_id}:{path}"


def mount_repair_needed(machine: MachineView, volume_id: str, path: str) -> str | None:
    """The repair ("from X to Y") an update of this machine would make, or None when none."""
    if mount_is_correct(machine, volume_id, path):
        return None
    return mount_repair_message(machine, volume_id, path)


def config_drift(instance: Instance, volume_id: str, machine: MachineView) -> list[str]:
    """What differs between the spec and the machine's config (`desired.config_changes`)."""
    return config_changes(desired_machine(instance, volume_id), machine.config)


def restart_requested(instance: Instance) -> bool:
    requested = instance.spec.restarted_at
    return requested is not None and requested != instance.status.handled_restarted_at


def restart_trigger(instance: Instance, volume_id: str, machine: MachineView) -> RestartTrigger | None:
    """Why a started machine must go through stop → update → start, if it must.

    Mount drift first: one restart applies the whole desired config and mount, so the most
    important reason is the one reported.
    """
    path = instance.spec.volume.mount_path
    if not mount_is_correct(machine, volume_id, path):
        return RestartTrigger(RestartReason.MOUNT_REPAIR, mount_repair_message(machine, volume_id, path))
    changes = config_drift(instance, volume_id, machine)
    if changes:
        return RestartTrigger(RestartReason.CONFIG_CHANGED, "; ".join(changes))
    if restart_requested(instance):
        return RestartTrigger(
            RestartReason.REQUESTED, f"spec.restartedAt changed to {instance.spec.restarted_at}"
        )
    return None
