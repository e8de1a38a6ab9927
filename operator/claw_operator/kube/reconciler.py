"""One reconcile pass, and the loop of passes: read → observe → decide → act → settle → write.

The race KiloClaw's reviewer found (a failure handler's read-then-write clobbering a concurrent
destroy) cannot happen here: every pass decides from one read of the object, and its single
status write is a PUT carrying that read's resourceVersion. If anything changed meanwhile —
a deletion, a spec edit — the apiserver answers 409 and the pass is thrown away, re-read and
re-decided. A Fly mutation already made by the discarded pass is found again by the next one:
every Fly object is tagged with (machines) or named after (volumes) the ClawInstance UID.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from claw_operator.api import FINALIZER
from claw_operator.kube.instance import to_instance
from claw_operator.kube.kubeapi import KubeApi, StatusConflict
from claw_operator.kube.secretenv import ResolvedEnv, resolve_env
from claw_operator.lifecycle import cadence, decide, settle
from claw_operator.lifecycle.model import (
    Action,
    ActionResult,
    CreateMachine,
    CreateVolume,
    Decision,
    EventRecord,
    Instance,
    Lookup,
    MachineLookup,
    Observation,
    StartMachine,
    Timings,
    VolumeLookup,
)

logger = logging.getLogger("claw_operator.reconcile")

# A pass that keeps asking for an immediate requeue is cut off after this many passes; the
# periodic check picks it up again (guards against a decision loop hammering Fly).
MAX_PASSES = 12
MAX_CONFLICT_RETRIES = 5
FINALIZER_WAIT = 1.0


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


@dataclass
class _Run:
    """What one run of passes carries from a pass to the next (all under the object's lock)."""

    obj: dict[str, Any]  # the object as read, with the status the passes decided so far
    persisted: dict[str, Any]  # the status the apiserver holds (as of obj's resourceVersion)
    # What the next pass would observe, known from this pass's own result (see `carry_over`).
    carried: Observation | None = None


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
    return None


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
    ) -> None:
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

    def _state(self, uid: str) -> ObjectState:
        return self._objects.setdefault(uid, ObjectState())

    async def reconcile(
        self,
        namespace: str,
        name: str,
        *,
        deleting: bool = False,
        last_seen: Mapping[str, Any] | None = None,
    ) -> PassOutcome:
        """Run passes until the decisions settle; return when to check again.

        The periodic loop calls with `deleting=False` and stops (None) once the object is being
        deleted: from then on the delete handler alone drives the destroy. `last_seen`: the
        object as the watch last showed it; while it has no finalizer yet the pass cannot start
        anyway, so the apiserver is not asked (kopf's finalizer patch wakes the loop).
        """
        if last_seen is not None and not deleting:
            seen = last_seen.get("metadata") or {}
            if not seen.get("deletionTimestamp") and FINALIZER not in (seen.get("finalizers") or []):
                return PassOutcome(FINALIZER_WAIT)
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
        state = self._state(meta["uid"])
        async with state.lock:
            conflicts = 0
            passes = 0
            # Events this run posted: a pass thrown away by a 409 after its Fly action already
            # posted them, and the re-decided pass that finds the result (a restart's new
            # version, say) tells the same story; it is told once.
            posted: set[tuple[str, str, str]] = set()
            run = _Run(obj=obj, persisted=obj.get("status") or {})
            while True:
                passes += 1
                try:
                    decision = await self._one_pass(run, state, posted, last=passes >= MAX_PASSES)
                    obj = run.obj
                except StatusConflict:
                    conflicts += 1
                    logger.info(
                        "status write conflicted; re-reading and re-deciding",
                        extra={"action": "status_conflict", "instance": f"{namespace}/{name}"},
                    )
                    fresh = await self._kube.get_instance(namespace, name)
                    if fresh is None or (fresh["metadata"].get("deletionTimestamp") and not deleting):
                        return PassOutcome(None)
                    obj = fresh
                    run = _Run(obj=obj, persisted=obj.get("status") or {})
                    if conflicts > MAX_CONFLICT_RETRIES:
                        return PassOutcome(1.0, conflicted=True)
                    continue
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

    async def _post(self, obj: dict[str, Any], event: EventRecord, posted: set[tuple[str, str, str]]) -> None:
        key = (event.type.value, event.reason, event.message)
        if key in posted:
            return
        posted.add(key)
        await self._events(obj, event)

    async def _one_pass(
        self, run: _Run, state: ObjectState, posted: set[tuple[str, str, str]], *, last: bool
    ) -> Decision:
        """One pass over `run.obj`; updates `run`. `last`: no pass follows in this run."""
        obj = run.obj
        meta = obj["metadata"]
        ref = f"{meta['namespace']}/{meta['name']}"
        instance = to_instance(obj, default_app=self._default_app, env=None, failures=state.failures)
        env: ResolvedEnv | None = None
        if not instance.paused and not instance.deleting:
            env = await resolve_env(self._kube, meta["namespace"], instance.spec)
            instance = replace(instance, env_digest=env.digest, secret_error=env.error)
        carried, run.carried = run.carried, None
        # Paused, or no Fly app to look in: no Fly call at all (the decisions report why).
        skip_fly = instance.paused or not instance.app
        if skip_fly:
            observed = Observation()
        elif carried is not None:
            observed = carried
        else:
            observed = await self._observer.observe(instance)
        now = self._clock()
        decision = decide(instance, observed, now, self._timings)
        acted = False
        action, result = decision.action, None
        if action is not None and not skip_fly:
            result = await self._executor.execute(action, instance, env)
            decision = settle(instance, decision, result, self._clock(), self._timings)
            acted = True
        new_status = decision.status.to_wire()
        follows = decision.requeue_after == 0 and not last and not instance.deleting and not instance.paused
        if follows:
            run.carried = carry_over(observed, action, result, decision)
        if new_status != run.persisted and decision.write_can_wait and follows:
            # Written with the next pass's status, still conditional on this read's version.
            obj = {**obj, "status": new_status}
        elif new_status != run.persisted:
            try:
                obj = await self._kube.replace_status(obj, new_status)
            except StatusConflict:
                if acted:
                    # The Fly action happened whatever becomes of this status: say so once.
                    # The re-decided pass finds its result by tag or name (no event of its own).
                    for event in decision.events:
                        await self._post(obj, event, posted)
                raise
            run.persisted = obj.get("status") or {}
        elif new_status != (obj.get("status") or {}):
            obj = {**obj, "status": new_status}
        run.obj = obj
        state.failures = state.failures + 1 if decision.retry else 0
        for record in decision.logs:
            logger.info(
                record.action,
                extra={
                    "action": record.action,
                    "instance": ref,
                    **{f"d_{k}": v for k, v in record.details.items()},
                },
            )
        for event in decision.events:
            await self._post(obj, event, posted)
        return decision
