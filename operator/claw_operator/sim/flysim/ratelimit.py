"""Fly's documented rate limits as token buckets on the simulator clock [D].

Per action per identifier (machine id, or app for app-level actions): 1 req/s with bursts of
3; GET machine 5 req/s with bursts of 10; app deletions 100 per minute. Off unless enabled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .clock import Clock


@dataclass(frozen=True)
class BucketRule:
    rate: float  # tokens per second
    burst: int


ACTION_RULE = BucketRule(rate=1.0, burst=3)
GET_MACHINE_RULE = BucketRule(rate=5.0, burst=10)
APP_DELETE_RULE = BucketRule(rate=100 / 60, burst=100)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.rejected = 0

    def take(self, action: str, identifier: str, rule: BucketRule) -> float | None:
        """Spend one token; None when allowed, else the seconds until a token is available."""
        now = self._clock.now()
        key = (action, identifier)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(rule.burst), now)
        bucket.tokens = min(float(rule.burst), bucket.tokens + (now - bucket.updated) * rule.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        self.rejected += 1
        return (1.0 - bucket.tokens) / rule.rate

    @staticmethod
    def retry_after_header(wait_seconds: float) -> str:
        return str(max(1, math.ceil(wait_seconds)))

    def clear(self) -> None:
        self._buckets.clear()
        self.rejected = 0
