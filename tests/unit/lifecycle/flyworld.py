"""An in-memory Fly and an in-memory apiserver, driven the way the operator drives the decisions.

The model-based property suite (test_model_based.py) runs the *real* `decide`/`settle` against
this world. Three parts, each kept in one place so that a change in the operator is mirrored once:

- `FlyWorld`: machines and volumes as Fly keeps them (versions that change on every update,
  mounts, attachments, boots that take time, soft-deleted objects), the clock, and the faults
  injected into the next call of a kind. Every mutation the operator makes is recorded.
- `observe()` and `execute()`: what `edge/gateway.py` `observe`/`execute` do today, call by
  call (GET by id, listing by UID tag / by volume name, the volume-size memory, the
  "born watched" short cut, the client's own retries), over the world instead of HTTP.
  **When `Observation` gains fields, adapt `observe()` here: it is the only observer.**
- `Operator`: `kube/reconciler.py`'s loop: a run of passes over one read of the object (read →
  observe → decide → execute ≤ 1 action → settle → one status write conditional on the
  resourceVersion; 409 → re-read), with its in-memory failure counter and gateway memory,
  which an operator crash wipes.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from claw_operator.api import (
    ClawInstanceSpec,
    ClawInstanceStatus,
    Phase,
    find_condition,
)
from claw_operator.edge.gateway import volume_needs_a_look
from claw_operator.kube.reconciler import MAX_CONFLICT_RETRIES, MAX_PASSES, carry_over
from claw_operator.lifecycle import decide, settle, volume_name
from claw_operator.lifecycle.desired import CHECK_NAME, DesiredMachine, desired_machine
from claw_operator.lifecycle.destroy import destroy_lookups, still_bound_after_detach
from claw_operator.lifecycle.model import (
    Action,
    ActionResult,
    AwaitState,
    CheckView,
    CreateMachine,
    CreateVolume,
    Decision,
    DeleteStrandedVolume,
    DeleteVolume,
    DestroyMachine,
    DestroyStrandedMachine,
    EventRecord,
    ExtendVolume,
    FailureKind,
    FlyFailure,
    GuestView,
    Instance,
    Lookup,
    MachineLookup,
    MachineView,
    Mount,
    Observation,
    ReplaceVolume,
    RestartMachine,
    StartMachine,
    StopMachine,
    Timings,
    VolumeLookup,
    VolumeView,
)
from claw_operator.lifecycle.recovery import GONE_STATES, VOLUME_GONE_STATES

T_START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TIMINGS = Timings()
APP = "claw-app"
UID = "5f3a9c1e-0b7d-4e2a-9c11-8d6f2b4a7e90"
META_UID = "claw_instance_uid"
REST_STATES = frozenset({"stopped", "created", "failed", "suspended"})
# How long Fly's listings may miss an object created moments ago: the operator's own assumption
# (Timings.listing_settle). A longer window in reality would bring duplicate volumes back.
STALE_WINDOW = Timings().listing_settle

# ---------------------------------------------------------------------------- failures


def fly_failure(kind: FailureKind, status: int | None, message: str) -> FlyFailure:
    retryable = kind in {
        FailureKind.CAPACITY,
        FailureKind.RATE_LIMITED,
        FailureKind.TIMEOUT,
        FailureKind.UNAVAILABLE,
        FailureKind.PRECONDITION,
    }
    return FlyFailure(kind=kind, retryable=retryable, message=message, status=status)


UNAVAILABLE = fly_failure(FailureKind.UNAVAILABLE, 503, "fly: 503 service unavailable")
RATE_LIMITED = fly_failure(FailureKind.RATE_LIMITED, 429, "fly: 429 too many requests")
TIMEOUT = fly_failure(FailureKind.TIMEOUT, None, "fly: no answer (timeout)")
CAPACITY = fly_failure(FailureKind.CAPACITY, 412, "fly: insufficient capacity")
VOLUME_HOST_FULL = fly_failure(
    FailureKind.CAPACITY, 412, "fly: insufficient resources to create new machine with existing volume"
)
HOST_FULL = fly_failure(
    FailureKind.CAPACITY, 409, "fly: could not reserve resource for machine: insufficient memory available"
)
NOT_FOUND = fly_failure(FailureKind.NOT_FOUND, 404, "fly: 404 not found")


class FlyError(Exception):
    def __init__(self, failure: FlyFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Fault:
    """What can go wrong with the next call of a kind (injected by the rules)."""

    ERROR = "error"  # 5xx after the client's retries; nothing happened
    RATE = "rate"  # 429; nothing happened
    TIMEOUT = "timeout"  # no answer; nothing happened
    SILENT = "silent"  # it happened, but the answer was lost (SAFE calls: the client retries)
    CAPACITY = "capacity"  # 412 insufficient capacity (creates, starts)
    MIDWAY = "midway"  # a composite action: its first mutation happened, the next one failed
    NOT_FOUND = "notfound"  # a GET answers 404 once (Fly settling)
    STALE = "stale"  # a listing misses what was created or changed in the last STALE_WINDOW


# Which faults make sense for which call.
GET_CALLS = ("get_machine", "get_volume")
LIST_CALLS = ("list_machines", "list_volumes")
FAULTS_BY_CALL: dict[str, tuple[str, ...]] = {
    "get_machine": (Fault.ERROR, Fault.RATE, Fault.TIMEOUT, Fault.NOT_FOUND),
    "get_volume": (Fault.ERROR, Fault.RATE, Fault.TIMEOUT, Fault.NOT_FOUND),
    "list_machines": (Fault.ERROR, Fault.STALE),
    "list_volumes": (Fault.ERROR, Fault.STALE),
    "CreateVolume": (Fault.ERROR, Fault.TIMEOUT, Fault.SILENT, Fault.CAPACITY),
    "ExtendVolume": (Fault.ERROR, Fault.SILENT),
    "CreateMachine": (Fault.ERROR, Fault.TIMEOUT, Fault.SILENT, Fault.CAPACITY),
    "StartMachine": (Fault.ERROR, Fault.SILENT, Fault.CAPACITY, Fault.MIDWAY),
    "StopMachine": (Fault.ERROR, Fault.SILENT),
    "RestartMachine": (Fault.ERROR, Fault.SILENT, Fault.MIDWAY),
    "DestroyMachine": (Fault.ERROR, Fault.SILENT),
    "DeleteVolume": (Fault.ERROR, Fault.SILENT),
    "DestroyStrandedMachine": (Fault.ERROR, Fault.SILENT),
    "ReplaceVolume": (Fault.ERROR, Fault.TIMEOUT, Fault.SILENT, Fault.CAPACITY),
    "DeleteStrandedVolume": (Fault.ERROR, Fault.SILENT),
}
FAULT_CALLS = tuple(sorted(FAULTS_BY_CALL))


# ---------------------------------------------------------------------------- Fly's objects


@dataclass
class FlyMachine:
    id: str
    uid: str
    region: str
    state: str
    version: str
    image: str
    guest: GuestView
    env_digest: str | None
    mounts: tuple[Mount, ...]
    changed_at: datetime
    created_at: datetime
    boot_at: datetime | None = None  # a `starting` machine reaches `boot_outcome` then
    boot_outcome: str = "started"
    last_boot_at: datetime | None = None  # when it was last (re)launched
    last_boot_seq: int = 0  # FlyWorld.boots when it was last (re)launched
    # The operator's check in its config (lifecycle.desired.describe_check; "none": no check).
    health_check: str = "none"
    # When the check starts passing on this launch (None: never); what Fly reports now.
    healthy_at: datetime | None = None
    check_status: str = "critical"
    # When its process last exited on its own (Fly's `exit` event), not by a requested stop.
    exited_at: datetime | None = None

    def view(self) -> MachineView:
        return MachineView(
            id=self.id,
            state=self.state,
            region=self.region,
            instance_id=self.version,
            config=DesiredMachine(
                image=self.image,
                guest=self.guest,
                env_digest=self.env_digest,
                mounts=self.mounts,
                health_check=self.health_check,
            ),
            metadata={META_UID: self.uid},
            updated_at=self.changed_at,
            exited_at=self.exited_at,
            checks=self.checks(),
        )

    def checks(self) -> tuple[CheckView, ...] | None:
        """Fly reports the check's results in the machine GET while it runs."""
        if self.health_check == "none" or self.state != "started":
            return None
        output = "200 OK" if self.check_status == "passing" else "connect: connection refused"
        return (CheckView(name=CHECK_NAME, status=self.check_status, output=output),)

    @property
    def live(self) -> bool:
        return self.state not in ("destroyed", "destroying")


