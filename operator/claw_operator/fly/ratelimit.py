"""Client-side rate limiting that mirrors Fly's own buckets (§7 of
`docs/reference/fly-machines-api.md`), so a fleet-wide resync paces
itself instead of provoking a storm of 429s.

Fly limits each *action* (create, start, stop, update, wait, lease, list, delete …) per
*identifier* (the machine id, or the app for app-level actions such as create and list) to
1 req/s with bursts of 3, and reading one machine to 5 req/s with bursts of 10. One
`aiolimiter.AsyncLimiter` per (action, identifier) expresses exactly that: a leaky bucket of
capacity `burst` that drains at `rate`/s.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Final

from aiolimiter import AsyncLimiter

from claw_operator.fly.config import RateLimits

__all__ = ["GET_ACTION", "FlyRateLimiter"]

# The action name whose bucket uses the (more generous) get limits.
GET_ACTION: Final = "get"


class FlyRateLimiter:
    """Token buckets keyed by (action, identifier), created on first use."""

    def __init__(self, limits: RateLimits) -> None:
        if limits.headroom <= 0 or limits.headroom > 1:
            raise ValueError("headroom must be within (0, 1]")
        if limits.reserve < 0:
            raise ValueError("reserve must not be negative")
        self._limits = limits
        self._buckets: OrderedDict[tuple[str, str], AsyncLimiter] = OrderedDict()

    @property
    def limits(self) -> RateLimits:
        return self._limits

    def _new_bucket(self, action: str) -> AsyncLimiter:
        if action == GET_ACTION:
            rate, burst = self._limits.get_rate, self._limits.get_burst
        else:
            rate, burst = self._limits.action_rate, self._limits.action_burst
        rate *= self._limits.headroom
        burst = max(1, burst - self._limits.reserve)
        # A bucket of capacity `burst` leaking `rate` per second: max_rate/time_period = rate.
        return AsyncLimiter(max_rate=burst, time_period=burst / rate)

    def bucket(self, action: str, identifier: str) -> AbstractAsyncContextManager[object]:
        """The context manager to enter before sending `action` on `identifier`."""
        if not self._limits.enabled:
            return nullcontext()
        key = (action, identifier)
        limiter = self._buckets.get(key)
        if limiter is None:
            limiter = self._new_bucket(action)
            self._buckets[key] = limiter
            self._evict_idle()
        else:
            self._buckets.move_to_end(key)
        return limiter

    def _evict_idle(self) -> None:
        """Forget the least recently used buckets that are full again (idle), beyond the cap."""
        excess = len(self._buckets) - self._limits.max_buckets
        if excess <= 0:
            return
        # From the least recently used end, without copying every key: idle buckets gather there.
        idle: list[tuple[str, str]] = []
        for key, limiter in itertools.islice(self._buckets.items(), len(self._buckets) - 1):
            if len(idle) >= excess:
                break
            if limiter.has_capacity(limiter.max_rate):
                idle.append(key)
        for key in idle:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
