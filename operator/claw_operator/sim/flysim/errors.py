"""Fly's error answers, in the three body shapes seen in the wild (§1 of the reference).

- `{"error": msg}`, the common case;
- `{"error": msg, "status": code}`, with a machine-readable code (`insufficient_capacity`,
  `name_taken`);
- `{"status": "error", "message": msg, "code": code}`, the lease-shaped body.

Messages carry flyd's gRPC-style prefix where Fly's do (`not_found:`, `failed_precondition:`,
`invalid_argument:`, `deadline_exceeded:`, `aborted:`, `unavailable:`).
"""

from __future__ import annotations

from typing import Any


class FlyError(Exception):
    """An error answer: raised anywhere below a handler, rendered by the server."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        lease_shape: bool = False,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.lease_shape = lease_shape
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        if self.lease_shape:
            body: dict[str, Any] = {"status": "error", "message": self.message}
            if self.code:
                body["code"] = self.code
        else:
            body = {"error": self.message}
            if self.code:
                body["status"] = self.code
        body.update(self.extra)
        return body


def int_argument(value: Any, field: str) -> int:
    """An integer from a JSON value, or the 400 Fly's Go decoder gives for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise FlyError(
            400, f"json: cannot unmarshal {type(value).__name__} into Go struct field .{field} of type int"
        )
    return int(value)


def bad_request(message: str) -> FlyError:
    return FlyError(400, message)


def invalid_argument(message: str) -> FlyError:
    return FlyError(400, f"invalid_argument: {message}")


def not_found(what: str) -> FlyError:
    return FlyError(404, f"not_found: {what} not found")


def machine_not_found() -> FlyError:
    return FlyError(404, "not_found: machine not found")


def failed_precondition(message: str) -> FlyError:
    return FlyError(412, f"failed_precondition: {message}")


def aborted(message: str) -> FlyError:
    return FlyError(409, f"aborted: {message}")


def unavailable(message: str) -> FlyError:
    return FlyError(503, f"unavailable: {message}")


def unauthorized() -> FlyError:
    return FlyError(401, "Authenticate: token validation error")
