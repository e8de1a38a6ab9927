"""When to look again: the periodic-check cadence per phase, and the retry backoff."""

from __future__ import annotations

from datetime import timedelta

from claw_operator.api import Phase
from claw_operator.lifecycle.model import Timings

# 2**16 times any sane base is far beyond any cap; bounding the exponent keeps the float finite.
_MAX_EXPONENT = 16


def cadence(phase: Phase | None, timings: Timings) -> timedelta:
    """KiloClaw's alarm interval for a phase, without jitter (`kube` adds it)."""
    if phase == Phase.STARTING:
        return timings.poll_starting
    if phase == Phase.DESTROYING:
        return timings.poll_destroying
    if phase == Phase.RUNNING:
        return timings.poll_running
    return timings.poll_idle


def backoff(failures: int, timings: Timings) -> float:
    """Seconds before retrying after `failures` consecutive failed passes: base·2ⁿ, capped.

    Un-jittered; `kube` spreads it (Decision.retry says a jitter is due).
    """
    exponent = min(max(failures, 0), _MAX_EXPONENT)
    delay: float = timings.retry_base.total_seconds() * float(2**exponent)
    return min(delay, timings.retry_cap.total_seconds())
