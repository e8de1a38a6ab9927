"""One scheduler for every ClawInstance's reconcile loop (issue 13).

Each instance's loop is an `Entry`: the object as the watch last showed it, when its next pass
is due, and whether one is running. One timer heap orders the due passes of the whole fleet;
one driver task starts each pass in a task of its own when it falls due, and that task ends
with the pass. An instance at rest is therefore a small record in a dict and an item in the
heap — not a kopf daemon (a task, its coroutine chain, its stopper, its timer: ~26 KB each,
and the event loop's timer heap of a thousand sleeping coroutines).

What the loop does is unchanged (kube/handlers.py supplies the pass):
- the first sight of an instance (created, or listed at operator start) runs a pass at once;
- then one at the cadence the pass returns, or sooner when woken (`wake`): a change the user
  controls (generation, annotations, deletion, our finalizer landing — `trigger`), never the
  echo of our own status writes;
- a wake while a pass runs makes one more pass follow at once, unless that pass already read
  the change (`Ran.seen`);
- an instance being deleted gets no further loop pass: the delete handler waits for a running
  one (`stop`) and drives the destroy;
- at shutdown (`close`) no pass starts and the running ones finish (kopf waited for its daemons
  the same way: `cancellation_timeout=None`).
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from claw_operator.api import FINALIZER, PAUSED_ANNOTATION, RECONCILE_REQUEST_ANNOTATION

logger = logging.getLogger("claw_operator.scheduler")

# A pass that raised is tried again after 1, 2, 4 … seconds, at most this long (kopf's daemon
# waited its fixed 60 s backoff).
MAX_BACKOFF = 60.0


def trigger(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """The parts of an object whose change calls for a pass (status changes excluded)."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (
        meta.get("generation"),
        annotations.get(PAUSED_ANNOTATION),
        annotations.get(RECONCILE_REQUEST_ANNOTATION),
        meta.get("deletionTimestamp") is not None,
        FINALIZER in (meta.get("finalizers") or []),
    )