@dataclass
class FlyVolume:
    id: str
    name: str
    region: str
    size_gb: int
    created_at: datetime
    state: str = "created"
    attached_machine_id: str | None = None
    # The physical host it lives on (a machine on it must fit there: FlyWorld.full_hosts).
    host: str = ""
    # The volume it was forked from (`source_volume_id`), if any.
    forked_from: str | None = None

    def view(self) -> VolumeView:
        return VolumeView(
            id=self.id,
            region=self.region,
            size_gb=self.size_gb,
            state=self.state,
            attached_machine_id=self.attached_machine_id,
        )

    @property
    def live(self) -> bool:
        return self.state != "destroyed"


@dataclass(frozen=True)
class Mutation:
    """One change the operator made on Fly (what the invariants about actions look at)."""

    kind: str  # create_volume, extend_volume, create_machine, update, start, stop, destroy, delete
    target: str
    at: datetime
    generation: int
    detail: str = ""


@dataclass
class FlyWorld:
    now: datetime = T_START
    machines: dict[str, FlyMachine] = field(default_factory=dict)
    volumes: dict[str, FlyVolume] = field(default_factory=dict)
    faults: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    # How the next launches end: ("started", seconds) / ("failed", seconds) / ("stuck", None).
    boot: tuple[str, float | None] = ("started", 5.0)
    # How the health check of a launched machine goes: passing that many seconds after the
    # launch, or never (None).
    health_after: float | None = 0.0
    mutations: list[Mutation] = field(default_factory=list)
    # (generation, machine id) of each mount the operator's update moved onto the wanted volume.
    repairs: list[tuple[int, str]] = field(default_factory=list)
    # Faults that actually fired, by call (the long profile's figures).
    fired: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    boots: int = 0  # launches so far (orders boots against requests and guards)
    # Hosts other tenants filled: a machine create or start on a volume there fails (capacity).
    full_hosts: set[str] = field(default_factory=set)
    _ids: int = 0
    _versions: int = 0
    # The generation of the instance the action being executed was decided for.
    acting_generation: int = 0

    # ------------------------------------------------------------------ bookkeeping

    def new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids:03d}"

    def new_version(self) -> str:
        self._versions += 1
        return f"v{self._versions:04d}"

    def record(self, kind: str, target: str, detail: str = "") -> None:
        self.mutations.append(Mutation(kind, target, self.now, self.acting_generation, detail))

    def take_fault(self, call: str) -> str | None:
        queue = self.faults.get(call)
        if not queue:
            return None
        fault = queue.popleft()
        self.fired[f"{call}:{fault}"] += 1
        return fault

    def advance(self, delta: timedelta) -> None:
        self.now += delta
        self.tick()

    def tick(self) -> None:
        """Launches whose time has come end as they were going to."""
        for m in self.machines.values():
            if m.state == "starting" and m.boot_at is not None and m.boot_at <= self.now:
                m.state = m.boot_outcome
                m.boot_at = None
                m.changed_at = self.now
            if m.state == "started" and m.healthy_at is not None and m.healthy_at <= self.now:
                m.check_status = "passing"

    def launch(self, m: FlyMachine) -> None:
        outcome, seconds = self.boot
        m.state = "starting"
        m.last_boot_at = self.now
        self.boots += 1
        m.last_boot_seq = self.boots
        m.changed_at = self.now
        m.boot_outcome = outcome if outcome != "stuck" else "started"
        m.boot_at = None if seconds is None else self.now + timedelta(seconds=seconds)
        m.check_status = "critical"
        after = self.health_after
        m.healthy_at = None if after is None else self.now + timedelta(seconds=after)
        self.tick()

    def set_health(self, after: float | None) -> None:
        """From now on the checks pass `after` seconds from now (None: they fail), also on the
        machines running now."""
        self.health_after = after
        for m in self.machines.values():
            m.check_status = "critical"
            m.healthy_at = None if after is None else self.now + timedelta(seconds=after)
        self.tick()

    def new_volume(self, name: str, region: str, size_gb: int, forked_from: str | None = None) -> FlyVolume:
        """A volume on a host of its own (Fly places a volume named like a live one in another
        zone, `require_unique_zone`)."""
        vol = FlyVolume(self.new_id("vol"), name, region, size_gb, self.now, forked_from=forked_from)
        vol.host = f"host-{vol.id}"
        self.volumes[vol.id] = vol
        return vol

    def host_full_for(self, m: FlyMachine | None = None, volume_id: str | None = None) -> bool:
        """The host of the volume (the machine's mounted one) has no room for a machine."""
        ids = [volume_id] if volume_id is not None else [mt.volume for mt in (m.mounts if m else ())]
        return any((v := self.volumes.get(i)) is not None and v.host in self.full_hosts for i in ids)

    def tagged(self, uid: str) -> list[FlyMachine]:
        return [m for m in self.machines.values() if m.uid == uid and m.live]

    def named(self, name: str) -> list[FlyVolume]:
        return [v for v in self.volumes.values() if v.name == name and v.live]

    def attach(self, m: FlyMachine) -> None:
        for v in self.volumes.values():
            if v.attached_machine_id == m.id and all(mt.volume != v.id for mt in m.mounts):
                v.attached_machine_id = None
        for mt in m.mounts:
            vol = self.volumes.get(mt.volume)
            if vol is not None and vol.live:
                vol.attached_machine_id = m.id

    # ------------------------------------------------------------------ Fly's API, call by call

    def _read_fault(self, call: str, grace: bool = False) -> None:
        while True:
            fault = self.take_fault(call)
            if fault is None:
                return
            if fault == Fault.NOT_FOUND:
                if grace:
                    continue  # the client's not_found_grace retries it away
                raise FlyError(NOT_FOUND)
            raise FlyError(_failure_of(fault))

    def get_machine(self, machine_id: str, *, grace: bool = False) -> FlyMachine:
        self._read_fault("get_machine", grace)
        m = self.machines.get(machine_id)
        if m is None:
            raise FlyError(NOT_FOUND)
        return m

    def get_volume(self, volume_id: str) -> FlyVolume:
        self._read_fault("get_volume")
        v = self.volumes.get(volume_id)
        if v is None:
            raise FlyError(NOT_FOUND)
        return v

    def _fresh_enough(self, created: datetime, stale: bool) -> bool:
        return not stale or self.now - created >= STALE_WINDOW

    def list_machines(self, uid: str) -> list[FlyMachine]:
        fault = self.take_fault("list_machines")
        if fault == Fault.ERROR:
            raise FlyError(UNAVAILABLE)
        stale = fault == Fault.STALE
        return sorted(
            (m for m in self.tagged(uid) if self._fresh_enough(m.created_at, stale)),
            key=lambda m: (m.created_at, m.id),
        )

    def list_volumes(self, name: str) -> list[FlyVolume]:
        fault = self.take_fault("list_volumes")
        if fault == Fault.ERROR:
            raise FlyError(UNAVAILABLE)
        stale = fault == Fault.STALE
        return [v for v in self.named(name) if self._fresh_enough(v.created_at, stale)]

    def wait(self, m: FlyMachine, states: tuple[str, ...], timeout: float) -> bool:
        """Fly's /wait: True when `m` is in one of `states` within `timeout` (the clock moves)."""
        if m.state in states:
            return True
        booting = m.state == "starting" and m.boot_at is not None and m.boot_outcome in states
        if booting and m.boot_at is not None and m.boot_at - self.now <= timedelta(seconds=timeout):
            self.now = max(self.now, m.boot_at)
            self.tick()
            return True
        self.advance(timedelta(seconds=timeout))
        return m.state in states

    def update(self, m: FlyMachine, inst: Instance, volume_id: str) -> None:
        path = inst.spec.volume.mount_path
        was_correct = any(mt.volume == volume_id and mt.path == path for mt in m.mounts)
        m.version = self.new_version()
        m.image = inst.spec.image
        m.guest = desired_guest(inst.spec)
        m.env_digest = inst.env_digest
        m.health_check = desired_machine(inst, volume_id).health_check
        m.mounts = (Mount(volume_id, path),)
        m.changed_at = self.now
        self.attach(m)
        self.record("update", m.id, f"mount {volume_id}")
        if not was_correct:
            self.repairs.append((self.acting_generation, m.id))
        if m.state in ("started", "starting"):
            # Updating a running machine replaces it in place: a reboot with the new config.
            self.launch(m)
        elif m.state in REST_STATES:
            m.state = "stopped"  # Fly (since 2026) leaves a resting machine stopped

    def start(self, m: FlyMachine) -> None:
        if m.state in REST_STATES:
            self.record("start", m.id)
            self.launch(m)

    def stop(self, m: FlyMachine) -> None:
        if m.state in ("started", "starting"):
            self.record("stop", m.id)
            m.state = "stopped"
            m.boot_at = None
            m.changed_at = self.now

    def destroy(self, m: FlyMachine) -> None:
        self.record("destroy_machine", m.id)
        m.state = "destroyed"
        m.boot_at = None
        m.changed_at = self.now
        for v in self.volumes.values():
            if v.attached_machine_id == m.id:
                v.attached_machine_id = None


