"""Metadata recovery: find the machine of an instance whose machineId was lost (KiloClaw §5.4
in docs/reference/kiloclaw-lifecycle.md).

A machine create whose answer never arrived (timeout, 5xx, a crash before the status write)
may still have landed. Every machine carries the instance UID in its metadata, so listing by
that tag finds it; the best candidate is adopted instead of creating a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Final

from claw_operator.api import Phase
from claw_operator.api.reasons import EventReason
from claw_operator.fly.models import DESTROYED_MACHINE_STATES, DESTROYED_VOLUME_STATES
from claw_operator.lifecycle import transitions
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.model import EventType, MachineView, VolumeView

# Lower is better. A started machine is the one users reach; a failed one is the last resort.
RECOVERY_PRIORITY: Final = {
    "started": 0,
    "starting": 1,
    "stopped": 2,
    "created": 3,
    "stopping": 4,
    "replacing": 5,
    "suspended": 6,
    "failed": 7,
}
UNKNOWN_STATE_PRIORITY: Final = 99
# Machines on their way out are never adopted (nor destroyed again); a deleted volume Fly still
# shows (and lists) until it is purged. One definition, the Fly client's.
GONE_STATES: Final = DESTROYED_MACHINE_STATES
VOLUME_GONE_STATES: Final = DESTROYED_VOLUME_STATES


def live_machines(machines: Sequence[MachineView]) -> list[MachineView]:
    return [m for m in machines if m.state not in GONE_STATES]


def live_volumes(volumes: Sequence[VolumeView] | None) -> list[VolumeView]:
    return [v for v in volumes or () if v.state not in VOLUME_GONE_STATES]


def select_named_volume(
    volumes: Sequence[VolumeView] | None,
    region: str,
    *,
    mounted: str | None = None,
    machine_id: str | None = None,
) -> VolumeView | None:
    """The volume to adopt among those named after the instance.

    The one our machine mounts first (it holds the data), then one attached to our machine,
    then a free one, in our region first; one attached to another machine is the last resort.
    """
    live = live_volumes(volumes)
    if not live:
        return None

    def rank(v: VolumeView) -> tuple[int, bool]:
        if mounted is not None and v.id == mounted:
            order = 0
        elif machine_id is not None and v.attached_machine_id == machine_id:
            order = 1
        elif v.attached_machine_id is None:
            order = 2
        else:
            order = 3
        return (order, v.region != region)

    return min(live, key=rank)


def adopt_volume(d: Draft, volume: VolumeView) -> None:
    """A volume whose create answer was lost (found by its name) becomes the instance's volume."""
    d.status.volume_id = volume.id
    d.status.region = volume.region
    d.status.volume_size_gb = volume.size_gb
    d.status.volume_missing_since = None
    d.log("recover_volume_by_name", volume_id=volume.id, region=volume.region)


def _updated(machine: MachineView) -> float:
    if machine.updated_at is None:
        return float("-inf")
    moment = machine.updated_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def select_recovery_candidate(machines: Sequence[MachineView]) -> MachineView | None:
    """The machine to adopt: best state first (RECOVERY_PRIORITY), then newest updated_at."""
    live = live_machines(machines)
    if not live:
        return None
    return min(live, key=lambda m: (RECOVERY_PRIORITY.get(m.state, UNKNOWN_STATE_PRIORITY), -_updated(m)))


def adopt(
    d: Draft,
    machines: Sequence[MachineView],
    candidate: MachineView,
    named_volumes: Sequence[VolumeView] | None,
) -> None:
    """Record the recovered machine (and its volume, if ours is unknown) in the draft status.

    The volume a recovered machine mounts becomes ours only when it is one of the instance's
    (listed under its name): a mount re-pointed by hand at someone else's volume is a mount to
    repair, never a volume to adopt (and later destroy with the instance)."""
    status = d.status
    live = live_machines(machines)
    if len(live) > 1:
        d.log("multiple_machines_found", count=len(live), machine_ids=[m.id for m in live])
    status.machine_id = candidate.id
    status.region = candidate.region
    status.machine_state = candidate.state
    status.instance_id = candidate.instance_id
    if status.volume_id is None:
        mount_path = d.instance.spec.volume.mount_path
        ours = {v.id for v in live_volumes(named_volumes)}
        mount = next((m for m in candidate.mounts if m.path == mount_path and m.volume in ours), None)
        if mount is not None:
            status.volume_id = mount.volume
            d.log("recover_volume_from_mount", machine_id=candidate.id, volume_id=mount.volume)
    old = status.phase
    if candidate.state == "started":
        # The start whose answer was lost did succeed: clear its error like any start.
        transitions.enter_running(d, candidate, log_action=None, announce=False)
    elif candidate.state == "failed" or (candidate.state in ("stopped", "created") and old != Phase.STARTING):
        # A start in flight keeps Starting: the machine it created may still be booting, and
        # the starting timeout decides if it never does.
        status.phase = Phase.STOPPED
        status.starting_at = None
        status.stopped_checks = 0
    d.event(
        EventType.NORMAL,
        EventReason.MACHINE_RECOVERED,
        f"recovered machine {candidate.id} ({candidate.state}) by its instance UID tag",
    )
    d.log(
        "recover_machine_from_metadata",
        machine_id=candidate.id,
        state=candidate.state,
        region=candidate.region,
    )
