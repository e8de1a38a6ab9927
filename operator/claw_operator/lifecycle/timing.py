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


def detach_retry(
    repeated: bool, failures: int, retry_after: float | None, timings: Timings
) -> tuple[float, bool]:
    """When to try a volume delete again that Fly refused because the volume is still bound
    (its machine was destroyed moments ago), and whether that counts as a failed pass.

    The first refusal is expected: Fly keeps the volume bound for about `volume_detach` after
    the destroy, so the next try comes then, exactly (no jitter: an early try is refused
    again), and is no failure. A refusal after that is one: base·2ⁿ backoff, capped at
    `volume_detach` (the volume is due any moment), never sooner than Fly's Retry-After.
    """
    detach = timings.volume_detach.total_seconds()
    if not repeated:
        return max(detach, retry_after or 0.0), False
    return max(min(backoff(failures, timings), detach), retry_after or 0.0), True