def _failure_of(fault: str) -> FlyFailure:
    return {
        Fault.ERROR: UNAVAILABLE,
        Fault.RATE: RATE_LIMITED,
        Fault.TIMEOUT: TIMEOUT,
        Fault.CAPACITY: CAPACITY,
        Fault.MIDWAY: UNAVAILABLE,
        Fault.SILENT: TIMEOUT,
    }[fault]


def drift_of(m: FlyMachine, inst: Instance, volume_id: str) -> bool:
    """The machine's config is not what the instance asks (edge.machineconfig.config_applied)."""
    return (
        m.image != inst.spec.image
        or m.guest != desired_guest(inst.spec)
        or m.env_digest != inst.env_digest
        or m.mounts != (Mount(volume_id, inst.spec.volume.mount_path),)
    )


def desired_guest(spec: ClawInstanceSpec) -> GuestView:
    return GuestView(cpu_kind=str(spec.guest.cpu_kind), cpus=spec.guest.cpus, memory_mb=spec.guest.memory_mb)


# ---------------------------------------------------------------------------- observe (= gateway)


@dataclass
class GatewayMemory:
    """What a FlyGateway keeps in memory (lost when the operator restarts)."""

    started_at: datetime
    sent_creates: set[str] = field(default_factory=set)
    volume_sizes: dict[str, int] = field(default_factory=dict)
    # UID -> when this process last sent a volume (machine) create (`_unsettled`).
    volume_creates_sent: dict[str, datetime] = field(default_factory=dict)
    machine_creates_sent: dict[str, datetime] = field(default_factory=dict)
    # UID -> the machines (volumes) this process created and has not removed (`_made`), filled
    # in by a conclusive listing for the UIDs in `listed`; `unsure`: a create failed or lost its
    # answer (`_known_objects`).
    made_machines: dict[str, dict[str, MachineView]] = field(default_factory=dict)
    made_volumes: dict[str, dict[str, VolumeView]] = field(default_factory=dict)
    unsure: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)

    def removed(self, uid: str, *, machine_id: str | None = None, volume_id: str | None = None) -> None:
        if machine_id is not None:
            self.made_machines.get(uid, {}).pop(machine_id, None)
        if volume_id is not None:
            self.made_volumes.get(uid, {}).pop(volume_id, None)


