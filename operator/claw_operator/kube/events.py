"""Kubernetes Events on the ClawInstance, posted through kopf's event queue."""

from __future__ import annotations

from typing import Any, cast

import kopf

from claw_operator.lifecycle.model import EventRecord


async def post_event(obj: dict[str, Any], event: EventRecord) -> None:
    """Queue one Event (reason = the contract's word). kopf posts it in the background."""
    kopf.event(
        kopf.Body(cast(kopf.RawBody, obj)),
        type=event.type.value,
        reason=event.reason,
        message=event.message[:1024],
    )
