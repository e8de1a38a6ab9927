"""The vocabulary of the decisions: what was observed, what to do, what results.

`lifecycle` decides; `kube` reads Kubernetes, observes Fly (through `claw_operator.fly`),
executes the chosen action and writes the status. This module is the contract between them:
plain frozen dataclasses, no I/O, no secrets (env values are carried only as a digest).

One reconcile pass is: observe → `decide()` → execute at most one `Action` → `settle()` →
one status write, conditional on the resourceVersion the pass read (on 409: re-read and
re-decide). A decision that needs its status persisted *before* acting (the `Restarting`
guard, `phase: Destroying` with the pending ids) returns no action and `requeue_after=0`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from claw_operator.api import ClawInstanceSpec, ClawInstanceStatus
from claw_operator.api.reasons import EventReason, Reason
from claw_operator.fly.errors import FailureKind as FailureKind  # the decisions speak Fly's kinds

if TYPE_CHECKING:  # `desired` builds on this module's vocabulary
    from claw_operator.lifecycle.desired import DesiredMachine

# ---------------------------------------------------------------------------- observation


@dataclass(frozen=True)
class FlyFailure:
    """A failed Fly call, as the decisions need it (never carries a token or a secret)."""

    kind: FailureKind
    retryable: bool
    message: str
    status: int | None = None  # HTTP status; None when no response was received
    retry_after: float | None = None  # seconds, from Retry-After


@dataclass(frozen=True)
class Mount:
    volume: str
    path: str


@dataclass(frozen=True)
class GuestView:
    cpu_kind: str
    cpus: int
    memory_mb: int


@dataclass(frozen=True)
class CheckView:
    """One of the machine's checks as Fly last ran it."""

    name: str
    status: str  # passing, warning, critical
    output: str = ""


@dataclass(frozen=True)
class MachineView:
    """The parts of a Fly Machine the decisions look at."""

    id: str
    state: str  # created, starting, started, stopping, stopped, failed, replacing, destroyed, ...
    region: str
    instance_id: str | None = None
    # Its config, read back in the shape of what the spec asks for (`edge.machineconfig`), so
    # drift compares like with like; None when Fly's answer had no config.
    config: DesiredMachine | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None
    # When its process last exited on its own (Fly's latest `exit` machine event that no
    # requested stop caused), if Fly says.
    exited_at: datetime | None = None
    # The checks' results as Fly reports them; None when Fly's answer had none.
    checks: tuple[CheckView, ...] | None = None

    # The config's fields the decisions read (None, or no mount, when the config is unknown).

    @property
    def image(self) -> str | None:
        return self.config.image if self.config else None

    @property
    def guest(self) -> GuestView | None:
        return self.config.guest if self.config else None

    @property
    def env_digest(self) -> str | None:
        """The digest of config.env (the values never reach `lifecycle`)."""
        return self.config.env_digest if self.config else None

    @property
    def mounts(self) -> tuple[Mount, ...]:
        return self.config.mounts if self.config else ()

    @property
    def health_check(self) -> str | None:
        """The operator's health check in the config, described (`desired.describe_check`;
        "none" when the config has none)."""
        return self.config.health_check if self.config else None


@dataclass(frozen=True)
class VolumeView:
    id: str
    region: str
    size_gb: int
    state: str = "created"
    attached_machine_id: str | None = None


class Lookup(StrEnum):
    NOT_LOOKED = "NotLooked"  # nothing to look up (no id), or deliberately skipped
    FOUND = "Found"
    GONE = "Gone"  # 404
    ERROR = "Error"  # the call failed; see `failure`


@dataclass(frozen=True)
class MachineLookup:
    outcome: Lookup = Lookup.NOT_LOOKED
    machine: MachineView | None = None
    failure: FlyFailure | None = None


@dataclass(frozen=True)
class VolumeLookup:
    outcome: Lookup = Lookup.NOT_LOOKED
    volume: VolumeView | None = None
    failure: FlyFailure | None = None


@dataclass(frozen=True)
class Observation:
    """What one pass saw on Fly before deciding.

    `machine`/`volume` are GETs by the ids in status. `tagged_machines` is the listing by
    the instance UID (metadata recovery, done when status has no machineId, and before any
    create: an ambiguous create is resolved by it); None when not listed, or when the
    listing failed (then `tagged_failure` says why).

    `named_volumes` are the volumes named `volume_name(uid)` (volumes carry no metadata, so
    the name is their tag): listed when status has no volumeId, and while deleting, so a
    volume whose create answer was lost is adopted, or destroyed, instead of leaked. None when
    not listed (the decisions then rely on status alone). A listing that failed, or that
    cannot be trusted yet (empty although this process sent a create for that name moments
    ago, within Fly's list consistency window), is also None, with `named_failure` saying
    why: "don't know", never "none" — no volume is created, and no finalizer released, on it.

    Both listings are also taken when the GET of the recorded machine (volume) answered 404:
    a loss is proven only by a second 404 a grace period later *and* a listing that does not
    show the object (see `lifecycle.loss`).
    """

    machine: MachineLookup = MachineLookup()
    volume: VolumeLookup = VolumeLookup()
    tagged_machines: tuple[MachineView, ...] | None = None
    tagged_failure: FlyFailure | None = None
    named_volumes: tuple[VolumeView, ...] | None = None
    named_failure: FlyFailure | None = None