BORN_WATCHED_MARGIN = timedelta(seconds=10)
# How long an operator restart takes (the gateway's "older than this process" needs a second).
OPERATOR_RESTART = timedelta(seconds=5)


def _mounts_another_volume(inst: Instance, machine: MachineLookup) -> bool:
    seen = machine.machine
    if machine.outcome != Lookup.FOUND or seen is None:
        return False
    path = inst.spec.volume.mount_path
    mounted = next((m.volume for m in seen.mounts if m.path == path and m.volume), None)
    return mounted is not None and mounted != inst.status.volume_id


def _knows_nothing_exists(inst: Instance, mem: GatewayMemory) -> bool:
    created = inst.created_at
    return (
        not inst.deleting
        and inst.status.machine_id is None
        and inst.status.volume_id is None
        and created is not None
        and created > mem.started_at + BORN_WATCHED_MARGIN
        and inst.uid not in mem.sent_creates
    )


def _unsettled(
    inst: Instance, kind: str, sent_at: dict[str, datetime], mem: GatewayMemory, now: datetime
) -> FlyFailure | None:
    """A listing showing none of the instance's machines (volumes) that cannot prove "none" yet:
    a create whose answer was lost may have been sent less than `listing_settle` ago, by this
    process or (for an instance older than it) by an earlier one (gateway `_unsettled`)."""
    settle_s = TIMINGS.listing_settle.total_seconds()
    left = 0.0
    sent = sent_at.get(inst.uid)
    if sent is not None:
        left = settle_s - (now - sent).total_seconds()
    if inst.created_at is not None and inst.created_at + timedelta(seconds=1) < mem.started_at:
        left = max(left, settle_s - (now - mem.started_at).total_seconds())
    if left <= 0:
        return None
    return FlyFailure(
        kind=FailureKind.UNAVAILABLE,
        retryable=True,
        message=f"no {kind} of {inst.uid} listed yet, {left:.1f}s before a listing can prove none",
        retry_after=left,
    )


def _known_objects(
    inst: Instance, mem: GatewayMemory
) -> tuple[tuple[MachineView, ...], tuple[VolumeView, ...]] | None:
    """Every object of the instance, known without asking (gateway `_known_objects`)."""
    created = inst.created_at
    born_watched = (
        created is not None and created > mem.started_at + BORN_WATCHED_MARGIN and inst.uid not in mem.unsure
    )
    if not born_watched and inst.uid not in mem.listed:
        return None
    machines = mem.made_machines.get(inst.uid, {})
    volumes = mem.made_volumes.get(inst.uid, {})
    return tuple(machines.values()), tuple(volumes.values())


def _list_tagged(
    world: FlyWorld, inst: Instance, mem: GatewayMemory
) -> tuple[tuple[MachineView, ...] | None, FlyFailure | None]:
    try:
        tagged = tuple(m.view() for m in world.list_machines(inst.uid))
    except FlyError as exc:
        return None, exc.failure
    if any(m.state not in GONE_STATES for m in tagged):
        return tagged, None
    unsettled = _unsettled(inst, "machine", mem.machine_creates_sent, mem, world.now)
    return (None, unsettled) if unsettled is not None else (tagged, None)


def _list_named(
    world: FlyWorld, inst: Instance, mem: GatewayMemory
) -> tuple[tuple[VolumeView, ...] | None, FlyFailure | None]:
    status = inst.status
    try:
        named = tuple(v.view() for v in world.list_volumes(volume_name(inst.uid)))
    except FlyError as exc:
        return None, exc.failure
    recovering = {status.stranded_volume_id, *(status.superseded_volume_ids or ())}
    if any(v.state not in VOLUME_GONE_STATES and v.id not in recovering for v in named):
        return named, None
    unsettled = _unsettled(inst, "volume", mem.volume_creates_sent, mem, world.now)
    return (None, unsettled) if unsettled is not None else (named, None)


def _look_volume(world: FlyWorld, volume_id: str, mem: GatewayMemory) -> VolumeLookup:
    try:
        got = world.get_volume(volume_id)
    except FlyError as exc:
        outcome = Lookup.GONE if exc.failure.kind == FailureKind.NOT_FOUND else Lookup.ERROR
        return VolumeLookup(outcome, failure=None if outcome == Lookup.GONE else exc.failure)
    if not got.live:
        return VolumeLookup(Lookup.GONE)
    mem.volume_sizes[got.id] = got.size_gb
    return VolumeLookup(Lookup.FOUND, got.view())


