"""Turn a ClawInstance object (as read from the apiserver) into the decisions' `Instance`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
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


@dataclass(frozen=True)
class Parsed:
    """An object's spec and status as validated models, with what they were parsed from: the
    same dicts (by identity, held here so it cannot be recycled) at the same resourceVersion
    parse the same. A periodic check re-reads the watched object, unchanged, every interval."""

    resource_version: str | None
    spec_source: object
    status_source: object
    spec: ClawInstanceSpec
    status: ClawInstanceStatus

    @cached_property
    def status_is_canonical(self) -> bool:
        """The status model writes back exactly the status it was parsed from: then a decided
        status equal to the model (a cheap comparison) needs no write, without rendering it to
        its wire form (`StatusWriter.unchanged`)."""
        return self.status.to_wire() == (self.status_source or {})

    def fits(self, obj: dict[str, Any]) -> bool:
        return (
            self.resource_version is not None
            and obj.get("metadata", {}).get("resourceVersion") == self.resource_version
            and obj.get("spec") is self.spec_source
            and obj.get("status") is self.status_source
        )


def parse(obj: dict[str, Any], last: Parsed | None = None) -> Parsed:
    """The object's spec and status validated; `last` again when it was parsed from the same."""
    if last is not None and last.fits(obj):
        return last
    spec, status = obj.get("spec"), obj.get("status")
    # A part equal to the one `last` was parsed from parses the same: the spec stays through
    # every status write, the status through a metadata change (kopf's finalizer).
    same_spec = last is not None and spec == last.spec_source
    same_status = last is not None and status == last.status_source
    return Parsed(
        obj.get("metadata", {}).get("resourceVersion"),
        spec,
        status,
        last.spec if last is not None and same_spec else ClawInstanceSpec.model_validate(spec or {}),
        last.status if last is not None and same_status else ClawInstanceStatus.model_validate(status or {}),
    )


def to_instance(
    obj: dict[str, Any],
    *,
    default_app: str | None,
    env: ResolvedEnv | None,
    failures: int,
    parsed: Parsed | None = None,
) -> Instance:
    """The decisions' view of `obj`. `parsed`: `parse(obj, …)`'s answer, when the caller keeps
    one (the models are never changed: a draft works on its own copy of the status)."""
    metadata = obj["metadata"]
    parsed = parsed if parsed is not None and parsed.fits(obj) else parse(obj)
    spec, status = parsed.spec, parsed.status
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
