"""Loss only on proof: when a machine or a volume the status names is really gone from Fly.

Fly's API answers 404 for objects that exist while it settles, and a volume holds the user's
data: one 404 taken as "lost" replaced a volume full of data with an empty one (issue 18). So a
recorded object is lost only when

1. a read answered 404 (or Fly shows it destroyed / soft-deleted: an explicit answer, taken
   as proof at once);
2. a second read, at least `Timings.loss_grace` after the first, answers 404 too — the first
   404 is remembered in `status.machineMissingSince` / `status.volumeMissingSince`, so the
   proof survives an operator restart and a dropped status write only delays it; and
3. a successful listing (machines by the UID tag, volumes by name) does not show it.

A volume that a machine of the instance mounts is never lost: Fly refuses to delete a bound
volume, so such a 404 is Fly's, not the volume's. A read that finds the object again clears
the suspicion without any Warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from claw_operator.api.reasons import EventReason
from claw_operator.api.status import ClawInstanceStatus
from claw_operator.lifecycle import transitions
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.failures import retry_delay
from claw_operator.lifecycle.model import (
    Decision,
    EventType,
    FlyFailure,
    Lookup,
    MachineView,
    Observation,
    VolumeView,
)
from claw_operator.lifecycle.recovery import GONE_STATES, VOLUME_GONE_STATES, live_machines, live_volumes


def _seconds_left(d: Draft, since: datetime) -> float:
    return max((d.timings.loss_grace - (d.now - since)).total_seconds(), 0.0)


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class _Hold:
    """The pass stops here: look again after `requeue_after` seconds (0: at once)."""

    requeue_after: float
    retry: bool = False


# ---------------------------------------------------------------------------- the proof


@dataclass(frozen=True)
class _Kind:
    """The status fields of a machine or a volume (its id, where its first 404 is remembered),
    and the name of its logs."""

    noun: str  # "machine" | "volume": `<noun>_not_found_once`, `<noun>_not_found_contradicted`
    recorded_id: Callable[[ClawInstanceStatus], str | None]
    missing_since: Callable[[ClawInstanceStatus], datetime | None]
    set_missing_since: Callable[[ClawInstanceStatus, datetime | None], None]


def _set_machine_missing_since(status: ClawInstanceStatus, since: datetime | None) -> None:
    status.machine_missing_since = since


def _set_volume_missing_since(status: ClawInstanceStatus, since: datetime | None) -> None:
    status.volume_missing_since = since


_MACHINE = _Kind(
    "machine",
    lambda status: status.machine_id,
    lambda status: status.machine_missing_since,
    _set_machine_missing_since,
)
_VOLUME = _Kind(
    "volume",
    lambda status: status.volume_id,
    lambda status: status.volume_missing_since,
    _set_volume_missing_since,
)


def _first_404(d: Draft, kind: _Kind) -> None:
    """Remember the first 404 (a later one proves nothing new)."""
    if kind.missing_since(d.status) is None:
        kind.set_missing_since(d.status, d.now)
        d.log(f"{kind.noun}_not_found_once")


def _found_again(d: Draft, kind: _Kind, how: str) -> None:
    """Seen again (`how`: read, listed, mounted): the suspicion goes, without any Warning."""
    if kind.missing_since(d.status) is not None:
        d.log(f"{kind.noun}_not_found_contradicted", seen=how)
        kind.set_missing_since(d.status, None)


def _prove_gone(
    d: Draft,
    kind: _Kind,
    object_id: str,
    listed_ids: set[str] | None,
    listing_failure: FlyFailure | None,
    lost: Callable[[datetime], None],
) -> _Hold | None:
    """The read answered 404: steps 2 and 3 of the proof. `listed_ids` are the live ids a
    successful listing shows (None: no conclusive listing); `lost(since)` reports the loss."""
    since = kind.missing_since(d.status)
    if since is None:
        _first_404(d, kind)
        return _Hold(d.timings.loss_grace.total_seconds())
    left = _seconds_left(d, since)
    if left > 0:
        return _Hold(left)
    if listed_ids is None:
        # No conclusive listing: the loss is not proven. Look again (with backoff on failures).
        return _Hold(retry_delay(listing_failure, d.instance, d.timings), retry=True)
    if object_id in listed_ids:
        _found_again(d, kind, "listed")
        return None
    lost(since)
    return _Hold(0)


def check_losses(d: Draft, observed: Observation) -> Decision | None:
    """The pass's Decision when a loss is suspected (wait, look again) or proven (report it);
    None when nothing the status names is missing, and the pass goes on.

    Both objects are checked in the same pass, so a machine and its volume destroyed together
    are proven lost after one grace period, not two.
    """
    holds: list[_Hold] = []
    for kind, check in ((_VOLUME, _check_volume), (_MACHINE, _check_machine)):
        object_id = kind.recorded_id(d.status)
        if object_id is None:
            kind.set_missing_since(d.status, None)  # nothing recorded, nothing suspected
            continue
        hold = check(d, observed, object_id)
        if hold is not None:
            holds.append(hold)
    if not holds:
        return None
    return d.finish(
        requeue_after=min(hold.requeue_after for hold in holds), retry=any(hold.retry for hold in holds)
    )


# ---------------------------------------------------------------------------- volumes


def mounted_volume(machine: MachineView | None, mount_path: str) -> str | None:
    """The volume `machine` mounts at `mount_path` (None: no machine, or nothing there)."""
    if machine is None:
        return None
    return next((m.volume for m in machine.mounts if m.path == mount_path and m.volume), None)


def _instance_machines(observed: Observation) -> list[MachineView]:
    machines: list[MachineView] = []
    if observed.machine.outcome == Lookup.FOUND and observed.machine.machine is not None:
        machines.append(observed.machine.machine)
    machines.extend(live_machines(observed.tagged_machines or ()))
    return [m for m in machines if m.state not in GONE_STATES]


def _check_volume(d: Draft, observed: Observation, volume_id: str) -> _Hold | None:
    status = d.status
    lookup = observed.volume
    seen = lookup.volume
    named = observed.named_volumes
    mount_path = d.instance.spec.volume.mount_path
    mounts = {mounted_volume(m, mount_path) for m in _instance_machines(observed)} - {None}
    mounted_ours = [v for v in live_volumes(named) if v.id in mounts]
    if volume_id not in mounts and mounted_ours:
        # The machine mounts another volume of this instance (named after it): that one holds
        # the data, and status.volumeId names the volume the machine mounts — never "repair"
        # the machine onto the other one.
        _follow_mount(d, volume_id, mounted_ours[0])
        return None
    if lookup.outcome == Lookup.FOUND and seen is not None and seen.state not in VOLUME_GONE_STATES:
        status.volume_size_gb = seen.size_gb
        _volume_found_again(d, "read")
        return None
    if volume_id in mounts:
        # Bound to a machine of ours: Fly would refuse to delete it, so it exists.
        _volume_found_again(d, "mounted")
        return None
    if lookup.outcome == Lookup.FOUND and seen is not None:
        # Fly says so itself (soft-deleted): no flicker produces that answer.
        _volume_lost(d, f"Fly shows it {seen.state}")
        return _Hold(0)
    if lookup.outcome != Lookup.GONE:
        return None

    def lost(since: datetime) -> None:
        listed = len(live_volumes(named))
        _volume_lost(
            d,
            f"404 on GET since {_stamp(since)} and again at {_stamp(d.now)}; "
            f"not among the {listed} live volume(s) listed under its name",
        )

    listed_ids = None if named is None else {v.id for v in live_volumes(named)}
    return _prove_gone(d, _VOLUME, volume_id, listed_ids, observed.named_failure, lost)


def _volume_found_again(d: Draft, how: str) -> None:
    _found_again(d, _VOLUME, how)


def _follow_mount(d: Draft, old: str, mounted: VolumeView) -> None:
    status = d.status
    d.log("volume_id_follows_mount", old_volume_id=old, volume_id=mounted.id)
    status.volume_id = mounted.id
    status.region = mounted.region
    status.volume_size_gb = mounted.size_gb
    status.volume_missing_since = None


def _volume_lost(d: Draft, evidence: str) -> None:
    """Proven gone: report it (with the evidence), record it, and have a new volume made.

    KiloClaw's `replace_lost_volume` logs `data_loss`: a volume that held data (the machine
    once started on it) is a loss of the user's data, one that never did is not.
    """
    status = d.status
    old = status.volume_id
    held_data = status.last_started_at is not None
    consequence = (
        "the data it held is lost" if held_data else "it held no data yet (the machine never started)"
    )
    d.event(
        EventType.WARNING,
        EventReason.VOLUME_LOST,
        f"volume {old} is gone from Fly ({evidence}); a new, empty volume will be created: {consequence}",
    )
    d.log("replace_lost_volume", data_loss=held_data, old_volume_id=old, evidence=evidence)
    status.lost_volume_id = old
    status.last_volume_loss_at = d.now
    status.volume_id = None
    status.volume_size_gb = None
    status.volume_missing_since = None


# ---------------------------------------------------------------------------- machines


def suspect_machine_missing(d: Draft) -> None:
    """A call on the machine answered 404: remember it; the next pass reads it again and only
    a second 404 after the grace period (and a listing without it) makes it lost."""
    _first_404(d, _MACHINE)


def _check_machine(d: Draft, observed: Observation, machine_id: str) -> _Hold | None:
    lookup = observed.machine
    seen = lookup.machine
    if lookup.outcome == Lookup.FOUND and seen is not None:
        if seen.state == "destroyed":
            # Fly says so itself; a destroyed machine never comes back.
            _machine_lost(d)
            return _Hold(0)
        _machine_found_again(d, "read")
        return None
    if lookup.outcome != Lookup.GONE:
        return None
    listing = observed.tagged_machines
    listed_ids = None if listing is None else {m.id for m in live_machines(listing)}
    return _prove_gone(
        d, _MACHINE, machine_id, listed_ids, observed.tagged_failure, lambda _since: _machine_lost(d)
    )


def _machine_found_again(d: Draft, how: str) -> None:
    _found_again(d, _MACHINE, how)


def _machine_lost(d: Draft) -> None:
    d.status.machine_missing_since = None
    transitions.machine_lost(d)
