"""Typed errors of the Fly Machines API, classified from the HTTP status **and** the body text.

Fly reuses statuses for unrelated causes (a 412 is a volume still claimed, a start refused while
the machine settles, or a destroy of a running machine; a 409 is a held lease or a host out of
memory), so the status alone cannot tell the caller what to do. `classify` reads both, following
`docs/reference/fly-machines-api.md` §1/§7/§10, and falls back to the gRPC-style message prefix
flyd puts in front of its messages when the status says nothing useful.

Every error carries:

* `retryable`: whether the *same* request may succeed later without changing anything
  (rate limit, lease held, settling machine, server trouble). Terminal errors need a different
  request (another region, force, a fresh read) or a human.
* `ambiguous`: whether a mutating request may have been applied although it failed (a timeout,
  a 5xx or a dropped connection after the request was sent). Such a create must be resolved by
  looking, never by sending it again.
* `status`, `request_id` (Fly's `fly-request-id`), `code` (the machine-readable `status`/`code`
  body field), `method` and `route` (the path template, never the concrete URL).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from enum import StrEnum
from typing import Any, ClassVar, Final

__all__ = [
    "AmbiguousCreate",
    "CapacityScope",
    "Conflict",
    "ConflictReason",
    "FlyError",
    "Forbidden",
    "InsufficientCapacity",
    "InvalidConfig",
    "NotFound",
    "Precondition",
    "PreconditionReason",
    "QuotaExceeded",
    "RateLimited",
    "Timeout",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "WaitTimeout",
    "classify",
    "parse_retry_after",
]

_MUTATING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BODY_EXCERPT: Final = 500


class FailureKind(StrEnum):
    """What kind of failure a Fly error is: the one vocabulary the client raises and the
    decisions (`lifecycle`) act on."""

    NOT_FOUND = "NotFound"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    INVALID_CONFIG = "InvalidConfig"
    CONFLICT = "Conflict"
    PRECONDITION = "Precondition"
    CAPACITY = "InsufficientCapacity"
    QUOTA = "QuotaExceeded"
    RATE_LIMITED = "RateLimited"
    TIMEOUT = "Timeout"
    UNAVAILABLE = "Unavailable"


class FlyError(Exception):
    """Base of every error raised by `claw_operator.fly`."""

    default_retryable: ClassVar[bool] = False
    # Subclasses report their parent's kind, so the edge maps any error with one lookup.
    kind: ClassVar[FailureKind] = FailureKind.UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        method: str | None = None,
        route: str | None = None,
        body: str | None = None,
        retryable: bool | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.code = code
        self.method = method
        self.route = route
        # Only an excerpt: a proxy's HTML page can be large and is useless beyond its first lines.
        self.body = body[:_BODY_EXCERPT] if body is not None else None
        self.retryable = self.default_retryable if retryable is None else retryable
        self.ambiguous = ambiguous

    def __str__(self) -> str:
        where = f"{self.method} {self.route}" if self.method and self.route else None
        parts = [p for p in (where, str(self.status) if self.status is not None else None) if p]
        prefix = f"[{' '.join(parts)}] " if parts else ""
        suffix = f" (fly-request-id {self.request_id})" if self.request_id else ""
        return f"{prefix}{self.message}{suffix}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, message={self.message!r}, "
            f"code={self.code!r}, retryable={self.retryable!r}, ambiguous={self.ambiguous!r}, "
            f"request_id={self.request_id!r})"
        )


class NotFound(FlyError):
    """404: the app, machine, volume or lease does not exist (or is not visible yet)."""

    kind = FailureKind.NOT_FOUND


class Unauthorized(FlyError):
    """401: the token is missing, malformed or unknown."""

    kind = FailureKind.UNAUTHORIZED


class Forbidden(FlyError):
    """403: the token cannot access this app (e.g. an app name owned by another org)."""

    kind = FailureKind.FORBIDDEN


class InvalidConfig(FlyError):
    """400 (or an unmatched 422): the request itself is wrong; sending it again cannot help."""

    kind = FailureKind.INVALID_CONFIG


class ConflictReason(StrEnum):
    LEASE_HELD = "lease_held"
    VERSION_MISMATCH = "version_mismatch"
    CONCURRENT_UPDATE = "concurrent_update"
    NAME_TAKEN = "name_taken"
    BUSY = "busy"
    UNKNOWN = "unknown"


_CONFLICT_RETRYABLE: Final = frozenset(
    {ConflictReason.LEASE_HELD, ConflictReason.CONCURRENT_UPDATE, ConflictReason.BUSY}
)


class Conflict(FlyError):
    """409: someone else holds the lease, the version moved, an update is in progress, a name is
    taken. Lease/concurrent-update/busy are retryable with backoff; the rest need a fresh read."""

    kind = FailureKind.CONFLICT

    def __init__(self, message: str, *, reason: ConflictReason, **kwargs: Any) -> None:
        kwargs.setdefault("retryable", reason in _CONFLICT_RETRYABLE)
        super().__init__(message, **kwargs)
        self.reason = reason


class PreconditionReason(StrEnum):
    START_NOT_READY = "start_not_ready"
    DESTROY_RUNNING = "destroy_running"
    VOLUME_CLAIMED = "volume_claimed"
    VOLUME_BOUND = "volume_bound"
    SECRETS_VERSION = "secrets_version"
    VERSION_MISMATCH = "version_mismatch"
    UNKNOWN = "unknown"


_PRECONDITION_RETRYABLE: Final = frozenset(
    {
        # The machine is still settling (created/replacing/stopping): the same start works later.
        PreconditionReason.START_NOT_READY,
        # Fly releases a volume in the background after its machine is destroyed.
        PreconditionReason.VOLUME_CLAIMED,
        PreconditionReason.VOLUME_BOUND,
        # A freshly set secret propagates; the same min_secrets_version is accepted later.
        PreconditionReason.SECRETS_VERSION,
    }
)


class Precondition(FlyError):
    """412 (`failed_precondition`): the target is not in a state that allows the call. Whether
    waiting helps depends on the reason, hence `reason`."""

    kind = FailureKind.PRECONDITION

    def __init__(self, message: str, *, reason: PreconditionReason, **kwargs: Any) -> None:
        kwargs.setdefault("retryable", reason in _PRECONDITION_RETRYABLE)
        super().__init__(message, **kwargs)
        self.reason = reason


class CapacityScope(StrEnum):
    REGION = "region"  # `no capacity available in <region>` / `insufficient_capacity`: try another region
    HOST = "host"  # the machine's host is out of memory (409 on start/update): resize or move
    VOLUME_HOST = "volume_host"  # the volume's host cannot fit the machine: fork or recreate the volume


class InsufficientCapacity(FlyError):
    """No room for the request where it was asked for. Not retryable as is: pick another region,
    another host (fork the volume) or a smaller size."""

    kind = FailureKind.CAPACITY

    def __init__(self, message: str, *, scope: CapacityScope, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.scope = scope


class QuotaExceeded(FlyError):
    """422 or `over the allowed quota`: an org/app limit. Terminal until the quota changes."""

    kind = FailureKind.QUOTA


class RateLimited(FlyError):
    """429. `retry_after` is the server's Retry-After in seconds when it sent one."""

    kind = FailureKind.RATE_LIMITED

    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Timeout(FlyError):
    """408/504 or the client's own read timeout. For a mutating call the change may have been
    applied anyway (`ambiguous`), which flyctl calls a "silent success"."""

    kind = FailureKind.TIMEOUT

    default_retryable = True


