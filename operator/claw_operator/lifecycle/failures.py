"""What a Fly failure means for the instance: stall (terminal) or retry, and with which reason."""

from __future__ import annotations

from typing import Final

from claw_operator.api.reasons import Reason
from claw_operator.lifecycle.model import FailureKind, FlyFailure, Instance, Timings
from claw_operator.lifecycle.timing import backoff

# Terminal failures: retrying cannot fix them until the spec or the environment changes
# (contract behaviour 7), so they set Stalled=True with this reason.
_STALL_REASONS: Final = {
    FailureKind.INVALID_CONFIG: Reason.INVALID_CONFIG,
    FailureKind.UNAUTHORIZED: Reason.UNAUTHORIZED,
    FailureKind.FORBIDDEN: Reason.UNAUTHORIZED,
    FailureKind.QUOTA: Reason.QUOTA_EXCEEDED,
}

_START_FAILED_REASONS: Final = {
    FailureKind.CAPACITY: Reason.INSUFFICIENT_CAPACITY,
    FailureKind.INVALID_CONFIG: Reason.INVALID_CONFIG,
}
GENERIC_START_FAILED_REASON: Final = Reason.FLY_API_ERROR

AUTH_KINDS: Final = frozenset({FailureKind.UNAUTHORIZED, FailureKind.FORBIDDEN})


def stall_reason(failure: FlyFailure) -> Reason | None:
    """The Stalled reason of a terminal failure; None when retrying may help."""
    return _STALL_REASONS.get(failure.kind)


def start_failed_reason(failure: FlyFailure) -> Reason:
    """The StartFailed reason of a failed create/start."""
    return _START_FAILED_REASONS.get(failure.kind, GENERIC_START_FAILED_REASON)


def is_auth_failure(failure: FlyFailure | None) -> bool:
    return failure is not None and failure.kind in AUTH_KINDS


def retry_delay(failure: FlyFailure | None, instance: Instance, timings: Timings) -> float:
    """Backoff for the next attempt, never sooner than Fly's Retry-After."""
    delay = backoff(instance.failures, timings)
    if failure is not None and failure.retry_after is not None:
        delay = max(delay, failure.retry_after)
    return delay
