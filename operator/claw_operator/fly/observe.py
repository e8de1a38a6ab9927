"""What the client tells an observer about each HTTP exchange with Fly (metrics hook).

The client never imports metrics: whoever builds it may pass `FlyClientConfig.on_request`, a
callable that receives one `FlyRequest` per exchange (retries are separate exchanges). It
carries the route *template* and an operation name, never a URL, an object id or a token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FlyRequest", "RequestObserver"]


@dataclass(frozen=True, slots=True)
class FlyRequest:
    operation: str  # e.g. "get_machine", "create_machine", "wait_machine"
    method: str
    route: str  # the path template, e.g. "/v1/apps/{app}/machines/{id}/wait"
    status: int | None  # HTTP status; None when no response was received
    duration: float  # seconds
    error: str | None = None  # the FlyError class name when the exchange failed


RequestObserver = Callable[[FlyRequest], None]
