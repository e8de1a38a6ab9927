"""The operator's edge to Fly: observe an instance's Fly objects, and execute one Action.

Everything Fly-specific the decisions must not know lives here: the client, its typed errors
(turned into `FlyFailure`s), the full machine config with secret env values, and the ownership
tags. Each method makes a bounded number of calls; none loops on its own (the reconcile loop
and its backoff decide when to try again).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, assert_never

from claw_operator.api import Phase
from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.edge.env import ResolvedEnv
from claw_operator.edge.listings import SharedListing
from claw_operator.edge.machineconfig import (
    config_applied,
    desired_config,
    machine_view,
    merged_config,
    owner_of,
)
from claw_operator.fly import (
    FlyError,
    FlyMachinesClient,
    GuestConfig,
    InvalidConfig,
    Machine,
    MachineConfig,
    NotFound,
    Volume,
    WaitTimeout,
)
from claw_operator.fly.tags import METADATA_UID_KEY
from claw_operator.lifecycle import volume_name
from claw_operator.lifecycle.destroy import destroy_lookups, still_bound_after_detach
from claw_operator.lifecycle.model import (
    Action,
    ActionResult,
    AwaitState,
    CreateMachine,
    CreateVolume,
    DeleteStrandedVolume,
    DeleteVolume,
    DestroyMachine,
    DestroyStrandedMachine,
    ExtendVolume,
    FailureKind,
    FlyFailure,
    Instance,
    Lookup,
    MachineLookup,
    MachineView,
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

logger = logging.getLogger("claw_operator.fly_gateway")

# The largest machine config (JSON) the operator sends. Fly documents no request-size limit, but
# answers 413 to configs far larger (an 8 MiB env); this stays well below, and above what the
# CRD lets spec.env reach (`MAX_ENV_CHARS`), leaving room for secretEnv values.
MAX_MACHINE_CONFIG_BYTES = 256 * 1024


def to_failure(error: FlyError) -> FlyFailure:
    kind = error.kind
    retry_after = getattr(error, "retry_after", None)
    return FlyFailure(
        kind=kind,
        retryable=error.retryable,
        message=str(error),
        status=error.status,
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
    )


_parse_time = parse_rfc3339


def _json_size(config: dict[str, Any]) -> int:
    return len(json.dumps(config, separators=(",", ":")).encode())


def volume_view(volume: Volume) -> VolumeView:
    return VolumeView(
        id=volume.id,
        region=volume.region or "",
        size_gb=volume.size_gb or 0,
        state=volume.state or "created",
        attached_machine_id=volume.attached_machine_id,
    )


def volume_needs_a_look(instance: Instance, machine: MachineLookup, size_seen: int | None) -> bool:
    """False when the volume cannot have changed in a way the decisions act on.

    A volume mounted by a started machine cannot be deleted (Fly refuses to delete a bound
    volume) nor shrink; it only matters again when the spec asks for more than its size. So
    a periodic check of a healthy instance is one GET (the machine), not two. The size is
    the one this process last saw (`size_seen`); without one (after a restart), the status's
    `volumeSizeGB` is trusted only when the spec asks for exactly that size: nothing to grow,
    and a grow whose status write was lost leaves the recorded size below the spec (looked at).
    A status that does not record the size, a volume not mounted, a machine not started or
    not found, or a deletion: looked at.
    """
    volume_id = instance.status.volume_id
    if instance.deleting or volume_id is None or machine.machine is None:
        return True
    seen = machine.machine
    mounted = any(m.volume == volume_id for m in seen.mounts)
    # The status must say so too (status.volumeSizeGB drives Ready=False/Resizing): a lost
    # status write would otherwise leave it behind for good.
    recorded = instance.status.volume_size_gb
    want = instance.spec.volume.size_gb
    if machine.outcome != Lookup.FOUND or seen.state != "started" or not mounted or recorded is None:
        return True
    if size_seen is None:
        return recorded != want
    return not (size_seen >= want and recorded >= want)


@dataclass
class _Made:
    """The Fly objects this process created for one instance and has not removed since."""

    machines: dict[str, MachineView] = field(default_factory=dict)
    volumes: dict[str, VolumeView] = field(default_factory=dict)


class FlyGateway:
    """Observer and Executor of the Reconciler, over one shared FlyMachinesClient."""

    # How much later than this process's start an object must have been created for the
    # process to know its whole history (clock skew between the apiserver and us, and
    # creationTimestamp's one-second precision, stay well within it).
    BORN_WATCHED_MARGIN: ClassVar[timedelta] = timedelta(seconds=10)

    def __init__(self, client: FlyMachinesClient, timings: Timings) -> None:
        self._fly = client
        self._timings = timings
        self._started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()
        # UIDs this process has sent a volume or machine create for (see `_knows_nothing_exists`).
        self._sent_creates: set[str] = set()
        # UID -> when (monotonic) this process last sent a volume create (`_unsettled`), oldest
        # first (`_note_create_sent`); pruned past `listing_settle` (`_forget_settled_creates`).
        self._volume_creates_sent: dict[str, float] = {}
        # The same for machine creates (`_unsettled`: the machines tagged with a UID).
        self._machine_creates_sent: dict[str, float] = {}
        # Lists are per app, shared by every instance looking at the same time (listings.py).
        self._owned_machines: SharedListing[Machine] = SharedListing(self._machines_by_owner)
        self._named_volumes: SharedListing[Volume] = SharedListing(self._volumes_by_name)
        # volume id -> the size Fly last reported for it (see `_volume_needs_a_look`).
        self._volume_sizes: dict[str, int] = {}
        # UID -> when (monotonic) this process took the instance over from another operator
        # replica (`inherit`): treated as after an operator restart.
        self._inherited: dict[str, float] = {}
        # UID -> what this process created for the instance and has not removed (`_known_objects`).
        self._made: dict[str, _Made] = {}
        # UIDs with a create that failed or whose answer was lost: `_made` may miss an object.
        self._unsure: set[str] = set()
        # UIDs of deleting instances older than this process whose `_made` a conclusive listing
        # filled in (`_observe_destroy`): it holds every object of the instance too.
        self._listed: set[str] = set()

    def inherit(self, uid: str) -> None:
        """Another operator replica may have acted on this instance (with `--shards auto`, this
        replica just gained it): it is not "born under watch", and a listing proves "none" only
        `listing_settle` after the takeover, exactly as after an operator restart."""
        self._inherited[uid] = time.monotonic()
        self._listed.discard(uid)

    async def aclose(self) -> None:
        await self._fly.aclose()

    # ------------------------------------------------------------------ observe

    async def _machines_by_owner(self, app: str) -> dict[str, list[Machine]]:
        """All live machines of the app, by owner UID, oldest first (`find_owned_machines`)."""
        index: dict[str, list[Machine]] = {}
        for machine in await self._fly.list_machines(app):
            uid = machine.metadata.get(METADATA_UID_KEY)
            if uid and not machine.is_gone:
                index.setdefault(uid, []).append(machine)
        for machines in index.values():
            machines.sort(key=lambda m: (m.created_at or "", m.id))
        return index

    async def _volumes_by_name(self, app: str) -> dict[str, list[Volume]]:
        """All volumes of the app that are not soft-deleted, by name (`list_volumes`)."""
        index: dict[str, list[Volume]] = {}
        for volume in await self._fly.list_volumes(app):
            if volume.name:
                index.setdefault(volume.name, []).append(volume)
        return index

    def _seen_volume(self, view: VolumeView) -> VolumeView:
        self._volume_sizes[view.id] = view.size_gb
        return view

    def _volume_needs_a_look(self, instance: Instance, machine: MachineLookup) -> bool:
        return volume_needs_a_look(instance, machine, self._volume_sizes.get(instance.status.volume_id or ""))

    def _knows_nothing_exists(self, instance: Instance) -> bool:
        """True when this process knows, without asking Fly, that no volume or machine of the
        instance exists: it was created after this process started (so no earlier operator
        could have sent a create whose answer was lost), and this process has sent no create
        for it. Then the recovery lists can only come back empty, and are skipped: a new
        instance costs exactly its creates. Any create sent (answered or not), an operator
        restart, or a deletion brings the lists back.
        """
        created = instance.created_at
        return (
            not instance.deleting
            and instance.status.machine_id is None
            and instance.status.volume_id is None
            and created is not None
            and created > self._started_at + self.BORN_WATCHED_MARGIN
            and instance.uid not in self._sent_creates
            and instance.uid not in self._inherited
        )

    async def _without_stale_attachment(self, app: str, volume: VolumeLookup) -> VolumeLookup:
        """The volume as the destroy must see it: not attached to a machine that is gone.

        Fly updates `attached_machine_id` some time after a destroy (docs/reference/
        fly-machines-api.md §3); read as is, it names the machine just destroyed, which the
        destroy would then "recover" and destroy again, pass after pass, until Fly catches up.
        One GET tells: a machine that answers 404 or `destroyed` holds nothing (the volume
        delete may still be refused while Fly detaches it, and is then retried with backoff like
        any failed step).
        """
        seen = volume.volume
        if volume.outcome != Lookup.FOUND or seen is None or not seen.attached_machine_id:
            return volume
        attached = seen.attached_machine_id
        try:
            gone = (await self._fly.get_machine(app, attached)).is_gone
        except NotFound:
            gone = True
        except FlyError:
            return volume
        return VolumeLookup(Lookup.FOUND, replace(seen, attached_machine_id=None)) if gone else volume

    def _known_objects(
        self, instance: Instance
    ) -> tuple[tuple[MachineView, ...], tuple[VolumeView, ...]] | None:
        """Every machine and volume of the instance on Fly, known without asking: it was created
        after this process started (no earlier operator acted on it), no other replica did
        (`inherit`), and every create this process sent for it was answered. Then what this
        process created and has not destroyed is all there is: Fly creates nothing on its own,
        and the client never sends a create twice (an ambiguous one is resolved by listing, or
        raised, which makes the instance unsure). The same holds from a conclusive listing on
        (`_listed`, filled in by `_observe_destroy`). None when that cannot be known.
        """
        created = instance.created_at
        born_watched = (
            created is not None
            and created > self._started_at + self.BORN_WATCHED_MARGIN
            and instance.uid not in self._inherited
            and instance.uid not in self._unsure
        )
        if not born_watched and instance.uid not in self._listed:
            return None
        made = self._made.get(instance.uid, _Made())
        return tuple(made.machines.values()), tuple(made.volumes.values())

    def _made_for(self, uid: str) -> _Made:
        return self._made.setdefault(uid, _Made())

    def _removed(self, uid: str, *, machine_id: str | None = None, volume_id: str | None = None) -> None:
        made = self._made.get(uid)
        if made is None:
            return
        if machine_id is not None:
            made.machines.pop(machine_id, None)
        if volume_id is not None:
            made.volumes.pop(volume_id, None)
        if not made.machines and not made.volumes:
            del self._made[uid]

    async def _observe_destroy(self, instance: Instance) -> Observation:
        """A deleting instance's observation: only what `decide_destroy` reads
        (`destroy_lookups`), and nothing at all when this process knows every object of the
        instance (`_known_objects`): the listings that prove Fly empty before the finalizer
        goes are then answered from that record.

        After an operator restart (or a takeover) the process knows nothing of what an earlier
        one created, so the first deleting pass that can prove something lists both kinds once
        (`_listings_prove_all`: past `listing_settle` of the restart, the takeover and this
        process's own creates, whatever the listings show): what they show is every object of
        the instance, and the record, kept up to date by this process's destroys, answers from
        then on. Before that moment every pass looks as `destroy_lookups` says, and an empty
        listing proves nothing (`_unsettled`).
        """
        needs = destroy_lookups(instance)
        app, status, uid = instance.app, instance.status, instance.uid
        known = self._known_objects(instance)
        tagged: tuple[MachineView, ...] | None = None
        tagged_failure: FlyFailure | None = None
        named: tuple[VolumeView, ...] | None = None
        named_failure: FlyFailure | None = None
        listed = False
        if known is None and self._listings_prove_all(instance):
            tagged, tagged_failure = await self._list_tagged(instance)
            named, named_failure = await self._list_named(instance)
            listed = True
            if tagged is not None and named is not None:
                made = self._made_for(uid)
                made.machines.update((m.id, m) for m in tagged if m.state not in GONE_STATES)
                made.volumes.update((v.id, v) for v in named if v.state not in VOLUME_GONE_STATES)
                self._listed.add(uid)
                known = self._known_objects(instance)
        if known is not None:
            machines, volumes = known
            volume = VolumeLookup()
            if needs.volume_get and status.volume_id and still_bound_after_detach(instance):
                volume = await self._look_volume_for_destroy(app, status.volume_id)
            if (
                not machines
                and not volumes
                and status.phase == Phase.DESTROYING
                and status.pending_destroy_machine_id is None
                and status.pending_destroy_volume_id is None
            ):
                # The last pass: nothing of the instance is left to remember.
                self._listed.discard(uid)
            return Observation(volume=volume, tagged_machines=machines, named_volumes=volumes)
        volume = VolumeLookup()
        if needs.volume_get and status.volume_id:
            volume = await self._look_volume_for_destroy(app, status.volume_id)
        if not listed:
            if needs.tagged_machines:
                tagged, tagged_failure = await self._list_tagged(instance)
            if needs.named_volumes:
                named, named_failure = await self._list_named(instance)
        return Observation(
            volume=volume,
            tagged_machines=tagged,
            tagged_failure=tagged_failure,
            named_volumes=named,
            named_failure=named_failure,
        )

    async def _look_volume(self, app: str, volume_id: str) -> VolumeLookup:
        """GET the volume: found (its size remembered), gone (404 or soft-deleted), or error."""
        try:
            got = await self._fly.get_volume(app, volume_id)
        except NotFound:
            return VolumeLookup(Lookup.GONE)
        except FlyError as exc:
            return VolumeLookup(Lookup.ERROR, failure=to_failure(exc))
        if got.is_gone:
            return VolumeLookup(Lookup.GONE)
        return VolumeLookup(Lookup.FOUND, self._seen_volume(volume_view(got)))

    async def _look_volume_for_destroy(self, app: str, volume_id: str) -> VolumeLookup:
        """The volume, for `_recover_pending_machine`: its GET, less a stale attachment."""
        return await self._without_stale_attachment(app, await self._look_volume(app, volume_id))

    async def _list_tagged(
        self, instance: Instance
    ) -> tuple[tuple[MachineView, ...] | None, FlyFailure | None]:
        """The machines tagged with the instance's UID, or why the listing cannot tell: it
        failed, or it shows none of them within `listing_settle` of a create (`_unsettled`)."""
        try:
            owned = await self._owned_machines.lookup(instance.app, instance.uid)
        except FlyError as exc:
            self._listing_failed(instance, "machines by tag", exc)
            return None, to_failure(exc)
        tagged = tuple(machine_view(m) for m in owned)
        if any(m.state not in GONE_STATES for m in tagged):
            return tagged, None
        unsettled = self._unsettled(instance, "machine", self._machine_creates_sent)
        return (None, unsettled) if unsettled is not None else (tagged, None)

    async def _list_named(
        self, instance: Instance
    ) -> tuple[tuple[VolumeView, ...] | None, FlyFailure | None]:
        """The volumes named after the instance, or why the listing cannot tell (as
        `_list_tagged`). In a capacity recovery the stranded and superseded volumes prove
        nothing: only its replacement (or fork) could have been created moments ago, and a
        listing showing only those volumes may be one that does not show it yet."""
        status = instance.status
        try:
            found = await self._named_volumes.lookup(instance.app, volume_name(instance.uid))
        except FlyError as exc:
            self._listing_failed(instance, "volumes by name", exc)
            return None, to_failure(exc)
        named = tuple(volume_view(v) for v in found)
        recovering = {status.stranded_volume_id, *(status.superseded_volume_ids or ())}
        if any(v.state not in VOLUME_GONE_STATES and v.id not in recovering for v in named):
            return named, None
        unsettled = self._unsettled(instance, "volume", self._volume_creates_sent)
        return (None, unsettled) if unsettled is not None else (named, None)

    @staticmethod
    def _listing_failed(instance: Instance, what: str, exc: FlyError) -> None:
        logger.info(
            f"listing {what} failed",
            extra={"instance": f"{instance.namespace}/{instance.name}", "error": str(exc)},
        )

    def _listings_prove_all(self, instance: Instance) -> bool:
        """Listings taken now would show every machine and volume of the instance, whatever
        they show: no create this process sent for it failed or lost its answer, and no create
        an earlier process (or another replica) may have sent is younger than `listing_settle`
        (`_unsettled`: the restart, the takeover and this process's last creates)."""
        return (
            instance.uid not in self._unsure
            and self._unsettled(instance, "machine", self._machine_creates_sent) is None
            and self._unsettled(instance, "volume", self._volume_creates_sent) is None
        )

    async def observe(self, instance: Instance) -> Observation:
        if instance.deleting:
            return await self._observe_destroy(instance)
        app, status = instance.app, instance.status
        machine = MachineLookup()
        if status.machine_id:
            try:
                found = await self._fly.get_machine(app, status.machine_id)
                machine = (
                    MachineLookup(Lookup.GONE)
                    if found.is_gone
                    else MachineLookup(Lookup.FOUND, machine_view(found))
                )
            except NotFound:
                machine = MachineLookup(Lookup.GONE)
            except FlyError as exc:
                machine = MachineLookup(Lookup.ERROR, failure=to_failure(exc))
        volume = VolumeLookup()
        if status.volume_id and self._volume_needs_a_look(instance, machine):
            volume = await self._look_volume(app, status.volume_id)
        if self._knows_nothing_exists(instance):
            # As conclusive as an empty listing, and without Fly's eventual consistency.
            return Observation(machine=machine, volume=volume, tagged_machines=(), named_volumes=())
        # The listings also answer a 404 on the recorded object: a loss needs a listing without
        # it (lifecycle.loss).
        tagged: tuple[MachineView, ...] | None = None
        tagged_failure: FlyFailure | None = None
        if not status.machine_id or machine.outcome == Lookup.GONE:
            tagged, tagged_failure = await self._list_tagged(instance)
        named: tuple[VolumeView, ...] | None = None
        named_failure: FlyFailure | None = None
        if (
            not status.volume_id
            or volume.outcome == Lookup.GONE
            or self._mounts_another_volume(instance, machine)
            or status.stranded_volume_id is not None
        ):
            named, named_failure = await self._list_named(instance)
        return Observation(
            machine=machine,
            volume=volume,
            tagged_machines=tagged,
            tagged_failure=tagged_failure,
            named_volumes=named,
            named_failure=named_failure,
        )

    @staticmethod
    def _mounts_another_volume(instance: Instance, machine: MachineLookup) -> bool:
        """The machine mounts a volume other than status.volumeId: if it is one of the
        instance's (named after it), status follows the mount instead of repairing it."""
        seen = machine.machine
        if machine.outcome != Lookup.FOUND or seen is None:
            return False
        path = instance.spec.volume.mount_path
        mounted = next((m.volume for m in seen.mounts if m.path == path and m.volume), None)
        return mounted is not None and mounted != instance.status.volume_id

    @staticmethod
    def _note_create_sent(sent_at: dict[str, float], uid: str) -> None:
        """Remember when a create for `uid` was sent: re-inserted, so that the map stays in the
        order of its times (`_forget_settled_creates` prunes from its oldest end)."""
        sent_at.pop(uid, None)
        sent_at[uid] = time.monotonic()

    def _forget_settled_creates(self) -> None:
        """Forget every create sent longer than `listing_settle` ago: it no longer stops a
        listing from proving anything (`_unsettled`). A deletion whose last passes answer from
        the record (`_known_objects`) never asks `_unsettled` again, so without this the time of
        a create its `DeleteVolume` had to keep (younger than `listing_settle` then) would stay
        for good. The maps are in send order (`_note_create_sent`): oldest first."""
        cutoff = time.monotonic() - self._timings.listing_settle.total_seconds()
        for sent_at in (self._volume_creates_sent, self._machine_creates_sent):
            while sent_at:
                uid, sent = next(iter(sent_at.items()))
                if sent > cutoff:
                    break
                del sent_at[uid]

    def _unsettled(self, instance: Instance, kind: str, sent_at: dict[str, float]) -> FlyFailure | None:
        """A listing that shows none of the instance's machines (or volumes) cannot prove "none"
        yet when a create whose answer was lost may have been sent less than `listing_settle`
        ago (Fly's lists are eventually consistent, and may not show it for a while):

        - by this process (it remembers when it sent one);
        - by an earlier operator process, for an instance older than this one (it may have died
          between the create and the status write): until `listing_settle` after this process
          started.

        This holds for a deletion too: a destroy that trusted a stale empty listing would
        release the finalizer and leave the object on Fly.
        """
        settle = self._timings.listing_settle.total_seconds()
        left = 0.0
        sent = sent_at.get(instance.uid)
        if sent is not None:
            left = settle - (time.monotonic() - sent)
            if left <= 0 and instance.deleting:
                del sent_at[instance.uid]  # settled: a deletion's last passes need it no more
        if self._older_than_this_process(instance):
            left = max(left, settle - (time.monotonic() - self._started_monotonic))
        inherited = self._inherited.get(instance.uid)
        if inherited is not None:
            left = max(left, settle - (time.monotonic() - inherited))
        if left <= 0:
            return None
        listed = (
            f"no {kind} of {instance.uid} listed yet"
            if kind == "machine"
            else (f"no volume named {volume_name(instance.uid)} listed yet")
        )
        return FlyFailure(
            kind=FailureKind.UNAVAILABLE,
            retryable=True,
            message=(
                f"{listed}, {left:.1f}s before a listing can prove that no {kind} create whose "
                "answer was lost happened"
            ),
            retry_after=left,
        )

    def _older_than_this_process(self, instance: Instance) -> bool:
        """Created (creationTimestamp, whole seconds) at least a second before this process
        started: an earlier operator may have acted on it."""
        created = instance.created_at
        return created is not None and created + timedelta(seconds=1) < self._started_at

    # ------------------------------------------------------------------ execute

    async def execute(self, action: Action, instance: Instance, env: ResolvedEnv | None) -> ActionResult:
        try:
            return await self._execute(action, instance, env)
        except FlyError as exc:
            if isinstance(action, CreateVolume | CreateMachine | ReplaceVolume):
                self._unsure.add(instance.uid)  # it may exist: from now on, only listings tell
                self._listed.discard(instance.uid)
            elif isinstance(exc, NotFound):
                if isinstance(action, DestroyMachine | DestroyStrandedMachine):
                    self._removed(instance.uid, machine_id=action.machine_id)
                elif isinstance(action, DeleteVolume | DeleteStrandedVolume):
                    self._removed(instance.uid, volume_id=action.volume_id)
            failure = to_failure(exc)
            if exc.status == 413 and isinstance(action, CreateMachine | StartMachine | RestartMachine):
                failure = replace(
                    failure, message=self._too_large_message(instance, env, action.volume_id, exc)
                )
            logger.warning(
                "fly action failed",
                extra={
                    "action": type(action).__name__,
                    "instance": f"{instance.namespace}/{instance.name}",
                    "error": failure.message,
                },
            )
            return ActionResult(failure=failure, machine=await self._best_effort_machine(action, instance))

    async def _best_effort_machine(self, action: Action, instance: Instance) -> MachineView | None:
        """After a failed machine action, the machine's real state (so status reports it)."""
        machine_id = getattr(action, "machine_id", None)
        if not machine_id:
            return None
        try:
            return machine_view(await self._fly.get_machine(instance.app, machine_id))
        except FlyError:
            return None

    async def _best_effort_volume(self, app: str, volume_id: str) -> VolumeView | None:
        try:
            return self._seen_volume(volume_view(await self._fly.get_volume(app, volume_id)))
        except FlyError:
            return None

    def _config(self, instance: Instance, env: ResolvedEnv | None, volume_id: str) -> dict[str, Any]:
        """The desired machine config; `InvalidConfig` (Stalled, no Fly call) when it is larger
        than Fly accepts — only spec.env and secretEnv values can make it so."""
        config = desired_config(instance, self._env_values(instance, env), volume_id)
        size = _json_size(config)
        if size > MAX_MACHINE_CONFIG_BYTES:
            raise InvalidConfig(
                f"the machine config is too large: {size} bytes rendered, over the "
                f"{MAX_MACHINE_CONFIG_BYTES}-byte limit; its env (spec.env and secretEnv values) is "
                f"{self._env_size(instance, env)} bytes: make it smaller"
            )
        return config

    @staticmethod
    def _env_values(instance: Instance, env: ResolvedEnv | None) -> dict[str, str]:
        return env.values if env and env.values is not None else dict(instance.spec.env)

    def _env_size(self, instance: Instance, env: ResolvedEnv | None) -> int:
        return sum(len(k.encode()) + len(v.encode()) for k, v in self._env_values(instance, env).items())

    def _too_large_message(
        self, instance: Instance, env: ResolvedEnv | None, volume_id: str, exc: FlyError
    ) -> str:
        size = _json_size(desired_config(instance, self._env_values(instance, env), volume_id))
        return (
            f"Fly refused the machine config as too large (HTTP 413): {size} bytes rendered, of "
            f"which env (spec.env and secretEnv values) {self._env_size(instance, env)} bytes: "
            f"make it smaller ({exc.message})"
        )

    async def _desired_machine_config(
        self,
        instance: Instance,
        env: ResolvedEnv | None,
        machine_id: str,
        volume_id: str,
        *,
        force: bool = False,
    ) -> MachineConfig | None:
        """The current config with our fields replaced (Fly has no partial update); None when
        the machine already has exactly that config (an update would only repeat itself),
        unless `force`: a restart always updates, so the machine's version records it."""
        current = await self._fly.get_machine(instance.app, machine_id)
        base = (current.config or current.incomplete_config or MachineConfig()).to_wire()
        desired = self._config(instance, env, volume_id)
        if not force and config_applied(base, desired):
            return None
        merged = merged_config(base, desired)
        return MachineConfig.model_validate(merged)

    async def _create_volume(
        self,
        instance: Instance,
        name: str,
        regions: list[str],
        size_gb: int | None,
        source_volume_id: str | None = None,
    ) -> ActionResult:
        """Create (or fork) a volume of the instance, sized for its guest, and record it as made
        by this process (what a later deletion answers from)."""
        self._sent_creates.add(instance.uid)
        self._note_create_sent(self._volume_creates_sent, instance.uid)
        guest = instance.spec.guest
        volume = await self._fly.create_volume(
            instance.app,
            name=name,
            regions=regions,
            size_gb=size_gb,
            source_volume_id=source_volume_id,
            compute=GuestConfig(cpu_kind=guest.cpu_kind.value, cpus=guest.cpus, memory_mb=guest.memory_mb),
        )
        made = self._seen_volume(volume_view(volume))
        self._made_for(instance.uid).volumes[made.id] = made
        return ActionResult(volume=made)

    async def _execute(self, action: Action, instance: Instance, env: ResolvedEnv | None) -> ActionResult:
        app = instance.app
        wait = self._timings.fly_wait_timeout.total_seconds()
        match action:
            case CreateVolume():
                return await self._create_volume(
                    instance, action.name, [action.region, *action.fallback_regions], action.size_gb
                )
            case ExtendVolume():
                try:
                    extended = await self._fly.extend_volume(app, action.volume_id, action.size_gb)
                except FlyError as exc:
                    # An extend that happened but whose answer was lost is retried, and the retry
                    # refused (400: not larger than the current size): the size tells.
                    return ActionResult(
                        failure=to_failure(exc), volume=await self._best_effort_volume(app, action.volume_id)
                    )
                return ActionResult(volume=self._seen_volume(volume_view(extended.volume)))
            case CreateMachine():
                self._sent_creates.add(instance.uid)
                self._note_create_sent(self._machine_creates_sent, instance.uid)
                config = MachineConfig.model_validate(self._config(instance, env, action.volume_id))
                machine = await self._fly.create_machine(
                    app, config, owner=owner_of(instance), region=action.region
                )
                view = machine_view(machine)
                self._made_for(instance.uid).machines[view.id] = view
                return ActionResult(machine=view)
            case AwaitState():
                # A machine just created may answer 404 for a moment (Fly's eventual consistency).
                grace = wait
                try:
                    reached_state = await self._fly.wait_for_state(
                        app,
                        action.machine_id,
                        action.state,
                        instance_id=action.instance_id,
                        timeout=wait,
                        not_found_grace=grace,
                    )
                except WaitTimeout as exc:
                    current = await self._fly.get_machine(app, action.machine_id, not_found_grace=grace)
                    return ActionResult(failure=to_failure(exc), machine=machine_view(current))
                if action.seen is not None and action.seen.id == action.machine_id:
                    # The wait's answer (state, version) is all that changed since the machine
                    # was seen: a GET would only repeat the rest.
                    return ActionResult(
                        machine=replace(
                            action.seen,
                            state=reached_state.state or action.state,
                            instance_id=reached_state.version or action.seen.instance_id,
                        )
                    )
                reached = await self._fly.get_machine(app, action.machine_id, not_found_grace=grace)
                return ActionResult(machine=machine_view(reached))
            case StartMachine():
                # Update puts the desired config in place; Fly (since 2026) leaves a stopped
                # machine stopped after an update, so the client starts it once it settles.
                update = await self._desired_machine_config(
                    instance, env, action.machine_id, action.volume_id
                )
                if update is None:
                    # Already updated (say, by a restart whose start failed): only start it.
                    await self._fly.start_machine_and_wait(app, action.machine_id, timeout=wait)
                else:
                    await self._fly.update_and_start(app, action.machine_id, update, timeout=wait)
                return ActionResult(machine=machine_view(await self._fly.get_machine(app, action.machine_id)))
            case StopMachine():
                await self._fly.stop_machine_and_wait(app, action.machine_id, timeout=wait)
                return ActionResult(machine=machine_view(await self._fly.get_machine(app, action.machine_id)))
            case RestartMachine():
                if action.resume_from is not None:
                    current = await self._fly.get_machine(app, action.machine_id)
                    if current.current_version != action.resume_from:
                        # The guard's update already went in (its answer or the status write
                        # was lost): never stop and update again; start the new version if
                        # needed, and wait.
                        if current.state == "starting":
                            await self._fly.wait_for_state(app, action.machine_id, "started", timeout=wait)
                        elif current.state != "started":
                            await self._fly.start_machine_and_wait(app, action.machine_id, timeout=wait)
                        return ActionResult(
                            machine=machine_view(await self._fly.get_machine(app, action.machine_id))
                        )
                try:
                    await self._fly.stop_machine_and_wait(app, action.machine_id, timeout=wait)
                except WaitTimeout:
                    # KiloClaw tolerates a stop that does not settle in time: the update below
                    # replaces the machine in place anyway.
                    logger.info(
                        "stop did not settle before the update", extra={"machine_id": action.machine_id}
                    )
                forced = await self._desired_machine_config(
                    instance, env, action.machine_id, action.volume_id, force=True
                )
                assert forced is not None
                await self._fly.update_and_start(app, action.machine_id, forced, timeout=wait)
                await self._fly.wait_for_state(app, action.machine_id, "started", timeout=wait)
                return ActionResult(machine=machine_view(await self._fly.get_machine(app, action.machine_id)))
            case DestroyMachine():
                await self._fly.destroy_machine(app, action.machine_id, force=True)
                self._removed(instance.uid, machine_id=action.machine_id)
                # One long poll until Fly has destroyed it (404 counts), rather than a GET per
                # pass: the volume is released only after that. A wait that fails or times out
                # changes nothing: the destroy is accepted, and the volume delete tells.
                try:
                    await self._fly.wait_for_state(app, action.machine_id, "destroyed", timeout=wait)
                except FlyError as exc:
                    logger.info(
                        "machine not seen destroyed yet",
                        extra={"machine_id": action.machine_id, "error": str(exc)},
                    )
                return ActionResult()
            case DestroyStrandedMachine():
                await self._fly.destroy_machine(app, action.machine_id, force=True)
                self._removed(instance.uid, machine_id=action.machine_id)
                return ActionResult()
            case ReplaceVolume():
                # A fork takes its size from the source (Fly rejects `size_gb` with it).
                return await self._create_volume(
                    instance,
                    action.name,
                    [action.region, *action.fallback_regions],
                    None if action.fork else action.size_gb,
                    source_volume_id=action.stranded_volume_id if action.fork else None,
                )
            case DeleteStrandedVolume():
                await self._fly.delete_volume(app, action.volume_id)
                self._volume_sizes.pop(action.volume_id, None)
                self._removed(instance.uid, volume_id=action.volume_id)
                return ActionResult()
            case DeleteVolume():
                await self._fly.delete_volume(app, action.volume_id)
                self._volume_sizes.pop(action.volume_id, None)
                self._removed(instance.uid, volume_id=action.volume_id)
                self._sent_creates.discard(instance.uid)
                # When this process last sent a create is forgotten only once it no longer
                # matters: a create whose answer was lost moments ago may still be missing from
                # the listings that must prove the deletion complete (`_unsettled`). Every
                # instance's settled ones go here, this one's included.
                self._forget_settled_creates()
                return ActionResult()
            case _:
                # Exhaustive: mypy names this match when a new Action is not executed here.
                assert_never(action)