# ---------------------------------------------------------------------------- the instance


@dataclass(frozen=True)
class Instance:
    """The ClawInstance as `kube` read it, plus what `kube` resolved for the decisions."""

    uid: str
    namespace: str
    name: str
    generation: int
    spec: ClawInstanceSpec
    status: ClawInstanceStatus
    app: str  # spec.app, or the operator's --default-app
    deleting: bool = False  # metadata.deletionTimestamp is set
    paused: bool = False  # annotation claw.dev/paused == "true"
    reconcile_request: str | None = None  # annotation claw.dev/reconcile-requested-at
    # Digest of the full desired env (spec.env + resolved secretEnv values); None when a
    # Secret or key is missing, in which case `secret_error` says which (no values).
    env_digest: str | None = None
    secret_error: str | None = None
    # Consecutive failed passes (kept in memory by `kube`, reset on success): the exponent of
    # the retry backoff.
    failures: int = 0
    # metadata.creationTimestamp (None when absent or unreadable).
    created_at: datetime | None = None


@dataclass(frozen=True)
class Timings:
    """Cadences and thresholds (KiloClaw's defaults; `claw-operator run` flags)."""

    poll_starting: timedelta = timedelta(seconds=60)
    poll_running: timedelta = timedelta(seconds=300)
    poll_destroying: timedelta = timedelta(seconds=60)
    poll_idle: timedelta = timedelta(seconds=1800)
    poll_jitter: timedelta = timedelta(seconds=60)
    starting_timeout: timedelta = timedelta(seconds=300)
    stopped_threshold: int = 5
    fly_wait_timeout: timedelta = timedelta(seconds=60)
    # Retryable errors: capped, jittered exponential backoff (base * 2**attempt, ≤ cap).
    retry_base: timedelta = timedelta(seconds=5)
    retry_cap: timedelta = timedelta(seconds=300)
    # A machine or volume GET answering 404 is "lost" only when a second read at least this
    # much later answers 404 too, and a successful listing does not show it (Fly answers 404
    # for objects that exist while its API settles).
    loss_grace: timedelta = timedelta(seconds=30)
    # An empty volume listing taken less than this after this process sent a create for that
    # name proves nothing (Fly's lists are eventually consistent): no second create on it.
    listing_settle: timedelta = timedelta(seconds=30)
    # How long Fly keeps a volume bound to its machine after the machine is destroyed (the
    # volume delete is refused meanwhile, docs/reference/fly-machines-api.md §3): a volume
    # delete refused as bound right after the destroy is tried again this much later, then
    # with the usual backoff (never longer than this).
    volume_detach: timedelta = timedelta(seconds=20)
    # A machine that stops or fails within this long of its start is a crash; consecutive
    # crashes delay the next start by crash_backoff * 2**(crashes - 1), at most
    # crash_backoff_max (the kubelet's CrashLoopBackOff). A longer run resets the count.
    crash_window: timedelta = timedelta(seconds=600)
    crash_backoff: timedelta = timedelta(seconds=10)
    crash_backoff_max: timedelta = timedelta(seconds=300)


# ---------------------------------------------------------------------------- actions


class RestartReason(StrEnum):
    REQUESTED = Reason.RESTART_REQUESTED.value  # spec.restartedAt changed
    CONFIG_CHANGED = Reason.CONFIG_CHANGED.value  # image, guest, env or secretEnv changed
    MOUNT_REPAIR = Reason.MOUNT_REPAIR.value  # the machine mounts the wrong volume or path

    @property
    def condition_reason(self) -> Reason:
        """The Restarting condition's reason while this restart is in flight."""
        return Reason(self.value)


@dataclass(frozen=True)
class CreateVolume:
    """Create the volume in `region`, else in `fallback_regions` in order, moving on only on a
    capacity error (KiloClaw's createVolumeWithFallback; an ambiguous create stops there)."""

    region: str
    size_gb: int
    name: str
    fallback_regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtendVolume:
    volume_id: str
    size_gb: int


@dataclass(frozen=True)
class CreateMachine:
    """Create the machine mounting `volume_id`, tagged with the instance UID.

    `kube` builds the full Fly config (image, guest, env with secret values, mount, metadata)
    from the Instance; an ambiguous failure is resolved by listing by the UID tag.
    """

    volume_id: str
    region: str


