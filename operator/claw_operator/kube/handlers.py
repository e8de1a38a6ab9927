"""The kopf wiring: thin handlers that only call into the Reconciler.

- A **daemon** per ClawInstance is its reconcile loop: a pass at once (create or resume), then
  one at the phase's cadence plus jitter (KiloClaw's alarm), or sooner when woken.
- An **event** handler wakes the daemon when something the user controls changed (generation,
  the paused / reconcile-requested-at annotations) — never for our own status writes, which
  would double the Fly traffic.
- The **delete** handler runs the two-phase destroy; kopf holds our finalizer
  (`claw.dev/finalizer`) until it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from claw_operator.api import (
    FINALIZER,
    GROUP,
    PAUSED_ANNOTATION,
    PLURAL,
    RECONCILE_REQUEST_ANNOTATION,
    VERSION,
)
from claw_operator.api.reasons import EventReason
from claw_operator.kube import metrics as m
from claw_operator.kube.events import post_event
from claw_operator.kube.health import WatchHealth
from claw_operator.kube.metrics import OperatorMetrics
from claw_operator.kube.reconciler import PassOutcome, Reconciler
from claw_operator.kube.shards import LeaseKeeper, ShardFenced
from claw_operator.lifecycle.model import EventRecord, EventType

logger = logging.getLogger("claw_operator.handlers")

# A loop whose object has no finalizer yet looks again after this long at the latest: kopf's
# finalizer patch comes back as a watch event, which wakes it at once (`wake_on_change`); the
# timeout is only the fallback. (At 1 s, a fleet queued behind kopf's patches spun through
# thousands of empty wake-ups during a burst, issue 13.)
FINALIZER_FALLBACK = 5.0


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: every pass decides from the whole object, and no handler here asks kopf
    for a diff (no create/update handlers). kopf's default stores one in an annotation, a
    PATCH on every new object and every spec change, each racing the status write of the pass
    it triggered into a 409 (and the re-decided pass into extra Fly lists)."""

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        # "Nothing changed since last handled": kopf then sees no create/update cause, and
        # deletion is detected from the deletionTimestamp alone.
        return kopf.BodyEssence()

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        # The same empty essence as `fetch`, so the diff is empty, without kopf's deep copy of
        # the whole object on every watch event (twice: the new essence and the fetched one;
        # 4 % of the operator's CPU during a burst, issue 13).
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class ProgressAnnotations(kopf.AnnotationsProgressStorage):
    """kopf's progress in `claw.dev/…` annotations (the delete handler's retries). kopf strips
    them from both diff essences on every watch event; `NoDiffBase`'s essences are empty, so
    there is nothing to strip (kopf's deep copy and key scan of them were ~1.5 % of a burst)."""

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        if not essence:
            return kopf.BodyEssence()
        return super().clear(essence=essence)