def _observe_destroy(world: FlyWorld, inst: Instance, mem: GatewayMemory) -> Observation:
    """`FlyGateway._observe_destroy`, over the world (keep in step with edge/gateway.py)."""
    needs = destroy_lookups(inst)
    status, uid = inst.status, inst.uid
    known = _known_objects(inst, mem)
    tagged: tuple[MachineView, ...] | None = None
    tagged_failure: FlyFailure | None = None
    named: tuple[VolumeView, ...] | None = None
    named_failure: FlyFailure | None = None
    listed = False
    if (
        known is None
        and uid not in mem.unsure
        and _unsettled(inst, "machine", mem.machine_creates_sent, mem, world.now) is None
        and _unsettled(inst, "volume", mem.volume_creates_sent, mem, world.now) is None
    ):
        tagged, tagged_failure = _list_tagged(world, inst, mem)
        named, named_failure = _list_named(world, inst, mem)
        listed = True
        if tagged is not None and named is not None:
            mem.made_machines.setdefault(uid, {}).update(
                (m.id, m) for m in tagged if m.state not in GONE_STATES
            )
            mem.made_volumes.setdefault(uid, {}).update(
                (v.id, v) for v in named if v.state not in VOLUME_GONE_STATES
            )
            mem.listed.add(uid)
            known = _known_objects(inst, mem)
    if known is not None:
        machines, volumes = known
        volume = VolumeLookup()
        if needs.volume_get and status.volume_id and still_bound_after_detach(inst):
            volume = _without_stale_attachment(world, _look_volume(world, status.volume_id, mem))
        if (
            not machines
            and not volumes
            and status.phase == Phase.DESTROYING
            and status.pending_destroy_machine_id is None
            and status.pending_destroy_volume_id is None
        ):
            mem.listed.discard(uid)
        return Observation(volume=volume, tagged_machines=machines, named_volumes=volumes)
    volume = VolumeLookup()
    if needs.volume_get and status.volume_id:
        volume = _without_stale_attachment(world, _look_volume(world, status.volume_id, mem))
    if not listed:
        if needs.tagged_machines:
            tagged, tagged_failure = _list_tagged(world, inst, mem)
        if needs.named_volumes:
            named, named_failure = _list_named(world, inst, mem)
    return Observation(
        volume=volume,
        tagged_machines=tagged,
        tagged_failure=tagged_failure,
        named_volumes=named,
        named_failure=named_failure,
    )


def observe(world: FlyWorld, inst: Instance, mem: GatewayMemory) -> Observation:
    """`FlyGateway.observe`, over the world (keep in step with edge/gateway.py)."""
    if inst.deleting:
        return _observe_destroy(world, inst, mem)
    status = inst.status
    machine = MachineLookup()
    if status.machine_id:
        try:
            found = world.get_machine(status.machine_id)
            machine = (
                MachineLookup(Lookup.GONE) if not found.live else MachineLookup(Lookup.FOUND, found.view())
            )
        except FlyError as exc:
            outcome = Lookup.GONE if exc.failure.kind == FailureKind.NOT_FOUND else Lookup.ERROR
            machine = MachineLookup(outcome, failure=None if outcome == Lookup.GONE else exc.failure)
    volume = VolumeLookup()
    if status.volume_id and volume_needs_a_look(inst, machine, mem.volume_sizes.get(status.volume_id)):
        volume = _look_volume(world, status.volume_id, mem)
    if _knows_nothing_exists(inst, mem):
        return Observation(machine=machine, volume=volume, tagged_machines=(), named_volumes=())
    tagged: tuple[MachineView, ...] | None = None
    tagged_failure: FlyFailure | None = None
    if not status.machine_id or machine.outcome == Lookup.GONE:
        tagged, tagged_failure = _list_tagged(world, inst, mem)
    named: tuple[VolumeView, ...] | None = None
    named_failure: FlyFailure | None = None
    if (
        not status.volume_id
        or volume.outcome == Lookup.GONE
        or _mounts_another_volume(inst, machine)
        or status.stranded_volume_id is not None
    ):
        named, named_failure = _list_named(world, inst, mem)
    return Observation(
        machine=machine,
        volume=volume,
        tagged_machines=tagged,
        tagged_failure=tagged_failure,
        named_volumes=named,
        named_failure=named_failure,
    )


def _without_stale_attachment(world: FlyWorld, volume: VolumeLookup) -> VolumeLookup:
    seen = volume.volume
    if volume.outcome != Lookup.FOUND or seen is None or not seen.attached_machine_id:
        return volume
    attached = seen.attached_machine_id
    try:
        gone = not world.get_machine(attached).live
    except FlyError as exc:
        if exc.failure.kind != FailureKind.NOT_FOUND:
            return volume
        gone = True
    return VolumeLookup(Lookup.FOUND, replace(seen, attached_machine_id=None)) if gone else volume


# ---------------------------------------------------------------------------- execute (= gateway)


@dataclass(frozen=True)
class Executed:
    result: ActionResult
    fault: str | None  # the fault injected into this action, if any


def execute(world: FlyWorld, action: Action, inst: Instance, mem: GatewayMemory) -> Executed:
    """`FlyGateway.execute` and the client calls it makes, over the world."""
    fault = world.take_fault(type(action).__name__)
    world.acting_generation = inst.generation
    try:
        executed = Executed(_execute(world, action, inst, mem, fault), fault)
    except FlyError as exc:
        if isinstance(action, CreateVolume | CreateMachine | ReplaceVolume):
            mem.unsure.add(inst.uid)  # gateway: it may exist, from now on only listings tell
            mem.listed.discard(inst.uid)
        elif exc.failure.kind == FailureKind.NOT_FOUND:
            if isinstance(action, DestroyMachine | DestroyStrandedMachine):
                mem.removed(inst.uid, machine_id=action.machine_id)
            elif isinstance(action, DeleteVolume | DeleteStrandedVolume):
                mem.removed(inst.uid, volume_id=action.volume_id)
        if isinstance(action, ExtendVolume):
            # gateway: the size after a refused extend tells whether it happened.
            volume: VolumeView | None = None
            with contextlib.suppress(FlyError):
                volume = world.get_volume(action.volume_id).view()
                mem.volume_sizes[volume.id] = volume.size_gb
            return Executed(ActionResult(failure=exc.failure, volume=volume), fault)
        machine: MachineView | None = None
        machine_id = getattr(action, "machine_id", None)
        if machine_id:
            try:
                machine = world.get_machine(machine_id).view()
            except FlyError:
                machine = None
        return Executed(ActionResult(failure=exc.failure, machine=machine), fault)
    result = executed.result
    match action:
        case CreateVolume() | ReplaceVolume() if result.volume is not None:
            mem.made_volumes.setdefault(inst.uid, {})[result.volume.id] = result.volume
        case CreateMachine() if result.machine is not None:
            mem.made_machines.setdefault(inst.uid, {})[result.machine.id] = result.machine
        case DestroyMachine() | DestroyStrandedMachine():
            mem.removed(inst.uid, machine_id=action.machine_id)
        case DeleteVolume() | DeleteStrandedVolume():
            mem.removed(inst.uid, volume_id=action.volume_id)
        case _:
            pass
    return executed


