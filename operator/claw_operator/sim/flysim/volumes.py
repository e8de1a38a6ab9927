"""Volumes: one region, one host (zone), one machine at a time; soft delete; fork; extend."""

from __future__ import annotations

from typing import Any

from . import errors
from .model import REGION_ALIASES, REGIONS, Host, StateChange, Volume, VolumeSnapshot
from .world import FlyWorld

MIN_VOLUME_GB = 1
MAX_VOLUME_GB = 500
DEFAULT_VOLUME_GB = 3  # the API's default; flyctl's is 1 [D]


def _int_field(body: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.bad_request(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field .{key} of type int"
        )
    return value


def _check_size(size_gb: int) -> None:
    if not MIN_VOLUME_GB <= size_gb <= MAX_VOLUME_GB:
        raise errors.invalid_argument(f"size_gb must be between {MIN_VOLUME_GB} and {MAX_VOLUME_GB}")


class VolumeStore:
    def __init__(self, world: FlyWorld) -> None:
        self.world = world

    # -- lookups -------------------------------------------------------------------------------

    def get(self, app: str, volume_id: str) -> Volume:
        self.world.app(app)
        volume = self.world.volumes.get(volume_id)
        if volume is None or volume.app != app:
            raise errors.FlyError(404, "not_found: volume not found")
        return volume

    def list_volumes(self, app: str) -> list[Volume]:
        # Soft-deleted volumes stay listed; fly-go filters them client-side [C].
        self.world.app(app)
        return [v for v in self.world.volumes.values() if v.app == app]

    # -- create --------------------------------------------------------------------------------

    def create(self, app: str, body: dict[str, Any]) -> Volume:
        world = self.world
        world.app(app)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise errors.invalid_argument("name is required")
        source: Volume | None = None
        source_id = body.get("source_volume_id")
        if source_id:
            source = self.get(app, str(source_id))
            if source.soft_deleted:
                raise errors.failed_precondition(f"source volume {source.id} is {source.state}")
        region = body.get("region") or (source.region if source else None)
        if not isinstance(region, str) or not region:
            raise errors.invalid_argument("region is required")
        if region in REGION_ALIASES or "," in region:
            # Volumes need one concrete region; meta-regions do not work for them [O].
            raise errors.invalid_argument(f"volumes need a single region, got {region!r}")
        if region not in REGIONS:
            raise errors.invalid_argument(f"unknown region {region!r}")
        size_gb = _int_field(body, "size_gb", source.size_gb if source else DEFAULT_VOLUME_GB)
        assert size_gb is not None
        _check_size(size_gb)
        if source is not None and size_gb < source.size_gb:
            raise errors.invalid_argument("size_gb of a fork cannot be smaller than its source")
        require_unique_zone = body.get("require_unique_zone", True) is not False
        compute = body.get("compute") or {}
        if not isinstance(compute, dict):
            raise errors.bad_request(
                "json: cannot unmarshal into Go struct field .compute of type api.MachineGuest"
            )
        compute_memory = errors.int_argument(compute.get("memory_mb") or 0, "compute.memory_mb")
        compute_cpus = errors.int_argument(compute.get("cpus") or 0, "compute.cpus")
        if compute.get("cpu_kind") != "performance":
            compute_cpus = 0  # shared vCPUs are oversubscribed (see machines.host_reservation)

        capacity = world.region(region)
        live_in_region = sum(1 for v in world.volumes.values() if v.region == region and not v.soft_deleted)
        if capacity.max_volumes is not None and live_in_region >= capacity.max_volumes:
            raise errors.FlyError(412, f"no capacity available in {region}", code="insufficient_capacity")
        host = self._place(app, name, region, require_unique_zone, compute_cpus, compute_memory)

        now = world.now()
        snapshot_id = body.get("snapshot_id")
        state = "hydrating" if source is not None else ("restoring" if snapshot_id else "created")
        volume = Volume(
            id=world.ids.volume_id(),
            app=app,
            name=name,
            region=region,
            host=host,
            size_gb=size_gb,
            encrypted=body.get("encrypted", source.encrypted if source else True) is not False,
            state=state,
            created_at=now,
            # A fork is a block-level copy: the source's filesystem and contents come along.
            fstype=str(body.get("fstype") or (source.fstype if source else "ext4")),
            snapshot_retention=_int_field(body, "snapshot_retention", 5) or 5,
            auto_backup_enabled=body.get("auto_backup_enabled", True) is not False,
            require_unique_zone=require_unique_zone,
            contents=dict(source.contents) if source is not None else {},
            source_volume_id=source.id if source is not None else None,
        )
        world.volumes[volume.id] = volume
        volume.timeline.append(StateChange(at=now, state=state, instance_id=""))
        if state != "created":
            self._after(
                volume, world.pacer.draw("volume_hydrate"), lambda: self._set_state(volume, "created")
            )
        return volume

    def _place(self, app: str, name: str, region: str, unique_zone: bool, cpus: int, memory_mb: int) -> Host:
        hosts = self.world.region(region).hosts
        taken_zones = (
            {
                v.host.zone
                for v in self.world.volumes.values()
                if v.app == app and v.name == name and not v.soft_deleted
            }
            if unique_zone
            else set()
        )
        eligible = [h for h in hosts if h.zone not in taken_zones and h.status == "ok"]
        if not eligible and unique_zone and hosts:
            raise errors.FlyError(
                412,
                "failed_precondition: could not reserve resource for volume: "
                f"no zones left in {region} for a volume named {name!r} with require_unique_zone=true",
                code="insufficient_capacity",
            )
        fitting = [h for h in eligible if h.fits(cpus, memory_mb)]
        if not fitting:
            raise errors.FlyError(412, f"no capacity available in {region}", code="insufficient_capacity")
        # Spread: the host with the fewest volumes, then the most free memory; ties by order.
        volumes_on = {h.id: 0 for h in fitting}
        for v in self.world.volumes.values():
            if v.host.id in volumes_on:
                volumes_on[v.host.id] += 1
        return min(fitting, key=lambda h: (volumes_on[h.id], h.used_memory_mb))

    # -- update, extend, delete ----------------------------------------------------------------

    def update(self, app: str, volume_id: str, body: dict[str, Any]) -> Volume:
        volume = self.get(app, volume_id)
        retention = _int_field(body, "snapshot_retention")
        if retention is not None:
            volume.snapshot_retention = retention
        if "auto_backup_enabled" in body:
            volume.auto_backup_enabled = bool(body["auto_backup_enabled"])
        return volume

    def extend(self, app: str, volume_id: str, body: dict[str, Any]) -> tuple[Volume, bool]:
        volume = self.get(app, volume_id)
        if volume.soft_deleted:
            raise errors.failed_precondition(f"volume {volume.id} is {volume.state}")
        size_gb = _int_field(body, "size_gb")
        if size_gb is None:
            raise errors.invalid_argument("size_gb is required")
        if size_gb <= volume.size_gb:
            raise errors.invalid_argument(
                f"size_gb must be greater than the current size ({volume.size_gb}); volumes only grow"
            )
        _check_size(size_gb)
        volume.size_gb = size_gb
        previous = volume.state
        volume.state = "extending"
        self._after(volume, self.world.pacer.draw("volume_extend"), lambda: self._set_state(volume, previous))
        # A running machine sees the new space only after a restart [D]; the rule is ours [I].
        holder = self.world.machines.get(volume.claimed_by or "")
        needs_restart = holder is not None and holder.state in ("started", "starting", "restarting")
        return volume, needs_restart

    def delete(self, app: str, volume_id: str) -> Volume:
        volume = self.get(app, volume_id)
        if volume.soft_deleted:
            raise errors.FlyError(404, "not_found: volume not found")
        if volume.claimed_by is not None:
            raise errors.failed_precondition(f"volume is currently bound to machine: {volume.claimed_by}")
        world = self.world
        volume.state = "scheduling_destroy"
        volume.deleted_at = world.now()
        volume.timeline.append(StateChange(at=volume.deleted_at, state=volume.state, instance_id=""))
        self._after(
            volume,
            world.pacer.draw("volume_schedule_destroy"),
            lambda: self._set_state(volume, "pending_destroy"),
        )
        self._after(volume, world.pacer.exact("volume_soft_delete"), lambda: self._purge(volume))
        return volume

    def snapshot(self, app: str, volume_id: str) -> VolumeSnapshot:
        volume = self.get(app, volume_id)
        snapshot = VolumeSnapshot(
            id=self.world.ids.snapshot_id(),
            size=volume.size_gb * 1024**3,
            digest=self.world.ids.digest(),
            created_at=self.world.now(),
            retention_days=volume.snapshot_retention,
            volume_size=volume.size_gb * 1024**3,
        )
        volume.snapshots.append(snapshot)
        return snapshot

    # -- claims: which machine holds the volume --------------------------------------------------

    def check_mountable(self, volume: Volume, machine_region: str, machine_id: str | None) -> None:
        """The rules a machine create/update must pass to mount `volume` (§6) [O]."""
        if volume.soft_deleted:
            raise errors.failed_precondition(f"volume {volume.id} is {volume.state}")
        if volume.region != machine_region:
            raise errors.bad_request(
                f'Mounts source volume "{volume.id}" is in the wrong region '
                f'("{volume.region}" != "{machine_region}")'
            )
        if volume.claimed_by is not None and volume.claimed_by != machine_id:
            raise errors.failed_precondition(f"volume already claimed by machine {volume.claimed_by}")

    def claim(self, volume: Volume, machine_id: str, alloc_id: str) -> None:
        volume.claimed_by = machine_id

        # GET shows the attachment a little later: `attached_machine_id` is asynchronous [O].
        def show() -> None:
            if volume.claimed_by == machine_id:
                volume.attached_machine_id = machine_id
                volume.attached_alloc_id = alloc_id

        self._after(volume, self.world.pacer.exact("volume_attach"), show)

    def release_later(self, volume: Volume, machine_id: str) -> None:
        """Fly releases a volume in the background after its machine goes [O]."""

        def release() -> None:
            if volume.claimed_by == machine_id:
                volume.claimed_by = None
                volume.attached_machine_id = None
                volume.attached_alloc_id = None

        self._after(volume, self.world.pacer.exact("volume_detach"), release)

    # -- internals -----------------------------------------------------------------------------

    def _set_state(self, volume: Volume, state: str) -> None:
        if not volume.soft_deleted or state in ("pending_destroy",):
            volume.state = state
            volume.timeline.append(StateChange(at=self.world.now(), state=state, instance_id=""))

    def _after(self, volume: Volume, delay: float, action: Any) -> None:
        volume.pending.append(self.world.clock.call_later(delay, action))
        if len(volume.pending) > 16:
            del volume.pending[:-16]

    def _purge(self, volume: Volume) -> None:
        self.world.volumes.pop(volume.id, None)