class WaitTimeout(Timeout):
    """The wait endpoint's deadline passed before the machine reached the wanted state. Never
    ambiguous (a wait changes nothing); `current_state` is parsed from Fly's message."""

    def __init__(self, message: str, *, current_state: str | None = None, **kwargs: Any) -> None:
        kwargs["ambiguous"] = False
        super().__init__(message, **kwargs)
        self.current_state = current_state


class Unavailable(FlyError):
    """5xx (HTML proxy pages included) or a network failure: Fly is having trouble."""

    kind = FailureKind.UNAVAILABLE

    default_retryable = True


class AmbiguousCreate(Timeout):
    """A create failed in a way that may hide a success, and looking for the object by its tag
    did not find it. The client does not send the create again; the caller retries later, when
    the (eventually consistent) list has caught up, and its create looks first. A `Timeout` in
    kind (the outcome is unknown), whatever the `cause` was (408, 5xx, reset, name taken)."""

    default_retryable = True

    def __init__(self, message: str, *, cause: FlyError, **kwargs: Any) -> None:
        kwargs.setdefault("ambiguous", True)
        super().__init__(message, **kwargs)
        self.cause = cause


class UnexpectedResponse(FlyError):
    """A status or body nothing above covers (an odd 3xx/4xx, or a 2xx body that does not parse,
    e.g. a proxy's HTML page). Treated like Fly having trouble: retryable, kind `Unavailable`."""

    default_retryable = True