class QuietWakeups(logging.Filter):
    """kopf logs every successful event-handler call at INFO; for `wake_on_change` that is
    one line per watch event of every instance (our own status writes included): noise that
    costs CPU at fleet size. Its failures are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and "wake_on_change' succeeded" in record.getMessage())


def _trigger(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """The parts of an object whose change calls for a pass (status changes excluded)."""
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    return (
        meta.get("generation"),
        annotations.get(PAUSED_ANNOTATION),
        annotations.get(RECONCILE_REQUEST_ANNOTATION),
        meta.get("deletionTimestamp") is not None,
        FINALIZER in (meta.get("finalizers") or []),
    )


def _awaits_finalizer(body: Mapping[str, Any]) -> bool:
    meta = body.get("metadata") or {}
    return not meta.get("deletionTimestamp") and FINALIZER not in (meta.get("finalizers") or [])


def _outcome(outcome: PassOutcome) -> str:
    if outcome.finalized:
        return m.FINALIZED
    if outcome.conflicted:
        return m.CONFLICT
    if outcome.retry:
        return m.RETRY
    if outcome.requeue_after is None or outcome.status is None:
        return m.SKIPPED  # gone, deleting (the delete handler drives), or awaiting the finalizer
    return m.SUCCESS


def register(
    registry: kopf.OperatorRegistry,
    reconciler: Reconciler,
    *,
    metrics: OperatorMetrics | None = None,
    health: WatchHealth | None = None,
    shards: LeaseKeeper | None = None,
) -> None:
    """Register the handlers of one operator instance on `registry`.

    With `shards` (`--shards auto`), every replica runs a loop per instance, but only the one
    the ring assigns it to (and the fence allows) reconciles it; the others wait for the ring
    to change. kopf's `when=` filters are not used for this: a filter is re-evaluated only on
    the object's own watch events (an instance whose owner died gets none), and a delete
    handler filtered out would let kopf remove the finalizer.
    """
    shard_wait = shards.timings.lease_duration.total_seconds() if shards is not None else 0.0

    async def reconcile(
        namespace: str, name: str, *, deleting: bool = False, last_seen: Mapping[str, Any] | None = None
    ) -> PassOutcome:
        """A run of passes, counted. `last_seen`: the object as the watch last showed it; while
        kopf has not added our finalizer yet no pass can start, so the apiserver is not even
        asked (kopf's finalizer patch comes back through the watch and wakes the loop). The
        run's first pass is decided on it, and reads fresh only to act or write
        (`Reconciler.reconcile`)."""
        if last_seen is not None and not deleting and _awaits_finalizer(last_seen):
            return PassOutcome(FINALIZER_FALLBACK)
        started = time.perf_counter()
        try:
            outcome = await reconciler.reconcile(namespace, name, deleting=deleting, watched=last_seen)
        except ShardFenced as fenced:
            # Lost the instance (or the Lease) during the run, before a Fly mutation.
            logger.info(str(fenced), extra={"action": "shard_fenced", "instance": f"{namespace}/{name}"})
            return PassOutcome(shards.timings.retry_period.total_seconds() if shards is not None else 1.0)
        except Exception:
            if metrics is not None:
                metrics.observe_reconcile(m.ERROR, time.perf_counter() - started)
            raise
        if metrics is not None:
            metrics.observe_reconcile(_outcome(outcome), time.perf_counter() - started)
        return outcome

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=None)
    async def instance_loop(**kwargs: Any) -> None:
        name: str = kwargs["name"]
        namespace: str = kwargs["namespace"]
        memo: kopf.Memo = kwargs["memo"]
        stopped: kopf.DaemonStopped = kwargs["stopped"]
        wakeup: asyncio.Event = memo.setdefault("wakeup", asyncio.Event())
        uid: str = kwargs["uid"]
        checked = time.monotonic()
        while not stopped:
            wakeup.clear()
            if shards is not None:
                shards.track(uid, kwargs["body"].get("metadata", {}).get("creationTimestamp"))
                if not shards.may_act(uid):
                    await _first(shards.wait_change(shard_wait), stopped.wait())
                    if not shards.watches(uid) and time.monotonic() - checked >= shards.linger_check:
                        # Lost to another replica and out of this one's (server-side) watch:
                        # its deletion is never seen here, so look whether it still exists.
                        checked = time.monotonic()
                        if not await reconciler.exists(namespace, name):
                            shards.forget(uid)
                            return
                    continue
                shards.before_pass(uid)
                await _announce_handover(shards, uid, kwargs["body"], metrics)
            outcome = await reconcile(namespace, name, last_seen=kwargs["body"])
            if outcome.requeue_after is None or outcome.finalized:
                return
            if outcome.obj is not None and memo.get("trigger") == _trigger(outcome.obj):
                # Woken for a change this run already read (the finalizer landing as it began):
                # another pass now would only observe Fly again.
                wakeup.clear()
            # Not kept while asleep: the object the run read or wrote (a whole ClawInstance,
            # ~20 KiB per instance at rest; issue 13's memory).
            delay = outcome.requeue_after
            del outcome
            waiter = asyncio.ensure_future(wakeup.wait())
            stopper = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait({waiter, stopper}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stopper.cancel()

    def watch_event(**kwargs: Any) -> bool:
        """Every watch event's bookkeeping, run as the `when=` filter of `wake_on_change`: True
        only when the event calls for a pass. kopf evaluates the filter once per event and runs
        its handler machinery (per-event state, invocation, its log line) only when it matches;
        most events are the echoes of our own status writes, which need none of it (issue 13:
        the handler's machinery was ~5 % of the operator's CPU during a burst)."""
        memo: kopf.Memo = kwargs["memo"]
        body: kopf.Body = kwargs["body"]
        if metrics is not None:
            metrics.observe_watch_event(kwargs.get("type"), body)
        if health is not None:
            uid = body.get("metadata", {}).get("uid")
            health.event_received(uid, body.get("metadata", {}).get("resourceVersion"))
            if kwargs.get("type") == "DELETED" and uid:
                health.forget(uid)
        if shards is not None:
            meta = body.get("metadata", {})
            if kwargs.get("type") == "DELETED":
                shards.forget(meta.get("uid", ""))
            elif meta.get("uid"):
                shards.track(meta["uid"], meta.get("creationTimestamp"))
        return bool(memo.get("trigger") != _trigger(body))

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, when=watch_event)
    async def wake_on_change(**kwargs: Any) -> None:
        memo: kopf.Memo = kwargs["memo"]
        memo["trigger"] = _trigger(kwargs["body"])
        wakeup: asyncio.Event = memo.setdefault("wakeup", asyncio.Event())
        wakeup.set()

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    async def destroy(**kwargs: Any) -> None:
        if shards is not None:
            # Another replica's: wait until it finalizes (the object is gone) or this one
            # gains it. Returning earlier would let kopf remove the finalizer.
            while not shards.may_act(kwargs["uid"]):
                if not await reconciler.exists(kwargs["namespace"], kwargs["name"]):
                    shards.forget(kwargs["uid"])
                    return
                await shards.wait_change(shards.timings.retry_period.total_seconds() * 2)
            shards.before_pass(kwargs["uid"])
        outcome = await reconcile(kwargs["namespace"], kwargs["name"], deleting=True)
        if outcome.finalized or outcome.requeue_after is None:
            reconciler.forget(kwargs["uid"])
            if shards is not None:
                shards.forget(kwargs["uid"])
            return
        raise kopf.TemporaryError("destroy in progress", delay=max(outcome.requeue_after, 0.1))


async def _announce_handover(
    shards: LeaseKeeper, uid: str, body: Mapping[str, Any], metrics: OperatorMetrics | None
) -> None:
    """A Normal `HandedOver` Event on an instance this replica gained, before its first pass."""
    previous = shards.handed_over(uid)
    if previous is None:
        return
    event = EventRecord(
        EventType.NORMAL,
        EventReason.HANDED_OVER,
        f"operator replica {shards.identity} reconciles this instance from now on "
        f"(handed over from {previous})",
    )
    if metrics is not None:
        metrics.observe_event(event)
    await post_event(dict(body), event)  # queued: kopf posts it in the background


async def _first(*waits: Any) -> None:
    """Until the first of these awaitables is done (the others are cancelled)."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def configure(settings: kopf.OperatorSettings, *, server_timeout: float = 300) -> None:
    """kopf settings: every key kopf writes lives under claw.dev; watches never go deaf."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = ProgressAnnotations(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = server_timeout
    settings.watching.client_timeout = server_timeout + 10
    settings.posting.reporting_component = "claw-operator"
    settings.posting.event_name_prefix = "claw-"
    # Our own log lines carry the context; kopf's per-object logs are not posted as Events.
    settings.posting.loggers = False
    settings.peering.standalone = True
    objects_logger = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietWakeups) for f in objects_logger.filters):
        objects_logger.addFilter(QuietWakeups())
