"""Turn a ClawInstance object (as read from the apiserver) into the decisions' `Instance`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from claw_operator.api import (
    PAUSED_ANNOTATION,
    RECONCILE_REQUEST_ANNOTATION,
    ClawInstanceSpec,
    ClawInstanceStatus,
)
from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.edge import ResolvedEnv
from claw_operator.lifecycle.model import Instance


def is_paused(obj: dict[str, Any]) -> bool:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(PAUSED_ANNOTATION, "")).strip().lower() == "true"


def reconcile_request(obj: dict[str, Any]) -> str | None:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(RECONCILE_REQUEST_ANNOTATION)
    return str(value) if value is not None else None


def created_at(obj: dict[str, Any]) -> datetime | None:
    return parse_rfc3339(obj.get("metadata", {}).get("creationTimestamp"))


def to_instance(
    obj: dict[str, Any], *, default_app: str | None, env: ResolvedEnv | None, failures: int
) -> Instance:
    metadata = obj["metadata"]
    spec = ClawInstanceSpec.model_validate(obj.get("spec") or {})
    status = ClawInstanceStatus.model_validate(obj.get("status") or {})
    return Instance(
        uid=metadata["uid"],
        namespace=metadata["namespace"],
        name=metadata["name"],
        generation=int(metadata.get("generation") or 1),
        spec=spec,
        status=status,
        app=spec.app or status.app_name or default_app or "",
        deleting=bool(metadata.get("deletionTimestamp")),
        paused=is_paused(obj),
        reconcile_request=reconcile_request(obj),
        env_digest=env.digest if env else None,
        secret_error=env.error if env else None,
        failures=failures,
        created_at=created_at(obj),
    )
