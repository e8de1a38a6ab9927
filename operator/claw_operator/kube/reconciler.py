"""One reconcile pass, and the loop of passes: read → observe → decide → act → settle → write.

The race KiloClaw's reviewer found (a failure handler's read-then-write clobbering a concurrent
destroy) cannot happen here: every pass decides from one read of the object, and its single
status write is a PUT carrying that read's resourceVersion. If anything changed meanwhile —
a deletion, a spec edit — the apiserver answers 409 and the pass is thrown away, re-read and
re-decided. A Fly mutation already made by the discarded pass is found again by the next one:
every Fly object is tagged with (machines) or named after (volumes) the ClawInstance UID.
A periodic check that would do nothing ends on the object its watch holds (`_quiet_pass`);
anything it would do is decided again on a fresh read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, assert_never

from claw_operator.api import FINALIZER
from claw_operator.edge import ResolvedEnv
from claw_operator.kube.instance import Parsed, parse, to_instance
from claw_operator.kube.kubeapi import KubeApi, StatusConflict
from claw_operator.kube.secretenv import resolve_env
from claw_operator.lifecycle import cadence, decide, settle
from claw_operator.lifecycle.model import (
    Action,
    ActionResult,
    AwaitState,
    CreateMachine,
    CreateVolume,
    Decision,
    DeleteStrandedVolume,
    DeleteVolume,
    DestroyMachine,
    DestroyStrandedMachine,
    EventRecord,
    ExtendVolume,
    Instance,
    Lookup,
    MachineLookup,
    Observation,
    ReplaceVolume,
    RestartMachine,
    StartMachine,
    StopMachine,
    Timings,
    VolumeLookup,
)

logger = logging.getLogger("claw_operator.reconcile")

# A pass that keeps asking for an immediate requeue is cut off after this many passes; the
# periodic check picks it up again (guards against a decision loop hammering Fly).
MAX_PASSES = 12
MAX_CONFLICT_RETRIES = 5
FINALIZER_WAIT = 1.0
# An instance's very first action still running after this long (an ambiguous create being
# resolved by listing): its first status is written meanwhile (`Decision.write_if_slow`).
FIRST_STATUS_AFTER = 2.0


class Observer(Protocol):
    async def observe(self, instance: Instance) -> Observation: ...


class Executor(Protocol):
    async def execute(self, action: Action, instance: Instance, env: ResolvedEnv | None) -> ActionResult: ...


EventSink = Callable[[dict[str, Any], EventRecord], Awaitable[None]]


@dataclass
class ObjectState:
    """What the operator keeps in memory per ClawInstance (never needed for correctness)."""

    failures: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The object last turned into an Instance, parsed (a quiet check parses nothing again).
    parsed: Parsed | None = None
    # When (monotonic) this process last read the object fresh from the apiserver.
    read_at: float | None = None


@dataclass
class PassScope:
    """Everything one pass reads, learns and decides (Cluster API's per-reconcile scope). The
    steps of `docs/design.md` fill it in order; each field says when it is set."""

    # Before the pass: the object as last read, its status being what this run decided so far.
    obj: dict[str, Any]
    # No further pass follows in this run (the run's pass budget is spent).
    last: bool
    # 1. read: the instance as the decisions see it, and its rendered env (values in memory
    # only; None while paused or deleting, when no config is rendered).
    instance: Instance | None = None
    env: ResolvedEnv | None = None
    # 2. observe: what Fly shows (empty when paused or without a Fly app: no Fly call at all).
    observed: Observation = field(default_factory=Observation)
    # 3. decide, then 5. settle: the pass's one Decision.
    decision: Decision | None = None
    # 4. act: the action executed and what it gave (both None when nothing was done).
    action: Action | None = None
    result: ActionResult | None = None

    @property
    def skips_fly(self) -> bool:
        """Paused, or no Fly app to look in: the pass makes no Fly call (the decisions say why)."""
        instance = self.instance
        return instance is None or instance.paused or not instance.app

    @property
    def follows(self) -> bool:
        """A next pass follows at once, in this run."""
        instance, decision = self.instance, self.decision
        return (
            decision is not None
            and instance is not None
            and decision.requeue_after == 0
            and not self.last
            and not instance.deleting
            and not instance.paused
        )


class StatusWriter:
    """Step 6 for a run of passes: one status write per pass, a PUT of the status subresource
    carrying the resourceVersion the pass read (409 → `StatusConflict`, and the caller re-reads
    and re-decides); the pass's Events after it.

    It owns the three ways a status reaches the apiserver (plus, once per instance, the first
    status written while a slow first action runs: `Reconciler._act`): written now; carried
    into the next pass's write when the decision allows it (`Decision.write_can_wait`: a created volume, found
    again by its name if that write never happens); or not at all when nothing changed. It also
    remembers which Events the run posted, so a pass thrown away by a 409 after its Fly action
    (which posts them: the action happened) and the re-decided pass that finds the result tell
    the story once.
    """

    def __init__(self, kube: KubeApi, events: EventSink, obj: dict[str, Any]) -> None:
        self._kube = kube
        self._events = events
        self._posted: set[tuple[str, str, str]] = set()
        self.restart_from(obj)

    def restart_from(self, obj: dict[str, Any]) -> None:
        """After a conflict: the object as read again (Events posted so far stay posted)."""
        self._persisted_source = obj.get("status")
        self.persisted: dict[str, Any] = self._persisted_source or {}

    def unchanged(self, decision: Decision, parsed: Parsed | None = None) -> bool:
        """The decided status is the one persisted: `write` would make no request. `parsed`:
        the persisted status as parsed, when the caller has it — equal models of a status that
        round-trips (`Parsed.status_is_canonical`) are equal on the wire, and comparing them
        costs a fraction of rendering the decided status (a periodic check's most frequent
        question, issue 13)."""
        if (
            parsed is not None
            and parsed.status_source is self._persisted_source
            and decision.status == parsed.status
            and parsed.status_is_canonical
        ):
            return True
        return decision.status.to_wire() == self.persisted

    async def write(self, scope: PassScope) -> dict[str, Any]:
        """Write the pass's status (or hold it for the next pass); return the object as it now
        stands. Raises StatusConflict, after posting the Events of an action that was made."""
        assert scope.decision is not None
        obj = scope.obj
        new_status = scope.decision.status.to_wire()
        if new_status == self.persisted:  # `unchanged`
            return {**obj, "status": new_status} if new_status != (obj.get("status") or {}) else obj
        if scope.decision.write_can_wait and scope.follows:
            # Written with the next pass's status, still conditional on this read's version.
            return {**obj, "status": new_status}
        try:
            obj = await self._kube.replace_status(obj, new_status)
        except StatusConflict:
            if scope.result is not None:
                # The Fly action happened whatever becomes of this status: say so once.
                await self.post(obj, scope.decision.events)
            raise
        self.restart_from(obj)
        return obj

    async def post(self, obj: dict[str, Any], events: Sequence[EventRecord]) -> None:
        for event in events:
            key = (event.type.value, event.reason, event.message)
            if key not in self._posted:
                self._posted.add(key)
                await self._events(obj, event)


def carry_over(
    observed: Observation, action: Action | None, result: ActionResult | None, decision: Decision
) -> Observation | None:
    """The observation the next pass of the same run would make, when this pass already knows it.

    A pass that created (or started) something and asks for the next pass at once got the
    object's state from Fly's own answer milliseconds ago; observing again would only repeat
    the same GETs (and, before a machine create, the same list). The machine listing taken
    before a volume create stays conclusive: no machine was created since, and this run holds
    the object's lock. Anything else (no action, a failure, a deletion) is observed afresh.
    """
    if action is None or result is None or not result.ok:
        return None
    status = decision.status
    match action:
        case CreateVolume() if result.volume is not None and status.volume_id == result.volume.id:
            if status.machine_id is not None or observed.tagged_machines is None:
                return None
            return replace(observed, volume=VolumeLookup(Lookup.FOUND, result.volume), named_volumes=None)
        case CreateMachine() | StartMachine() if (
            result.machine is not None and status.machine_id == result.machine.id
        ):
            return replace(
                observed,
                machine=MachineLookup(Lookup.FOUND, result.machine),
                tagged_machines=None,
                tagged_failure=None,
                named_volumes=None,
            )
        case (
            CreateVolume()
            | CreateMachine()
            | StartMachine()
            | ExtendVolume()
            | AwaitState()
            | StopMachine()
            | RestartMachine()
            | DestroyMachine()
            | DeleteVolume()
            | DestroyStrandedMachine()
            | ReplaceVolume()
            | DeleteStrandedVolume()
        ):
            # Observed afresh: what the next pass needs is not all in Fly's answer.
            return None
        case _:
            assert_never(action)


@dataclass(frozen=True)
class PassOutcome:
    """How a run of passes ended: when to look again, and whether the destroy is complete."""

    requeue_after: float | None  # seconds; None = the object is gone
    finalized: bool = False
    status: dict[str, Any] | None = None
    retry: bool = False  # the last pass failed and backs off (metrics)
    conflicted: bool = False  # gave up after repeated status conflicts (metrics)
    # The object as the run last read or wrote it: what the run has already taken into account.
    obj: dict[str, Any] | None = None


class Reconciler:
    def __init__(
        self,
        kube: KubeApi,
        observer: Observer,
        executor: Executor,
        events: EventSink,
        *,
        timings: Timings,
        default_app: str | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        fresh_every: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`fresh_every`: seconds after which an instance's check reads it fresh even when the
        watched object would do (None: never forced). A watch that went deaf delivers no change,
        so only a fresh read sees the user's edits — and the status write it leads to is what
        lets liveness (`kube/health.py`) notice the silence."""
        self._fresh_every = fresh_every
        self._monotonic = monotonic
        self._kube = kube
        self._observer = observer
        self._executor = executor
        self._events = events
        self._timings = timings
        self._default_app = default_app
        self._clock = clock
        self._rng = rng or random.Random()
        self._objects: dict[str, ObjectState] = {}

    def forget(self, uid: str) -> None:
        self._objects.pop(uid, None)

    async def exists(self, namespace: str, name: str) -> bool:
        return await self._kube.get_instance(namespace, name) is not None

    def _state(self, uid: str) -> ObjectState:
        return self._objects.setdefault(uid, ObjectState())

    async def reconcile(
        self,
        namespace: str,
        name: str,
        *,
        deleting: bool = False,
        watched: Mapping[str, Any] | None = None,
    ) -> PassOutcome:
        """Run passes until the decisions settle; return when to check again.

        The periodic loop calls with `deleting=False` and stops (None) once the object is being
        deleted: from then on the delete handler alone drives the destroy.

        `watched`: the object as the watch last delivered it (kopf's body). The run's first
        pass is then decided on it (`_quiet_pass`); when that pass would do nothing at all, the
        run ends there without a Kubernetes request. Otherwise the object is read fresh and the
        passes go on as without it, every action and write decided on the fresh read.
        """
        carried: Observation | None = None
        if watched is not None and not deleting and self._may_be_quiet(watched):
            quiet, seen = await self._quiet_pass(watched)
            if quiet is not None:
                return quiet
            carried = seen
        obj = await self._kube.get_instance(namespace, name)
        if obj is None:
            return PassOutcome(None)
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not deleting:
            return PassOutcome(None)
        if not meta.get("deletionTimestamp") and FINALIZER not in (meta.get("finalizers") or []):
            # Nothing is created on Fly before our finalizer guards the object: a delete landing
            # first would otherwise remove it with nothing left to clean the Fly objects up.
            # kopf adds the finalizer on first sight; the event handler wakes us when it lands.
            return PassOutcome(FINALIZER_WAIT, obj=obj)
        # The Fly observation of the quiet pass holds for the fresh read only when the object did
        # not change in between; otherwise Fly is observed again.
        if watched is not None and meta.get("resourceVersion") != (watched.get("metadata") or {}).get(
            "resourceVersion"
        ):
            carried = None
        state = self._state(meta["uid"])
        state.read_at = self._monotonic()
        async with state.lock:
            conflicts = 0
            passes = 0
            writer = StatusWriter(self._kube, self._events, obj)
            while True:
                passes += 1
                scope = PassScope(obj=obj, last=passes >= MAX_PASSES)
                try:
                    decision = await self._one_pass(scope, state, writer, carried)
                except StatusConflict:
                    conflicts += 1
                    logger.info(
                        "status write conflicted; re-reading and re-deciding",
                        extra={"action": "status_conflict", "instance": f"{namespace}/{name}"},
                    )
                    fresh = await self._kube.get_instance(namespace, name)
                    if fresh is None or (fresh["metadata"].get("deletionTimestamp") and not deleting):
                        return PassOutcome(None)
                    obj, carried = fresh, None
                    writer.restart_from(obj)
                    if conflicts > MAX_CONFLICT_RETRIES:
                        return PassOutcome(1.0, conflicted=True)
                    continue
                obj = scope.obj
                carried = None
                if scope.follows:
                    carried = carry_over(scope.observed, scope.action, scope.result, decision)
                if decision.finalize:
                    return PassOutcome(0.0, finalized=True, status=obj.get("status"))
                if decision.requeue_after == 0 and passes < MAX_PASSES:
                    continue
                return PassOutcome(
                    self._next_delay(decision), status=obj.get("status"), retry=decision.retry, obj=obj
                )

    def _next_delay(self, decision: Decision) -> float:
        if decision.requeue_after is not None and decision.requeue_after > 0:
            base = decision.requeue_after
            # Retries spread out (±25 %) so a fleet hit by the same outage does not return in step.
            return base * (0.75 + 0.5 * self._rng.random()) if decision.retry else base
        phase = decision.status.phase
        # No phase yet (stalled before anything was created: no app, a missing Secret) is
        # the idle cadence too; a spec change or a reconcile request wakes the loop anyway.
        interval = cadence(phase, self._timings).total_seconds()
        jitter = self._timings.poll_jitter.total_seconds() * self._rng.random()
        return max(interval + jitter, 0.05)

    async def _act(
        self, scope: PassScope, decision: Decision, instance: Instance, writer: StatusWriter
    ) -> ActionResult:
        """Execute the pass's action. An instance without any status yet (`write_if_slow`) gets
        the decided one written if the action is still running after `FIRST_STATUS_AFTER`."""
        assert decision.action is not None
        task = asyncio.ensure_future(self._executor.execute(decision.action, instance, scope.env))
        try:
            if decision.write_if_slow:
                done, _ = await asyncio.wait({task}, timeout=FIRST_STATUS_AFTER)
                if not done:
                    await self._first_status(scope, decision, writer)
            return await task
        finally:
            if not task.done():
                task.cancel()

    async def _first_status(self, scope: PassScope, decision: Decision, writer: StatusWriter) -> None:
        """The decided status, written while the instance's first action runs. On a 409 (a user
        edit since the read) it goes onto the object as it is now, if that still has no status
        and is neither deleting nor paused; the pass's own write, after the action, still
        carries the version it read, conflicts, and the pass is re-decided as usual."""
        scope.decision = decision
        try:
            scope.obj = await writer.write(scope)
            return
        except StatusConflict:
            pass
        meta = scope.obj["metadata"]
        fresh = await self._kube.get_instance(meta["namespace"], meta["name"])
        if fresh is None or fresh.get("status") or fresh["metadata"].get("deletionTimestamp"):
            return
        if to_instance(fresh, default_app=self._default_app, env=None, failures=0).paused:
            return
        with contextlib.suppress(StatusConflict):
            await self._kube.replace_status(fresh, decision.status.to_wire())

    def _may_be_quiet(self, watched: Mapping[str, Any]) -> bool:
        """A check may end on the watched object unless the instance was last read fresh more
        than `fresh_every` ago (or never, by this process)."""
        if self._fresh_every is None:
            return True
        uid = (watched.get("metadata") or {}).get("uid")
        state = self._objects.get(uid) if uid else None
        return (
            state is not None
            and state.read_at is not None
            and (self._monotonic() - state.read_at < self._fresh_every)
        )

    async def _quiet_pass(self, watched: Mapping[str, Any]) -> tuple[PassOutcome | None, Observation | None]:
        """A pass decided on the object as the watch delivered it, that may only end the run.

        When its decision has no Fly action, no status change to write (`StatusWriter.
        unchanged`), no Events, no logs and no pass to follow at once, the run ends with it:
        no Kubernetes request (besides the Secret of a `secretEnv`, read as in every pass).
        Otherwise (None, the Fly observation it made): the caller reads the object fresh and
        decides again, on the fresh object. `watched` is only read (the scheduler keeps a new
        object for each watch event: `scheduler.kept`, without managedFields); the shallow copy
        taken here stays the object of one resourceVersion while the pass awaits Fly.
        """
        obj = dict(watched)
        meta = obj.get("metadata") or {}
        if (
            not meta.get("uid")
            or meta.get("deletionTimestamp")
            or FINALIZER not in (meta.get("finalizers") or [])
        ):
            return None, None  # the fresh read decides (gone, deleting, or no pass yet)
        state = self._state(meta["uid"])
        async with state.lock:
            scope = PassScope(obj=obj, last=False)
            decision = await self._decide(scope, state, None)
            if (
                decision.action is not None
                or decision.events
                or decision.logs
                or decision.finalize
                or decision.requeue_after == 0
                or not StatusWriter(self._kube, self._events, obj).unchanged(decision, state.parsed)
            ):
                return None, None if scope.skips_fly else scope.observed
            state.failures = state.failures + 1 if decision.retry else 0
        return (
            PassOutcome(self._next_delay(decision), status=obj.get("status"), retry=decision.retry, obj=obj),
            None,
        )

    async def _decide(self, scope: PassScope, state: ObjectState, carried: Observation | None) -> Decision:
        """Steps 1-3 of a pass (read, observe, decide) on `scope.obj`; fills `scope`."""
        # 1. read: the object (already in scope) as the decisions see it, and its env.
        meta = scope.obj["metadata"]
        state.parsed = parse(scope.obj, state.parsed)
        instance = to_instance(
            scope.obj, default_app=self._default_app, env=None, failures=state.failures, parsed=state.parsed
        )
        if not instance.paused and not instance.deleting:
            scope.env = await resolve_env(self._kube, meta["namespace"], instance.spec)
            instance = replace(instance, env_digest=scope.env.digest, secret_error=scope.env.error)
        scope.instance = instance
        # 2. observe.
        if not scope.skips_fly:
            scope.observed = carried if carried is not None else await self._observer.observe(instance)
        # 3. decide.
        return decide(instance, scope.observed, self._clock(), self._timings)

    async def _one_pass(
        self, scope: PassScope, state: ObjectState, writer: StatusWriter, carried: Observation | None
    ) -> Decision:
        """One pass, the six steps of docs/design.md; fills `scope` (its `obj` ends as the
        object after the write). `carried`: what the previous pass already knows the next
        observation would be (`carry_over`)."""
        meta = scope.obj["metadata"]
        decision = await self._decide(scope, state, carried)
        instance = scope.instance
        assert instance is not None
        # 4. act (at most one Fly mutation) and 5. settle.
        if decision.action is not None and not scope.skips_fly:
            scope.action = decision.action
            scope.result = await self._act(scope, decision, instance, writer)
            decision = settle(instance, decision, scope.result, self._clock(), self._timings)
        scope.decision = decision
        # 6. write once (conditional), then the logs and Events of the pass.
        scope.obj = await writer.write(scope)
        state.failures = state.failures + 1 if decision.retry else 0
        ref = f"{meta['namespace']}/{meta['name']}"
        for record in decision.logs:
            logger.info(
                record.action,
                extra={
                    "action": record.action,
                    "instance": ref,
                    **{f"d_{k}": v for k, v in record.details.items()},
                },
            )
        await writer.post(scope.obj, decision.events)
        return decision
