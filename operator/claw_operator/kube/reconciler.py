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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from claw_operator.api import FINALIZER
from claw_operator.kube.instance import is_paused, to_instance
from claw_operator.kube.kubeapi import KubeApi, StatusConflict
from claw_operator.kube.secretenv import ResolvedEnv, resolve_env
from claw_operator.lifecycle import cadence, decide, settle
from claw_operator.lifecycle.model import (
    Action,
    ActionResult,
    Decision,
    EventRecord,
    Instance,
    Observation,
    Timings,
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


@dataclass(frozen=True)
class PassOutcome:
    """How a run of passes ended: when to look again, and whether the destroy is complete."""

    requeue_after: float | None  # seconds; None = the object is gone
    finalized: bool = False
    status: dict[str, Any] | None = None
    retry: bool = False  # the last pass failed and backs off (metrics)
    conflicted: bool = False  # gave up after repeated status conflicts (metrics)


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

    async def reconcile(self, namespace: str, name: str, *, deleting: bool = False) -> PassOutcome:
        """Run passes until the decisions settle; return when to check again.

        The periodic loop calls with `deleting=False` and stops (None) once the object is being
        deleted: from then on the delete handler alone drives the destroy.
        """
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
            return PassOutcome(FINALIZER_WAIT)
        state = self._state(meta["uid"])
        async with state.lock:
            conflicts = 0
            passes = 0
            while True:
                passes += 1
                try:
                    decision, obj = await self._one_pass(obj, state)
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
                    if conflicts > MAX_CONFLICT_RETRIES:
                        return PassOutcome(1.0, conflicted=True)
                    continue
                if decision.finalize:
                    return PassOutcome(0.0, finalized=True, status=obj.get("status"))
                if decision.requeue_after == 0 and passes < MAX_PASSES:
                    continue
                return PassOutcome(self._next_delay(decision), status=obj.get("status"), retry=decision.retry)

    def _next_delay(self, decision: Decision) -> float:
        if decision.requeue_after is not None and decision.requeue_after > 0:
            base = decision.requeue_after
            # Retries spread out (±25 %) so a fleet hit by the same outage does not return in step.
            return base * (0.75 + 0.5 * self._rng.random()) if decision.retry else base
        phase = decision.status.phase
        interval = cadence(phase, self._timings).total_seconds() if phase else 0.0
        jitter = self._timings.poll_jitter.total_seconds() * self._rng.random()
        return max(interval + jitter, 0.05)

    async def _one_pass(self, obj: dict[str, Any], state: ObjectState) -> tuple[Decision, dict[str, Any]]:
        meta = obj["metadata"]
        ref = f"{meta['namespace']}/{meta['name']}"
        env: ResolvedEnv | None = None
        if not is_paused(obj) and not meta.get("deletionTimestamp"):
            spec = to_instance(obj, default_app=self._default_app, env=None, failures=0).spec
            env = await resolve_env(self._kube, meta["namespace"], spec)
        instance = to_instance(obj, default_app=self._default_app, env=env, failures=state.failures)
        # Paused, or no Fly app to look in: no Fly call at all (the decisions report why).
        skip_fly = instance.paused or not instance.app
        observed = Observation() if skip_fly else await self._observer.observe(instance)
        now = self._clock()
        decision = decide(instance, observed, now, self._timings)
        acted = False
        if decision.action is not None and not skip_fly:
            result = await self._executor.execute(decision.action, instance, env)
            decision = settle(instance, decision, result, self._clock(), self._timings)
            acted = True
        new_status = decision.status.to_wire()
        if new_status != (obj.get("status") or {}):
            try:
                obj = await self._kube.replace_status(obj, new_status)
            except StatusConflict:
                if acted:
                    # The Fly action happened whatever becomes of this status: say so once.
                    # The re-decided pass finds its result by tag or name (no event of its own).
                    for event in decision.events:
                        await self._events(obj, event)
                raise
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
            await self._events(obj, event)
        return decision, obj