def _before(fault: str | None) -> None:
    """Faults that fail a call before it changes anything."""
    if fault in (Fault.ERROR, Fault.RATE, Fault.TIMEOUT, Fault.CAPACITY):
        raise FlyError(_failure_of(fault))


def _execute(
    world: FlyWorld, action: Action, inst: Instance, mem: GatewayMemory, fault: str | None
) -> ActionResult:
    spec = inst.spec
    wait = TIMINGS.fly_wait_timeout.total_seconds()
    match action:
        case CreateVolume():
            mem.sent_creates.add(inst.uid)
            mem.volume_creates_sent[inst.uid] = world.now
            _before(fault)
            vol = world.new_volume(action.name, action.region, action.size_gb)
            world.record("create_volume", vol.id)
            if fault == Fault.SILENT:  # POST (UNSENT): the client does not repeat it
                raise FlyError(TIMEOUT)
            mem.volume_sizes[vol.id] = vol.size_gb
            return ActionResult(volume=vol.view())
        case ExtendVolume():
            _before(fault)
            vol = world.get_volume(action.volume_id)
            # A SAFE PUT whose answer was lost (SILENT) is sent again by the client.
            for _ in range(2 if fault == Fault.SILENT else 1):
                if not vol.live:
                    raise FlyError(NOT_FOUND)
                if action.size_gb <= vol.size_gb:
                    raise FlyError(
                        fly_failure(
                            FailureKind.INVALID_CONFIG,
                            400,
                            "fly: 400 size_gb must be greater than the current size",
                        )
                    )
                vol.size_gb = action.size_gb
                world.record("extend_volume", vol.id, str(action.size_gb))
            mem.volume_sizes[vol.id] = vol.size_gb
            return ActionResult(volume=vol.view())
        case CreateMachine():
            mem.sent_creates.add(inst.uid)
            mem.machine_creates_sent[inst.uid] = world.now
            _before(fault)
            if world.host_full_for(volume_id=action.volume_id):
                raise FlyError(VOLUME_HOST_FULL)
            m = FlyMachine(
                id=world.new_id("m"),
                uid=inst.uid,
                region=action.region,
                state="created",
                version=world.new_version(),
                image=spec.image,
                guest=desired_guest(spec),
                env_digest=inst.env_digest,
                mounts=(Mount(action.volume_id, spec.volume.mount_path),),
                changed_at=world.now,
                created_at=world.now,
                health_check=desired_machine(inst, action.volume_id).health_check,
            )
            world.machines[m.id] = m
            world.attach(m)
            world.record("create_machine", m.id)
            answer = m.view()  # Fly answers with the machine as created
            world.launch(m)
            if fault == Fault.SILENT:
                raise FlyError(TIMEOUT)
            return ActionResult(machine=answer)
        case AwaitState():
            m = world.get_machine(action.machine_id, grace=True)
            if not m.live:
                raise FlyError(NOT_FOUND)
            if world.wait(m, (action.state,), wait):
                seen = action.seen
                if seen is not None and seen.id == m.id:
                    return ActionResult(machine=replace(seen, state=m.state, instance_id=m.version))
                return ActionResult(machine=world.get_machine(m.id, grace=True).view())
            current = world.get_machine(action.machine_id, grace=True)
            failure = fly_failure(
                FailureKind.TIMEOUT, 408, f"machine {m.id} did not reach {action.state} in time"
            )
            return ActionResult(failure=failure, machine=current.view())
        case StartMachine():
            _before(fault)
            m = world.get_machine(action.machine_id)  # _desired_machine_config reads it
            if not m.live:
                raise FlyError(NOT_FOUND)
            if drift_of(m, inst, action.volume_id):
                _update_and_start(world, m, inst, action.volume_id, wait, fault)
            else:
                # Already updated (say, by a restart whose start failed): only start it.
                if fault == Fault.MIDWAY:
                    raise FlyError(UNAVAILABLE)
                if m.state in REST_STATES and world.host_full_for(m):
                    raise FlyError(HOST_FULL)
                world.start(m)
                if not world.wait(m, ("started",), wait):
                    raise FlyError(
                        fly_failure(FailureKind.TIMEOUT, 408, f"machine {m.id} did not reach started in time")
                    )
            if fault == Fault.SILENT:
                raise FlyError(TIMEOUT)
            return ActionResult(machine=world.get_machine(m.id).view())
        case StopMachine():
            _before(fault)
            m = world.get_machine(action.machine_id)
            if not m.live:
                raise FlyError(NOT_FOUND)
            world.stop(m)
            if fault == Fault.SILENT:
                raise FlyError(TIMEOUT)
            return ActionResult(machine=world.get_machine(m.id).view())
        case RestartMachine():
            _before(fault)
            m = world.get_machine(action.machine_id)
            if not m.live:
                raise FlyError(NOT_FOUND)
            if action.resume_from is not None and m.version != action.resume_from:
                # The guard's update already went in: start the new version if needed, and wait.
                if m.state != "started":
                    world.start(m)
                    if not world.wait(m, ("started",), wait):
                        raise FlyError(
                            fly_failure(
                                FailureKind.TIMEOUT, 408, f"machine {m.id} did not reach started in time"
                            )
                        )
                if fault == Fault.SILENT:
                    raise FlyError(TIMEOUT)
                return ActionResult(machine=world.get_machine(m.id).view())
            world.stop(m)  # stop_machine_and_wait (a stop that does not settle is tolerated)
            if fault == Fault.MIDWAY:
                raise FlyError(UNAVAILABLE)
            m = world.get_machine(action.machine_id)  # _desired_machine_config
            _update_and_start(world, m, inst, action.volume_id, wait, None)
            if not world.wait(m, ("started",), wait):
                raise FlyError(
                    fly_failure(FailureKind.TIMEOUT, 408, f"machine {m.id} did not reach started in time")
                )
            if fault == Fault.SILENT:
                raise FlyError(TIMEOUT)
            return ActionResult(machine=world.get_machine(m.id).view())
        case DestroyMachine():
            _before(fault)
            m = world.machines.get(action.machine_id)
            if m is None or not m.live:
                raise FlyError(NOT_FOUND)
            world.destroy(m)
            # SILENT: the client repeats the DELETE, gets 404, and destroy_machine says "gone".
            return ActionResult() if fault != Fault.SILENT else ActionResult(failure=NOT_FOUND)
        case DestroyStrandedMachine():
            _before(fault)
            m = world.machines.get(action.machine_id)
            if m is None or not m.live:
                raise FlyError(NOT_FOUND)
            world.destroy(m)
            return ActionResult() if fault != Fault.SILENT else ActionResult(failure=NOT_FOUND)
        case ReplaceVolume():
            mem.sent_creates.add(inst.uid)
            mem.volume_creates_sent[inst.uid] = world.now
            _before(fault)
            if action.fork:
                source = world.volumes.get(action.stranded_volume_id)
                if source is None or not source.live:
                    raise FlyError(NOT_FOUND)
                vol = world.new_volume(action.name, action.region, source.size_gb, forked_from=source.id)
                world.record("fork_volume", vol.id, f"from {source.id}")
            else:
                vol = world.new_volume(action.name, action.region, action.size_gb)
                world.record("create_volume", vol.id, f"replacing {action.stranded_volume_id}")
            if fault == Fault.SILENT:
                raise FlyError(TIMEOUT)
            mem.volume_sizes[vol.id] = vol.size_gb
            return ActionResult(volume=vol.view())
        case DeleteVolume() | DeleteStrandedVolume():
            _before(fault)
            vol = world.volumes.get(action.volume_id)
            if vol is None or not vol.live:
                raise FlyError(NOT_FOUND)
            bound = vol.attached_machine_id
            if bound is not None and bound in world.machines and world.machines[bound].live:
                raise FlyError(
                    fly_failure(FailureKind.PRECONDITION, 412, "fly: volume is bound to a machine")
                )
            vol.state = "destroyed"
            vol.attached_machine_id = None
            world.record("delete_volume", vol.id)
            mem.volume_sizes.pop(vol.id, None)
            if isinstance(action, DeleteVolume):
                mem.sent_creates.discard(inst.uid)
                mem.volume_creates_sent.pop(inst.uid, None)
                mem.machine_creates_sent.pop(inst.uid, None)
            if fault == Fault.SILENT:
                # The client repeats the DELETE, gets 404: delete_volume returns "already gone".
                return ActionResult()
            return ActionResult()
    raise AssertionError(f"unknown action {action!r}")


