"""Kubernetes Events on the ClawInstance.

Most are posted through kopf's event queue, one Event per transition. The reasons in `SERIES`
repeat for as long as a condition lasts (a crash loop, a failing health check): those are one
Event per object and reason whose `count` and `lastTimestamp` grow, as the Go client's event
aggregation does — a day of crash loop is one Event with a large count, not hundreds.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any, Final, cast

import kopf

from claw_operator.api.reasons import EventReason
from claw_operator.kube.kubeapi import KubeApi, KubeApiError
from claw_operator.lifecycle.model import EventRecord

log = logging.getLogger(__name__)

SERIES: Final = frozenset({EventReason.CRASH_LOOP_BACK_OFF, EventReason.UNHEALTHY})
COMPONENT: Final = "claw-operator"
MAX_MESSAGE: Final = 1024


async def post_event(obj: dict[str, Any], event: EventRecord) -> None:
    """Queue one Event (reason = the contract's word). kopf posts it in the background."""
    kopf.event(
        kopf.Body(cast(kopf.RawBody, obj)),
        type=event.type.value,
        reason=event.reason,
        message=event.message[:MAX_MESSAGE],
    )


def series_name(obj: dict[str, Any], reason: str) -> str:
    """The one Event of a series: fixed per object (by UID) and reason."""
    meta = obj["metadata"]
    digest = hashlib.sha256(f"{meta.get('uid', '')}/{reason}".encode()).hexdigest()[:10]
    return f"{meta['name']}.{digest}"


class EventSeries:
    """Posts the `SERIES` reasons as one Event per object and reason, its count growing.

    The count is remembered per process; after an operator restart it is read back once.
    """

    def __init__(self, kube: KubeApi) -> None:
        self._kube = kube
        self._counts: dict[str, int] = {}

    async def post(self, obj: dict[str, Any], event: EventRecord) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        name = series_name(obj, event.reason)
        now = datetime.now(UTC).isoformat()
        message = event.message[:MAX_MESSAGE]
        try:
            known = self._counts.get(name)
            if known is None:
                known = await self._kube.read_event_count(namespace, name)
            if known is not None:
                count = known + 1
                patch = {"count": count, "lastTimestamp": now, "message": message}
                if await self._kube.patch_event(namespace, name, patch):
                    self._counts[name] = count
                    return
            body = {
                "metadata": {"name": name, "namespace": namespace},
                "type": event.type.value,
                "reason": str(event.reason),
                "message": message,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": COMPONENT},
                "reportingComponent": COMPONENT,
                "reportingInstance": COMPONENT,
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion"),
                    "kind": obj.get("kind"),
                    "name": meta["name"],
                    "namespace": namespace,
                    "uid": meta.get("uid"),
                },
            }
            if await self._kube.create_event(namespace, body):
                self._counts[name] = 1
            else:
                self._counts.pop(name, None)  # created meanwhile: read its count next time
        except KubeApiError as exc:
            # Events are auxiliary: never fail a pass over one.
            log.warning(
                "failed to post an event",
                extra={"action": "event_failed", "reason": str(event.reason), "status": exc.status},
            )
