"""The kopf wiring: thin handlers that only call into the Reconciler.

- Each ClawInstance's reconcile loop lives in one **scheduler** (kube/scheduler.py; one timer
  heap for the fleet, not a kopf daemon per object): a pass at once (create or resume), then
  one at the phase's cadence plus jitter (KiloClaw's alarm), or sooner when woken.
- Every **watch event** goes to the scheduler (the `when=` filter of an event handler kopf
  never calls): it keeps the object as last seen and wakes the loop when something the user
  controls changed (generation, the paused / reconcile-requested-at annotations, deletion, our
  finalizer landing) — never for our own status writes, which would double the Fly traffic.
- The **delete** handler stops the loop (waiting for a running pass) and runs the two-phase
  destroy; kopf holds our finalizer (`claw.dev/finalizer`) until it returns.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from claw_operator.api import FINALIZER, GROUP, PLURAL, VERSION
from claw_operator.api.reasons import EventReason
from claw_operator.kube import metrics as m
from claw_operator.kube.events import post_event
from claw_operator.kube.health import WatchHealth
from claw_operator.kube.metrics import OperatorMetrics
from claw_operator.kube.reconciler import PassOutcome, Reconciler
from claw_operator.kube.scheduler import Entry, Ran, Scheduler
from claw_operator.kube.shards import LeaseKeeper, ShardFenced
from claw_operator.lifecycle.model import EventRecord, EventType

logger = logging.getLogger("claw_operator.handlers")

# A loop whose object has no finalizer yet looks again after this long at the latest: kopf's
# finalizer patch comes back as a watch event, which wakes it at once (`Scheduler.saw`); the
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
) -> Scheduler:
    """Register the handlers of one operator instance on `registry`; return the scheduler of
    the instances' loops (the caller starts it before kopf and closes it after).

    With `shards` (`--shards auto`), every replica keeps a loop per instance, but only the one
    the ring assigns it to (and the fence allows) reconciles it; on the others the loop is
    parked until the ring changes. kopf's `when=` filters are not used for this: a filter is
    re-evaluated only on the object's own watch events (an instance whose owner died gets
    none), and a delete handler filtered out would let kopf remove the finalizer.
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

    async def instance_pass(entry: Entry) -> Ran:
        """One turn of an instance's loop (kube/scheduler.py calls it when it falls due)."""
        uid, namespace, name = entry.uid, entry.namespace, entry.name
        if shards is not None:
            shards.track(uid, (entry.body.get("metadata") or {}).get("creationTimestamp"))
            if not shards.may_act(uid):
                now = time.monotonic()
                if not shards.watches(uid) and now - entry.checked >= shards.linger_check:
                    # Lost to another replica and out of this one's (server-side) watch: its
                    # deletion is never seen here, so look whether it still exists.
                    entry.checked = now
                    if not await reconciler.exists(namespace, name):
                        shards.forget(uid)
                        scheduler.forget(uid)
                        return Ran(None)
                return Ran(shard_wait, parked=True)
            shards.before_pass(uid)
            await _announce_handover(shards, uid, entry.body, metrics)
        outcome = await reconcile(namespace, name, last_seen=entry.body)
        if outcome.finalized:
            return Ran(None)
        # Not kept while asleep: the object the run read or wrote (a whole ClawInstance,
        # ~20 KiB per instance at rest; issue 13's memory) — only whether it shows a change.
        return Ran(outcome.requeue_after, seen=outcome.obj)

    scheduler = Scheduler(instance_pass)
    if shards is not None:
        shards.listeners.append(scheduler.wake_parked)

    def watch_event(**kwargs: Any) -> bool:
        """Every watch event's bookkeeping, run as the `when=` filter of the event handler:
        the scheduler learns the object (and wakes its loop when the user changed something),
        the metrics, the watch's liveness and the shard ring count it. Always False: kopf's
        handler machinery (per-event state, invocation, its log line) is not needed for any
        event (issue 13: it was ~5 % of the operator's CPU during a burst)."""
        body: kopf.Body = kwargs["body"]
        event_type = kwargs.get("type")
        meta = body.get("metadata") or {}
        if metrics is not None:
            metrics.observe_watch_event(event_type, body)
        if health is not None:
            health.event_received(meta.get("uid"), meta.get("resourceVersion"))
            if event_type == "DELETED" and meta.get("uid"):
                health.forget(meta["uid"])
        if shards is not None:
            if event_type == "DELETED":
                shards.forget(meta.get("uid", ""))
            elif meta.get("uid"):
                shards.track(meta["uid"], meta.get("creationTimestamp"))
        if scheduler.context is None:
            scheduler.context = contextvars.copy_context()
        scheduler.saw(body, event_type)
        return False

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, when=watch_event)
    async def watched(**kwargs: Any) -> None:
        """Never called (`watch_event` is the whole work); kopf needs a handler to carry it."""

    @kopf.on.cleanup(registry=registry)
    async def drain(**_: Any) -> None:
        """At shutdown, once kopf's watches stopped: no pass starts, the running ones finish
        (kopf cancels every task it finds left after its cleanup handlers, 5 s later)."""
        await scheduler.close()

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    async def destroy(**kwargs: Any) -> None:
        # The instance's loop runs no further pass; one still running finishes first (kopf
        # waited for its daemon the same way before removing the finalizer).
        await scheduler.stop(kwargs["uid"])
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
            scheduler.forget(kwargs["uid"])
            if shards is not None:
                shards.forget(kwargs["uid"])
            return
        raise kopf.TemporaryError("destroy in progress", delay=max(outcome.requeue_after, 0.1))

    return scheduler


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