def _update_and_start(
    world: FlyWorld, m: FlyMachine, inst: Instance, volume_id: str, wait: float, fault: str | None
) -> None:
    """The client's update_and_start: update, wait for the new version to settle, start it."""
    deadline = world.now + timedelta(seconds=wait)
    world.update(m, inst, volume_id)
    if fault == Fault.MIDWAY:
        raise FlyError(UNAVAILABLE)
    remaining = max(1.0, (deadline - world.now).total_seconds())
    if not world.wait(m, ("started", "stopped", "failed"), remaining):
        raise FlyError(fly_failure(FailureKind.TIMEOUT, 408, f"machine {m.id} did not settle in time"))
    if m.state != "started":
        if world.host_full_for(m):
            # Its host has no room to run it again (another tenant took it meanwhile).
            raise FlyError(HOST_FULL)
        world.start(m)
        remaining = max(1.0, (deadline - world.now).total_seconds())
        if not world.wait(m, ("started",), remaining):
            raise FlyError(
                fly_failure(FailureKind.TIMEOUT, 408, f"machine {m.id} did not reach started in time")
            )


# ---------------------------------------------------------------------------- the apiserver and the operator


def guard_key(status: ClawInstanceStatus) -> str | None:
    """status.restartingAt as written on the wire (what a later read gives back)."""
    value = status.to_wire().get("restartingAt")
    return str(value) if value is not None else None


@dataclass
class Stored:
    """The ClawInstance as the apiserver holds it."""

    spec: ClawInstanceSpec
    generation: int = 1
    rv: int = 1
    status: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    reconcile_request: str | None = None
    deleting: bool = False
    gone: bool = False  # the finalizer was removed and the object deleted
    created_at: datetime = T_START

    def snapshot(self) -> Stored:
        return replace(self, status=dict(self.status))


@dataclass
class Run:
    obj: Stored
    persisted: dict[str, Any]
    carried: Observation | None = None
    passes: int = 0
    conflicts: int = 0


@dataclass
class PassRecord:
    """What one pass did, for the invariants."""

    instance: Instance
    observed: Observation
    decided: Decision
    decision: Decision
    executed: Executed | None
    written: bool  # the status went to the apiserver
    conflicted: bool
    crashed: bool
    mutations: list[Mutation]
    repairs: list[tuple[int, str]]
    # The machines as Fly had them before the action: (view, last_boot_seq) by id.
    before: dict[str, tuple[MachineView, int]]
    # A new restart guard this pass persisted: FlyWorld.boots when it was written.
    guard_written: bool = False
    finalized: bool = False