# --- classification --------------------------------------------------------------------------

_TAG_RE: Final = re.compile(r"<[^>]+>")
_SPACE_RE: Final = re.compile(r"\s+")
_TITLE_RE: Final = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_CURRENTLY_RE: Final = re.compile(r"currently\s+([a-z_]+)", re.IGNORECASE)

# Fly puts flyd's gRPC code in front of many messages; each lines up with one HTTP status (§7).
_PREFIX_STATUS: Final = {
    "not_found": 404,
    "invalid_argument": 400,
    "deadline_exceeded": 408,
    "failed_precondition": 412,
    "aborted": 409,
    "unavailable": 503,
}

_REGION_CAPACITY: Final = ("no capacity", "insufficient_capacity", "insufficient capacity")
_VOLUME_HOST_CAPACITY: Final = ("insufficient resources to create new machine with existing volume",)
_HOST_CAPACITY: Final = ("insufficient memory", "could not reserve resource", "insufficient resources")
_QUOTA: Final = ("over the allowed quota", "quota", "machine limit", "limit reached", "too many machines")


def _has(text: str, needles: tuple[str, ...]) -> bool:
    return any(n in text for n in needles)


def _parse_body(body: str) -> tuple[str, str | None]:
    """(message, code) from any of Fly's three JSON error shapes, or from a non-JSON body."""
    stripped = body.strip()
    if not stripped:
        return "", None
    try:
        data: Any = json.loads(stripped)
    except ValueError:
        data = None
    if isinstance(data, dict):
        # fly-go's lease envelope reads `message` before `error` (§1).
        raw_msg = data.get("message") or data.get("error") or ""
        message = raw_msg if isinstance(raw_msg, str) else json.dumps(raw_msg)
        code: str | None = None
        for key in ("code", "status"):
            value = data.get(key)
            # `"status": "error"` is the envelope's marker, not a code.
            if isinstance(value, str) and value and value not in ("error", "success"):
                code = value
                break
        return message, code
    if isinstance(data, str):
        return data, None
    # HTML from the proxy (502/503 pages) or plain text: keep something readable.
    title = _TITLE_RE.search(stripped)
    text = title.group(1) if title else _TAG_RE.sub(" ", stripped)
    return _SPACE_RE.sub(" ", text).strip()[:200], None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def _conflict_reason(text: str, code: str | None) -> ConflictReason:
    if code == "name_taken" or _has(text, ("name_taken", "already been taken", "already exists")):
        return ConflictReason.NAME_TAKEN
    if "lease" in text:
        return ConflictReason.LEASE_HELD
    if _has(text, ("concurrent update", "is replacing", "aborted")):
        return ConflictReason.CONCURRENT_UPDATE
    if _has(text, ("current_version", "version mismatch", "version does not match", "machine_version")):
        return ConflictReason.VERSION_MISMATCH
    if "busy" in text:
        return ConflictReason.BUSY
    return ConflictReason.UNKNOWN