# What no pass reads, left out of the object an `Entry` keeps (issue 13's memory): the field
# manager's bookkeeping (a real apiserver's and kubesim's: ~2-4 KB a ClawInstance) and
# `kubectl apply`'s copy of the whole applied object.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def kept(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object as an `Entry` keeps it: a shallow copy without `metadata.managedFields` and
    the last-applied annotation. Everything else is the very same objects (`spec` and `status`
    by identity: kube/instance.py's `Parsed` relies on it); the watched object is never changed."""
    obj = dict(body)
    meta = obj.get("metadata")
    if isinstance(meta, Mapping) and (
        "managedFields" in meta or LAST_APPLIED in (meta.get("annotations") or {})
    ):
        meta = {key: value for key, value in meta.items() if key != "managedFields"}
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
            meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        obj["metadata"] = meta
    return obj


@dataclass(slots=True, eq=False)
class Entry:
    """One instance's loop."""

    uid: str
    namespace: str
    name: str
    # The object as the watch last delivered it, less what no pass reads (`kept`): the pass
    # decides a quiet check on it.
    body: Mapping[str, Any]
    trigger: tuple[Any, ...]
    token: int = 0  # the heap item that is this entry's next pass (0: none due)
    running: asyncio.Task[None] | None = None
    woken: bool = False  # woken while its pass ran
    stopped: bool = False  # being deleted, forgotten or shutting down: no pass starts
    parked: bool = False  # the last pass found it another replica's (shards)
    failures: int = 0  # passes that raised in a row
    checked: float = 0.0  # monotonic: the last "does it still exist" look while parked


@dataclass(frozen=True, slots=True)
class Ran:
    """How a pass ended, for the scheduler: `delay` seconds to the next (None: no next pass
    until woken — gone, being deleted); `seen`: the object the pass last read or wrote (a wake
    for a change it shows is already served); `parked`: another replica's instance, woken
    again when the shard ring changes."""

    delay: float | None
    seen: Mapping[str, Any] | None = None
    parked: bool = False


PassFn = Callable[[Entry], Awaitable[Ran]]


class Scheduler:
    def __init__(
        self,
        run_pass: PassFn,
        *,
        clock: Callable[[], float] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._run_pass = run_pass
        # The event loop's clock by default: the driver's timer runs on it (and a test's
        # looptime moves both).
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._rng = rng
        self._entries: dict[str, Entry] = {}
        self._heap: list[tuple[float, int, Entry]] = []
        self._tokens = itertools.count(1)
        self._kick = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self._closing = False
        self.passes_started = 0
        # The context the passes run in (a copy each): kopf's, taken from a watch event's
        # processing, where `kopf.event` finds the operator's settings and Event queue.
        self.context: contextvars.Context | None = None

    # ------------------------------------------------------------------ what the watch tells

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    def entry(self, uid: str) -> Entry | None:
        return self._entries.get(uid)

    def saw(self, body: Mapping[str, Any], event_type: str | None = None) -> bool:
        """A watch event (or an object of the initial listing, `event_type` None). Returns
        True when it woke the instance's loop (something the user controls changed)."""
        meta = body.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return False
        if event_type == "DELETED":
            self.forget(uid)
            return False
        key = trigger(body)
        body = kept(body)
        entry = self._entries.get(uid)
        if entry is None:
            entry = Entry(uid, meta.get("namespace") or "", meta.get("name") or "", body, key)
            self._entries[uid] = entry
            if meta.get("deletionTimestamp"):
                entry.stopped = True  # the delete handler alone drives it
                return False
            self._due(entry, 0.0)
            return True
        entry.body = body
        if key == entry.trigger:
            return False
        entry.trigger = key
        if meta.get("deletionTimestamp"):
            entry.stopped = True
            entry.token = 0
            return False
        self._wake(entry)
        return True

    def wake(self, uid: str) -> None:
        """A pass for `uid` now (or right after the running one)."""
        entry = self._entries.get(uid)
        if entry is not None:
            self._wake(entry)

    def wake_parked(self) -> None:
        """The shard ring changed: every parked instance looks again whether it may act."""
        for entry in self._entries.values():
            if entry.parked:
                self._wake(entry)

    async def stop(self, uid: str) -> None:
        """No further loop pass for `uid`; until the running one (if any) has finished."""
        entry = self._entries.get(uid)
        if entry is None:
            return
        entry.stopped = True
        entry.token = 0
        task = entry.running
        if task is not None and task is not asyncio.current_task():
            # Not cancelled with the caller: the pass finishes its step either way.
            await asyncio.wait({task})

    def forget(self, uid: str) -> None:
        entry = self._entries.pop(uid, None)
        if entry is not None:
            entry.stopped = True
            entry.token = 0

    # ------------------------------------------------------------------ the driver

    def start(self) -> None:
        if self._driver is None:
            loop = asyncio.get_running_loop()
            self._driver = loop.create_task(self._drive(), name="claw-operator-scheduler")

    async def close(self) -> None:
        """Start no pass any more; wait for the running ones to finish."""
        self._closing = True
        if self._driver is not None:
            self._driver.cancel()
            await asyncio.gather(self._driver, return_exceptions=True)
            self._driver = None
        running = {entry.running for entry in self._entries.values() if entry.running is not None}
        if running:
            await asyncio.wait(running)

    def running_count(self) -> int:
        return sum(1 for entry in self._entries.values() if entry.running is not None)

    def _wake(self, entry: Entry) -> None:
        if entry.stopped or self._closing:
            return
        if entry.running is not None:
            entry.woken = True
        else:
            self._due(entry, 0.0)

    def _due(self, entry: Entry, delay: float) -> None:
        entry.token = token = next(self._tokens)
        due = self._clock() + delay
        heap = self._heap
        earliest = not heap or due < heap[0][0]
        heapq.heappush(heap, (due, token, entry))
        if earliest:
            self._kick.set()

    async def _drive(self) -> None:
        heap, kick = self._heap, self._kick
        loop = asyncio.get_running_loop()
        while True:
            now = self._clock()
            while heap and heap[0][0] <= now:
                _, token, entry = heapq.heappop(heap)
                if token == entry.token and not entry.stopped and entry.running is None:
                    self._start(entry)
            kick.clear()
            if not heap:
                await kick.wait()
                continue
            # One timer for the whole fleet: the earliest due pass (or a new earlier one).
            timer = loop.call_later(heap[0][0] - now, kick.set)
            try:
                await kick.wait()
            finally:
                timer.cancel()

    def _start(self, entry: Entry) -> None:
        entry.token = 0
        entry.woken = False
        self.passes_started += 1
        context = self.context.copy() if self.context is not None else None
        entry.running = asyncio.get_running_loop().create_task(self._run(entry), context=context)

    async def _run(self, entry: Entry) -> None:
        try:
            ran = await self._run_pass(entry)
            entry.failures = 0
        except Exception:
            entry.failures += 1
            delay = min(MAX_BACKOFF, 2.0 ** (entry.failures - 1)) * (0.5 + self._rng())
            logger.exception(
                f"reconcile pass of {entry.namespace}/{entry.name} failed; the next in {delay:.1f}s",
                extra={"action": "pass_failed", "instance": f"{entry.namespace}/{entry.name}"},
            )
            ran = Ran(delay)
        finally:
            entry.running = None
        entry.parked = ran.parked
        if entry.stopped or self._closing or ran.delay is None or self._entries.get(entry.uid) is not entry:
            return
        if entry.woken and ran.seen is not None and trigger(ran.seen) == entry.trigger:
            entry.woken = False  # woken for a change this pass already read
        self._due(entry, 0.0 if entry.woken else ran.delay)