@dataclass(frozen=True)
class AwaitState:
    """Wait (Fly's /wait, bounded by Timings.fly_wait_timeout) for the machine to reach a state."""

    machine_id: str
    state: str  # "started" or "stopped"
    instance_id: str | None = None
    # The machine as this pass saw it: once the wait answers, only its state and version
    # changed, so `kube` need not read it again. Not part of what the action *is*.
    seen: MachineView | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StartMachine:
    """Start a stopped/created/failed machine with the desired config (update launches it).

    `mount_repair` ("from X to Y") when the machine mounts the wrong volume or path: the
    update that precedes the start repairs it, and the repair is reported once it started.
    """

    machine_id: str
    volume_id: str
    mount_repair: str | None = None


@dataclass(frozen=True)
class StopMachine:
    machine_id: str


@dataclass(frozen=True)
class RestartMachine:
    """Stop (wait stopped) → update with the desired config and mount → wait started.

    The one routine for restarts, config changes and mount repair (KiloClaw's
    reconcileMachineMount and restartMachine share it here).
    """

    machine_id: str
    volume_id: str
    reason: RestartReason
    # The machine version the persisted guard recorded. When the machine no longer runs it, the
    # update of this restart was already applied (its answer or status write was lost): only
    # start (if needed) and wait; never stop and update a second time.
    resume_from: str | None = None
    # "from X to Y" when the machine mounts the wrong volume or path (reported on success).
    mount_repair: str | None = None


@dataclass(frozen=True)
class DestroyMachine:
    machine_id: str  # DELETE ?force=true; 404 counts as done


@dataclass(frozen=True)
class DeleteVolume:
    volume_id: str  # 404 counts as done


@dataclass(frozen=True)
class DestroyStrandedMachine:
    """Capacity recovery: force-destroy the machine stranded on a full host (404 counts as done)."""

    machine_id: str


@dataclass(frozen=True)
class ReplaceVolume:
    """Capacity recovery: a volume on another host for the stranded one, in `region`, else in
    `fallback_regions` in order (moving on only on a capacity error).

    `fork`: a copy of `stranded_volume_id` (Fly's `source_volume_id`, no size: Fly takes the
    source's); otherwise a new, empty volume of `size_gb`. The stranded volume is left alone.
    """

    stranded_volume_id: str
    fork: bool
    region: str
    size_gb: int
    name: str
    fallback_regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeleteStrandedVolume:
    """Capacity recovery done: delete the volume it moved away from (404 counts as done)."""

    volume_id: str


Action = (
    CreateVolume
    | ExtendVolume
    | CreateMachine
    | AwaitState
    | StartMachine
    | StopMachine
    | RestartMachine
    | DestroyMachine
    | DeleteVolume
    | DestroyStrandedMachine
    | ReplaceVolume
    | DeleteStrandedVolume
)


@dataclass(frozen=True)
class ActionResult:
    """What executing an Action gave: the object it produced or reached, or the failure."""

    failure: FlyFailure | None = None
    machine: MachineView | None = None  # created / reached state
    volume: VolumeView | None = None  # created / extended

    @property
    def ok(self) -> bool:
        return self.failure is None


# ---------------------------------------------------------------------------- decisions


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class EventRecord:
    """A Kubernetes Event to post on the ClawInstance (reason = the contract's word)."""

    type: EventType
    reason: EventReason
    message: str


@dataclass(frozen=True)
class LogRecord:
    """A structured log line with KiloClaw's action name (starting_timeout, repair_mount, ...)."""

    action: str
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The outcome of `decide()` or `settle()`.

    `status` is the complete new status (conditions included) to write once, conditionally.
    `action` is the next Fly mutation to execute (None: nothing to do now). `requeue_after`
    is when to run the next pass (0: at once, after the write; None: at the phase cadence).
    `finalize` says the destroy is complete (or orphaned): remove the finalizer.
    """

    status: ClawInstanceStatus
    action: Action | None = None
    events: tuple[EventRecord, ...] = ()
    logs: tuple[LogRecord, ...] = ()
    requeue_after: float | None = None
    finalize: bool = False
    # True when this pass failed in a way worth retrying (5xx, 429, timeout, capacity):
    # `kube` counts it into Instance.failures and adds jitter to `requeue_after`.
    retry: bool = False
    # True when everything this status adds is also recoverable from Fly (a created volume,
    # by its name), so `kube` may write it together with the next pass's status when that
    # pass follows at once, instead of writing twice. The write still happens, conditional on
    # the resourceVersion this pass read; if it is lost, the next read finds the volume again.
    write_can_wait: bool = False
    # True when the instance has no status yet (no pass ever wrote one) and this pass acts:
    # if the action is slow (an ambiguous create is resolved by listing, for up to 30 s),
    # `kube` writes `status` (what is about to happen) while it runs, so the user never sees a
    # ClawInstance without status for the length of an action. A quick action writes once.
    write_if_slow: bool = False
