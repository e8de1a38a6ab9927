"""The simulated world's objects: apps, hosts, machines, volumes, leases and events.

Field names follow Fly's wire names where an object is rendered (see `render.py`); the rest is
simulator bookkeeping (which host a machine holds resources on, when a claim lapses, ...).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .clock import Timer

# §4 of the reference: resting and terminal machine states [D].
RESTING_STATES = frozenset({"created", "started", "stopped", "suspended", "failed"})
TERMINAL_STATES = frozenset({"destroyed", "replaced", "migrated"})
# What `wait?state=settled` accepts: anything that is not in motion [C].
SETTLED_STATES = RESTING_STATES | TERMINAL_STATES
WAITABLE_STATES = frozenset({"started", "stopped", "suspended", "destroyed", "failed", "settled"})

# Volume states that mean "soft-deleted but still listed" [C].
VOLUME_DELETED_STATES = frozenset(
    {"scheduling_destroy", "pending_destroy", "waiting_for_detach", "fork_cleanup", "destroying"}
)

# The 18 regions of mid-2025 [D], and the meta-regions machine create accepts [D].
REGIONS = (
    "ams", "arn", "bom", "cdg", "dfw", "ewr", "fra", "gru", "iad",
    "jnb", "lax", "lhr", "nrt", "ord", "sin", "sjc", "syd", "yyz",
)  # fmt: skip
REGION_ALIASES: dict[str, tuple[str, ...]] = {
    "us": ("iad", "ord", "dfw", "lax", "sjc", "ewr"),
    "usa": ("iad", "ord", "dfw", "lax", "sjc", "ewr"),
    "na": ("iad", "ord", "dfw", "lax", "sjc", "ewr", "yyz"),
    "sa": ("gru",),
    "eu": ("ams", "arn", "cdg", "fra", "lhr"),
    "apac": ("bom", "nrt", "sin", "syd"),
    "any": REGIONS,
}


@dataclass
class AppSecret:
    name: str
    digest: str
    created_at: float
    value: str


@dataclass
class App:
    id: str
    name: str
    org_slug: str
    created_at: float
    network: str = "default"
    status: str = "deployed"
    secrets: dict[str, AppSecret] = field(default_factory=dict)
    # Bumped by every secrets change; machines may ask for at least a version [C][O].
    secrets_version: int = 0


@dataclass
class Host:
    """One physical server: a region, a zone label, and cpu/memory that machines reserve."""

    id: str
    region: str
    zone: str
    cpus: int
    memory_mb: int
    used_cpus: int = 0
    used_memory_mb: int = 0
    status: str = "ok"  # ok | unreachable

    def fits(self, cpus: int, memory_mb: int) -> bool:
        return self.used_cpus + cpus <= self.cpus and self.used_memory_mb + memory_mb <= self.memory_mb


@dataclass
class RegionCapacity:
    hosts: list[Host]
    max_machines: int | None = None
    max_volumes: int | None = None


@dataclass
class Lease:
    nonce: str
    owner: str
    description: str
    expires_at: float
    version: str


@dataclass
class MachineEvent:
    id: str
    type: str
    status: str
    source: str
    timestamp_ms: int
    request: dict[str, Any] = field(default_factory=dict)


@dataclass
class MachineVersion:
    version: str
    config: dict[str, Any]


@dataclass
class StateChange:
    """One entry of `/_sim/timeline`: the machine (or volume) reached `state` at `at` (epoch
    seconds); `instance_id` is empty for volumes."""

    at: float
    state: str
    instance_id: str


@dataclass
class StateWaiter:
    """A pending `wait` call: resolved with the state it saw, or the replaced version."""

    states: frozenset[str]
    version: str | None
    future: asyncio.Future[str]


@dataclass
class Machine:
    id: str
    app: str
    name: str
    region: str
    host: Host
    config: dict[str, Any]
    instance_id: str
    state: str
    created_at: float
    updated_at: float
    private_ip: str
    image_ref: dict[str, Any]
    # What the machine holds on its host while running (machines.host_reservation).
    reserved_cpus: int
    reserved_memory_mb: int
    volume_id: str | None = None
    lease: Lease | None = None
    cordoned: bool = False
    # The nonce of a lease taken by `lease_ttl` on the latest create/update, for its answer.
    nonce: str | None = None
    events: list[MachineEvent] = field(default_factory=list)
    versions: list[MachineVersion] = field(default_factory=list)
    timeline: list[StateChange] = field(default_factory=list)
    waiters: list[StateWaiter] = field(default_factory=list)
    # The scheduled next step of the machine's current transition chain, if any, and the
    # state that chain ends in (a stop just accepted is "heading" to stopped).
    pending: Timer | None = None
    heading: str | None = None
    # The step a stuck machine will continue with once released by the control API.
    parked: list[tuple[float, str, str | None, str]] | None = None
    # Start is refused ("still being prepared", "still active") until these times.
    start_ready_at: float = 0.0
    still_active_until: float = 0.0
    # True while the machine holds cpu/memory on its host.
    reserved: bool = False
    on_failure_restarts: int = 0
    destroyed_at: float | None = None
    # Set while a destroy waits for an unreachable host to come back.
    destroy_blocked: bool = False

    @property
    def alive(self) -> bool:
        return self.state not in ("destroyed", "destroying")

    def knows_version(self, version: str) -> bool:
        return any(entry.version == version for entry in self.versions)


@dataclass
class VolumeSnapshot:
    id: str
    size: int
    digest: str
    created_at: float
    retention_days: int
    volume_size: int
    status: str = "created"


@dataclass
class Volume:
    id: str
    app: str
    name: str
    region: str
    host: Host
    size_gb: int
    encrypted: bool
    state: str
    created_at: float
    fstype: str
    snapshot_retention: int
    auto_backup_enabled: bool
    require_unique_zone: bool
    # The machine that holds the volume right now (changes synchronously, checked on create).
    claimed_by: str | None = None
    # What GET shows: follows `claimed_by` after a delay, as Fly's does [O].
    attached_machine_id: str | None = None
    attached_alloc_id: str | None = None
    # Timers on the volume (attach display, detach after a destroy, state steps).
    pending: list[Timer] = field(default_factory=list)
    deleted_at: float | None = None
    snapshots: list[VolumeSnapshot] = field(default_factory=list)
    # Its states with times, for `/_sim/timeline?volume=` (the Fly-intrinsic time of benchmarks).
    timeline: list[StateChange] = field(default_factory=list)

    @property
    def soft_deleted(self) -> bool:
        return self.state in VOLUME_DELETED_STATES