def _precondition_reason(text: str) -> PreconditionReason:
    if "claimed" in text:
        return PreconditionReason.VOLUME_CLAIMED
    if "bound to machine" in text or "currently bound" in text:
        return PreconditionReason.VOLUME_BOUND
    if _has(text, ("unable to destroy", "not currently stopped")):
        return PreconditionReason.DESTROY_RUNNING
    if _has(
        text,
        (
            "unable to start",
            "refusing to start",
            "still active",
            "getting replaced",
            "not ready",
            "from current state",
        ),
    ):
        return PreconditionReason.START_NOT_READY
    if "secret" in text:
        return PreconditionReason.SECRETS_VERSION
    if _has(text, ("machine_version", "version")):
        return PreconditionReason.VERSION_MISMATCH
    return PreconditionReason.UNKNOWN


def _capacity_scope(text: str, code: str | None) -> CapacityScope | None:
    if _has(text, _VOLUME_HOST_CAPACITY):
        return CapacityScope.VOLUME_HOST
    if code == "insufficient_capacity" or _has(text, _REGION_CAPACITY):
        return CapacityScope.REGION
    if _has(text, _HOST_CAPACITY):
        return CapacityScope.HOST
    return None


def classify(
    status: int,
    body: str,
    *,
    method: str | None = None,
    route: str | None = None,
    request_id: str | None = None,
    retry_after: str | None = None,
) -> FlyError:
    """The typed error for a non-2xx response. `body` is the raw text (JSON or not)."""
    message, code = _parse_body(body)
    text = f"{message} {code or ''}".lower()
    mutating = (method or "").upper() in _MUTATING
    common: dict[str, Any] = {
        "status": status,
        "request_id": request_id,
        "code": code,
        "method": method,
        "route": route,
        "body": body,
    }
    if not message:
        message = f"HTTP {status}"

    effective = status
    if status not in (400, 401, 403, 404, 408, 409, 412, 413, 422, 429) and status < 500:
        # An odd status (e.g. 410, 425): let flyd's gRPC prefix say what it is.
        prefix = message.split(":", 1)[0].strip().lower()
        effective = _PREFIX_STATUS.get(prefix, status)

    # Capacity hides behind 400/403/409/412 (KiloClaw's isFlyInsufficientResources) and behind the
    # machine-readable `insufficient_capacity` code; quota behind 422 or its own message.
    if effective in (400, 403, 409, 412, 422):
        if _has(text, ("over the allowed quota",)) or (effective == 422 and _has(text, _QUOTA)):
            return QuotaExceeded(message, **common)
        scope = _capacity_scope(text, code)
        if scope is not None:
            return InsufficientCapacity(message, scope=scope, **common)

    if effective == 400:
        return InvalidConfig(message, **common)
    if effective == 413:
        # Request too large: the same body can never succeed (issue 18).
        return InvalidConfig(f"request too large: {message}", **common)
    if effective == 401:
        return Unauthorized(message, **common)
    if effective == 403:
        return Forbidden(message, **common)
    if effective == 404:
        return NotFound(message, **common)
    if effective == 408:
        # Only the wait endpoint's deadline is a WaitTimeout: any other call's 408 may carry the
        # same `deadline_exceeded:` prefix and still hide a committed change.
        on_wait = route is not None and route.endswith("/wait")
        if "failed to reach desired state" in text or (on_wait and "deadline_exceeded" in text):
            current = _CURRENTLY_RE.search(message)
            return WaitTimeout(message, current_state=current.group(1) if current else None, **common)
        return Timeout(message, ambiguous=mutating, **common)
    if effective == 409:
        return Conflict(message, reason=_conflict_reason(text, code), **common)
    if effective == 412:
        return Precondition(message, reason=_precondition_reason(text), **common)
    if effective == 422:
        if code == "name_taken" or "taken" in text:
            return Conflict(message, reason=ConflictReason.NAME_TAKEN, **common)
        return InvalidConfig(message, **common)
    if effective == 429:
        return RateLimited(message, retry_after=parse_retry_after(retry_after), **common)
    if effective == 504:
        return Timeout(message, ambiguous=mutating, **common)
    if effective >= 500:
        return Unavailable(message, ambiguous=mutating, **common)
    return UnexpectedResponse(message, **common)
