"""Scripted faults, queued by method and path glob with a count or a probability (§11 H27).

Modes (architecture.md): `error` answers `status` without doing anything; `silent_success`
does the request, then answers `status` (default 408, flyctl's "silent success"); `hang`
never answers; `reset` drops the connection; `stale_list` hides objects created in the last
`window` seconds from lists; `empty_list` answers lists with `[]`; `not_found_flicker` answers
404 for a machine or volume created in the last `window` seconds (a large `window`: any).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from . import errors

REQUEST_MODES = frozenset({"error", "silent_success", "hang", "reset"})
LIST_MODES = frozenset({"stale_list", "empty_list"})
FLICKER_MODES = frozenset({"not_found_flicker"})
MODES = REQUEST_MODES | LIST_MODES | FLICKER_MODES

_DEFAULT_STATUS = {"error": 503, "silent_success": 408}
_REASONS = {
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_DEFAULT_MESSAGES = {
    408: "deadline_exceeded: request timed out",
    429: "rate limit exceeded",
    500: "internal: internal server error",
    502: "upstream connect error",
    503: "unavailable: service temporarily unavailable",
    504: "deadline_exceeded: upstream request timeout",
}


@dataclass
class Fault:
    id: str
    method: str
    path: str
    mode: str
    status: int | None
    count: int | None
    probability: float
    retry_after: float | None
    body: str
    message: str | None
    window: float
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        return glob_matches(self.path, path)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def answer(self) -> errors.FlyError:
        """The error response this fault gives (for `error` and `silent_success`)."""
        status = self.status or _DEFAULT_STATUS.get(self.mode, 503)
        message = self.message or _DEFAULT_MESSAGES.get(status, f"error {status}")
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(
                int(self.retry_after) if float(self.retry_after).is_integer() else self.retry_after
            )
        return errors.FlyError(status, message, headers=headers)

    def html_body(self) -> str:
        status = self.status or _DEFAULT_STATUS.get(self.mode, 503)
        reason = _REASONS.get(status, "Error")
        return (
            f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>fly-proxy</center>\r\n"
            "</body>\r\n</html>\r\n"
        )


def _number(spec: dict[str, Any], key: str, default: float) -> float:
    value = spec.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.invalid_argument(f"{key} must be a number")
    return float(value)


def glob_matches(pattern: str, path: str) -> bool:
    """`*` matches exactly one path segment; a trailing `**` matches the rest."""
    want = pattern.strip("/").split("/")
    have = path.strip("/").split("/")
    for index, part in enumerate(want):
        if part == "**":
            return True
        if index >= len(have) or (part != "*" and part != have[index]):
            return False
    return len(want) == len(have)


class FaultBook:
    def __init__(self, seed: int) -> None:
        self._faults: dict[str, Fault] = {}
        self._next = 1
        self._rng = random.Random(f"flysim:{seed}:faults")

    def add(self, spec: dict[str, Any]) -> Fault:
        mode = spec.get("mode", "error")
        if mode not in MODES:
            raise errors.invalid_argument(f"mode must be one of {sorted(MODES)}")
        path = spec.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise errors.invalid_argument("path must be a glob starting with '/'")
        body = spec.get("body") or "json"
        if body not in ("json", "html"):
            raise errors.invalid_argument("body must be json or html")
        count = spec.get("count", 1)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise errors.invalid_argument("count must be a positive integer or null")
        retry_after = spec.get("retry_after")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int | float)
        ):
            raise errors.invalid_argument("retry_after must be a number of seconds or null")
        probability = _number(spec, "probability", 1.0)
        if not 0.0 <= probability <= 1.0:
            raise errors.invalid_argument("probability must be within [0, 1]")
        status = spec.get("status")
        if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
            raise errors.invalid_argument("status must be an HTTP status code")
        fault = Fault(
            id=f"fault-{self._next}",
            method=str(spec.get("method") or "*").upper(),
            path=path,
            mode=mode,
            status=status,
            count=count,
            probability=probability,
            retry_after=retry_after,
            body=body,
            message=spec.get("message"),
            window=_number(spec, "window", 5.0),
        )
        self._next += 1
        self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[Fault]:
        return list(self._faults.values())

    def __bool__(self) -> bool:
        return bool(self._faults)

    def pick(
        self,
        method: str,
        path: str,
        modes: frozenset[str],
        applies: Callable[[Fault], bool] | None = None,
    ) -> Fault | None:
        """The first matching fault of one of `modes` that fires now (count and probability).

        `applies` narrows further (e.g. a flicker only hits a machine created moments ago);
        a fault that does not apply is not spent.
        """
        for fault in list(self._faults.values()):
            if fault.mode not in modes or not fault.matches(method, path):
                continue
            if applies is not None and not applies(fault):
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            fault.hits += 1
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    del self._faults[fault.id]
            return fault
        return None