@dataclass
class Operator:
    """`kube/reconciler.py`'s run of passes over the world and the stored object."""

    world: FlyWorld
    stored: Stored
    env_version: int = 1
    secret_present: bool = True
    secret_version: int = 1
    failures: int = 0
    run: Run | None = None
    mem: GatewayMemory = field(default_factory=lambda: GatewayMemory(started_at=T_START - timedelta(hours=1)))
    events: list[tuple[EventRecord, int]] = field(default_factory=list)
    passes: int = 0
    writes: int = 0
    conflicts: int = 0
    crashes: int = 0
    last_delay: float | None = None
    # generation -> len(FlyWorld.repairs) when it began (a repair "during this generation").
    generation_began: dict[int, int] = field(default_factory=lambda: {1: 0})
    # restartingAt (iso) -> FlyWorld.boots when that guard was persisted.
    guards: dict[str, int] = field(default_factory=dict)
    # Hooks the model uses to check each pass.
    on_pass: list[Callable[[PassRecord], None]] = field(default_factory=list)

    def env(self) -> tuple[str | None, str | None]:
        if not self.secret_present:
            return None, "Secret default/claw-secret not found"
        raw = f"{sorted(self.stored.spec.env.items())}|secret-{self.secret_version}"
        return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()[:16], None

    def instance(self, obj: Stored) -> Instance:
        status = ClawInstanceStatus.model_validate(obj.status)
        inst = Instance(
            uid=UID,
            namespace="default",
            name="claw-a",
            generation=obj.generation,
            spec=obj.spec,
            status=status,
            app=APP,
            deleting=obj.deleting,
            paused=obj.paused,
            reconcile_request=obj.reconcile_request,
            failures=self.failures,
            created_at=obj.created_at,
        )
        if not inst.paused and not inst.deleting:
            digest, error = self.env()
            inst = replace(inst, env_digest=digest, secret_error=error)
        return inst

    def crash(self) -> None:
        """The operator process dies and restarts (a new pod: seconds later): everything in
        memory is gone."""
        self.world.advance(OPERATOR_RESTART)
        self.run = None
        self.failures = 0
        self.mem = GatewayMemory(started_at=self.world.now)
        self.crashes += 1

    def one_pass(
        self, *, conflict_after_act: bool = False, crash_before_write: bool = False
    ) -> PassRecord | None:
        """One pass of the current run (a new run reads the object afresh)."""
        stored = self.stored
        if stored.gone:
            return None
        if self.run is None:
            self.run = Run(obj=stored.snapshot(), persisted=dict(stored.status))
        run = self.run
        run.passes += 1
        self.passes += 1
        last = run.passes >= MAX_PASSES
        obj = run.obj
        inst = self.instance(obj)
        carried, run.carried = run.carried, None
        if inst.paused:
            observed = Observation()
        elif carried is not None:
            observed = carried
        else:
            observed = observe(self.world, inst, self.mem)
        before = {mid: (m.view(), m.last_boot_seq) for mid, m in self.world.machines.items()}
        n_mut, n_rep = len(self.world.mutations), len(self.world.repairs)
        decided = decide(inst, observed, self.world.now, TIMINGS)
        decision = decided
        executed: Executed | None = None
        if decided.action is not None and not inst.paused:
            executed = execute(self.world, decided.action, inst, self.mem)
            decision = settle(inst, decided, executed.result, self.world.now, TIMINGS)
        record = PassRecord(
            instance=inst,
            observed=observed,
            decided=decided,
            decision=decision,
            executed=executed,
            written=False,
            conflicted=False,
            crashed=False,
            mutations=self.world.mutations[n_mut:],
            repairs=self.world.repairs[n_rep:],
            before=before,
        )
        if crash_before_write:
            record.crashed = True
            self.crash()
            self._check(record)
            return record
        if conflict_after_act:
            stored.rv += 1  # someone annotated the object while this pass acted
        new_status = decision.status.to_wire()
        follows = decision.requeue_after == 0 and not last and not inst.deleting and not inst.paused
        if follows:
            run.carried = carry_over(
                observed, decided.action, executed.result if executed else None, decision
            )
        if new_status != run.persisted and decision.write_can_wait and follows:
            obj.status = new_status
        elif new_status != run.persisted:
            if stored.rv != obj.rv:
                record.conflicted = True
                self.conflicts += 1
                if executed is not None:
                    self.events.extend((e, inst.generation) for e in decision.events)
                self._check(record)
                run.conflicts += 1
                if run.conflicts > MAX_CONFLICT_RETRIES:
                    self.run = None
                    return record
                fresh = stored.snapshot()
                self.run = Run(obj=fresh, persisted=dict(fresh.status), conflicts=run.conflicts)
                return record
            stored.status = new_status
            stored.rv += 1
            obj.rv = stored.rv
            obj.status = dict(new_status)
            run.persisted = dict(new_status)
            record.written = True
            self.writes += 1
            guard = guard_key(decision.status)
            if guard is not None and guard != guard_key(inst.status):
                self.guards[guard] = self.world.boots
        elif new_status != obj.status:
            obj.status = new_status
        self.failures = self.failures + 1 if decision.retry else 0
        self.events.extend((e, inst.generation) for e in decision.events)
        if decision.finalize:
            record.finalized = True
            stored.gone = stored.deleting
            self.run = None
        elif decision.requeue_after == 0 and not last:
            pass  # the run goes on
        else:
            self.run = None
            self.last_delay = decision.requeue_after
        self._check(record)
        return record

    def reconcile(self, max_passes: int = MAX_PASSES + MAX_CONFLICT_RETRIES + 1) -> None:
        """Passes until the current run ends (what one wake-up of the operator does)."""
        for _ in range(max_passes):
            record = self.one_pass()
            if record is None or self.run is None:
                return

    def _check(self, record: PassRecord) -> None:
        for hook in self.on_pass:
            hook(record)

    # ------------------------------------------------------------------ what users do

    def edit(self, **changes: Any) -> None:
        """A spec edit: a new generation (an edit that changes nothing is no update at all)."""
        spec = self.stored.spec.model_copy(update=changes)
        if spec == self.stored.spec:
            return
        self.stored.spec = spec
        self._new_generation()

    def _new_generation(self) -> None:
        self.stored.generation += 1
        self.stored.rv += 1
        self.generation_began[self.stored.generation] = len(self.world.repairs)

    def annotate(self, *, paused: bool | None = None, reconcile_request: str | None = None) -> None:
        if paused is not None:
            self.stored.paused = paused
        if reconcile_request is not None:
            self.stored.reconcile_request = reconcile_request
        self.stored.rv += 1

    def delete(self) -> None:
        if not self.stored.deleting:
            self.stored.deleting = True
            self._new_generation()

    def status(self) -> ClawInstanceStatus:
        return ClawInstanceStatus.model_validate(self.stored.status)

    def condition(self, type_: str) -> tuple[str, str] | None:
        c = find_condition(self.status().conditions, type_)
        return None if c is None else (c.status.value, c.reason)
