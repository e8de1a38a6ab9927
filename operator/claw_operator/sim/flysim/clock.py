"""The clock that drives every delayed change in flysim.

Transitions, lease expiry, wait deadlines, rate-limit buckets and soft-delete windows all read
`now()` and schedule with `call_later()`, so one swap of the clock makes a test deterministic:

- `LoopClock` follows the running asyncio loop's time. Servers use it; so do tests under
  `looptime`, whose fake loop time it follows for free.
- `ManualClock` only moves when a test calls `advance()`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch, as the simulated world sees it."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` once `delay` seconds of this clock have passed."""
        ...


class LoopClock:
    """Wall time anchored at start, advanced by the asyncio loop's monotonic time."""

    def __init__(self, epoch: float | None = None) -> None:
        self._epoch = epoch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_origin = 0.0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_origin = loop.time()
        if self._epoch is None:
            self._epoch = time.time()

    def _bound_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self.bind(asyncio.get_running_loop())
        assert self._loop is not None
        return self._loop

    def now(self) -> float:
        loop = self._bound_loop()
        assert self._epoch is not None
        return self._epoch + (loop.time() - self._loop_origin)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self._bound_loop().call_later(max(0.0, delay), callback)


class _ManualTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that stands still until `advance()`; due callbacks run in time order."""

    def __init__(self, epoch: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = epoch
        self._queue: list[tuple[float, int, _ManualTimer, Callable[[], None]]] = []
        self._sequence = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer()
        heapq.heappush(self._queue, (self._now + max(0.0, delay), next(self._sequence), timer, callback))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward, running every callback that falls due, in order."""
        target = self._now + seconds
        while self._queue and self._queue[0][0] <= target:
            when, _, timer, callback = heapq.heappop(self._queue)
            self._now = max(self._now, when)
            if not timer.cancelled:
                callback()
        self._now = target

    def pending(self) -> int:
        return sum(1 for _, _, timer, _ in self._queue if not timer.cancelled)
