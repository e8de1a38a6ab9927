"""Wire models of the Fly Machines API (field names exactly as Fly's OpenAPI spec, copied in
`tests/contract/flysim/fly-machines-openapi.yaml`, and fly-go spell them; "§N" is a section of
`docs/reference/fly-machines-api.md`).

Two rules shape every model here:

* **Unknown fields survive a round trip.** Fly's update replaces the *whole* config, so a client
  that drops a field it does not know (a newer `containers`, `rootfs`, `dns` block) would silently
  remove it from the machine. Every model keeps extras (`extra="allow"`) and `to_wire()` emits
  them back.
* **Only what was present is sent back.** `to_wire()` dumps with `exclude_unset`, so a config
  read from Fly is echoed as Fly sent it (explicit nulls included), and a config built in code
  carries only the fields the code set. Mutate with `model_copy(update=...)` or by assigning
  attributes (both mark the field as set); in-place mutation of a nested dict/list the model did
  not have is invisible to `exclude_unset`, hence collections default to None, not empty.

Parsing is lenient on purpose: the server is the authority, and a response the client cannot
parse because Fly added an enum value would be worse than an unvalidated string.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DESTROYED_MACHINE_STATES",
    "DESTROYED_VOLUME_STATES",
    "ExtendVolumeResult",
    "FlyModel",
    "GuestConfig",
    "Lease",
    "Machine",
    "MachineCheck",
    "MachineConfig",
    "MachineInit",
    "MachinePort",
    "MachineService",
    "Mount",
    "RestartPolicy",
    "StartResult",
    "StopConfig",
    "Volume",
    "WaitResult",
]

# Gone, or on the way there: treat as absent (§8 item 11).
DESTROYED_MACHINE_STATES: Final = frozenset({"destroying", "destroyed"})
# Soft-deleted volumes stay listed for a while; fly-go filters them out (§2 Volumes).
DESTROYED_VOLUME_STATES: Final = frozenset(
    {"scheduling_destroy", "pending_destroy", "waiting_for_detach", "fork_cleanup", "destroying", "destroyed"}
)


class FlyModel(BaseModel):
    """Base of every Fly wire model: keeps unknown fields, emits only what was set."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict to send: set fields and unknown extras, nothing invented."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class GuestConfig(FlyModel):
    cpu_kind: str | None = None
    cpus: int | None = None
    memory_mb: int | None = None
    gpu_kind: str | None = None
    gpus: int | None = None
    host_dedication_id: str | None = None
    kernel_args: list[str] | None = None


class Mount(FlyModel):
    volume: str | None = None
    path: str | None = None
    name: str | None = None
    size_gb: int | None = None
    encrypted: bool | None = None
    extend_threshold_percent: int | None = None
    add_size_gb: int | None = None
    size_gb_limit: int | None = None


class MachinePort(FlyModel):
    port: int | None = None
    start_port: int | None = None
    end_port: int | None = None
    handlers: list[str] | None = None
    force_https: bool | None = None


class MachineService(FlyModel):
    protocol: str | None = None
    internal_port: int | None = None
    ports: list[MachinePort] | None = None
    # bool only on the wire for autostart; autostop takes false|true|"off"|"stop"|"suspend" (§3).
    autostart: bool | None = None
    autostop: bool | str | None = None
    min_machines_running: int | None = None
    concurrency: dict[str, Any] | None = None
    checks: list[dict[str, Any]] | None = None


class MachineCheck(FlyModel):
    type: str | None = None
    port: int | None = None
    interval: str | int | None = None
    timeout: str | int | None = None
    grace_period: str | int | None = None
    method: str | None = None
    path: str | None = None
    protocol: str | None = None


class RestartPolicy(FlyModel):
    policy: str | None = None
    max_retries: int | None = None


class StopConfig(FlyModel):
    signal: str | None = None
    timeout: str | int | None = None


class MachineInit(FlyModel):
    exec: list[str] | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    tty: bool | None = None
    swap_size_mb: int | None = None
    kernel_args: list[str] | None = None


class MachineConfig(FlyModel):
    """`api.MachineConfig`. `image` is required by Fly on create; it is optional here so that an
    `incomplete_config` from an unreachable host still parses."""

    image: str | None = None
    # Env carries secretEnv values: kept out of repr() so a logged Machine never shows them.
    env: dict[str, str] | None = Field(default=None, repr=False)
    guest: GuestConfig | None = None
    size: str | None = None
    metadata: dict[str, str] | None = None
    mounts: list[Mount] | None = None
    services: list[MachineService] | None = None
    checks: dict[str, MachineCheck] | None = None
    restart: RestartPolicy | None = None
    init: MachineInit | None = None
    stop_config: StopConfig | None = None
    auto_destroy: bool | None = None
    schedule: str | None = None
    files: list[dict[str, Any]] | None = Field(default=None, repr=False)  # raw_value may be a secret
    processes: list[dict[str, Any]] | None = None
    statics: list[dict[str, Any]] | None = None
    dns: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    disable_machine_autostart: bool | None = None


class Machine(FlyModel):
    id: str
    name: str | None = None
    state: str | None = None
    region: str | None = None
    instance_id: str | None = None
    version: str | None = None
    private_ip: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    config: MachineConfig | None = None
    incomplete_config: MachineConfig | None = None
    image_ref: dict[str, Any] | None = None
    events: list[dict[str, Any]] | None = None
    checks: list[dict[str, Any]] | None = None
    nonce: str | None = None
    host_status: str | None = None
    cordoned: bool | None = None

    @property
    def current_version(self) -> str | None:
        """The version to wait on: `version` (newer API) or `instance_id` (older, same value)."""
        return self.version or self.instance_id

    @property
    def metadata(self) -> dict[str, str]:
        source = self.config or self.incomplete_config
        return dict(source.metadata or {}) if source is not None else {}

    @property
    def is_gone(self) -> bool:
        """Destroyed or being destroyed: the operator treats both as absent."""
        return self.state in DESTROYED_MACHINE_STATES


class Volume(FlyModel):
    id: str
    name: str | None = None
    state: str | None = None
    size_gb: int | None = None
    region: str | None = None
    zone: str | None = None
    encrypted: bool | None = None
    attached_machine_id: str | None = None
    attached_alloc_id: str | None = None
    created_at: str | None = None
    fstype: str | None = None
    snapshot_retention: int | None = None
    auto_backup_enabled: bool | None = None
    host_status: str | None = None

    @property
    def is_gone(self) -> bool:
        """Soft-deleted (still listed by Fly for a while) or destroyed."""
        return self.state in DESTROYED_VOLUME_STATES


class Lease(FlyModel):
    """A machine lease. Fly answers with an envelope (`{"status","data":{...}}`, what fly-go
    reads) while the spec describes a flat object; `from_response` accepts both (§3)."""

    nonce: str
    expires_at: int | float | None = None
    owner: str | None = None
    description: str | None = None
    version: str | None = None

    @classmethod
    def from_response(cls, body: Any) -> Lease:
        data = body.get("data") if isinstance(body, dict) and isinstance(body.get("data"), dict) else body
        return cls.model_validate(data)


class WaitResult(FlyModel):
    ok: bool | None = None
    state: str | None = None
    version: str | None = None
    event_id: str | None = None


class StartResult(FlyModel):
    previous_state: str | None = None
    migrated: bool | None = None
    new_host: str | None = None


class ExtendVolumeResult(FlyModel):
    volume: Volume
    needs_restart: bool = Field(default=False)
