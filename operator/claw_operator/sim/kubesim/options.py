"""Request options: `dryRun` on every write, and `DeleteOptions` from the query *and* the body.

kubectl (`delete --dry-run=server`, `apply --prune`) and the client libraries
(`V1DeleteOptions(dry_run=["All"])`) send DeleteOptions as the DELETE request's body; the query
form is the other half. Both are read and validated as kube-apiserver does, and what kubesim
cannot honour is refused (422) instead of being ignored: an ignored `dryRun` deletes for real.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request, invalid

DRY_RUN_ALL = "All"
PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")


def _cause(field_path: str, message: str, reason: str = "FieldValueNotSupported") -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field_path}


def parse_dry_run(values: list[str], kind: str = "DeleteOptions") -> bool:
    """`dryRun` values: none (a real write) or exactly `All`; anything else is invalid."""
    causes = [
        _cause("dryRun", f'Unsupported value: "{value}": supported values: "All"')
        for value in values
        if value != DRY_RUN_ALL
    ]
    if causes:
        raise invalid(kind, "meta.k8s.io", "", causes)
    return bool(values)


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise bad_request(f"DeleteOptions.{what} must be a list of strings")


@dataclass
class DeleteOptions:
    dry_run: bool = False
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    grace_period_seconds: int | None = None
    preconditions: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The form `ObjectService.delete_locked` takes."""
        out: dict[str, Any] = {"preconditions": self.preconditions}
        if self.propagation_policy is not None:
            out["propagationPolicy"] = self.propagation_policy
        if self.orphan_dependents is not None:
            out["orphanDependents"] = self.orphan_dependents
        return out


_BODY_FIELDS = {
    "kind",
    "apiVersion",
    "dryRun",
    "propagationPolicy",
    "orphanDependents",
    "gracePeriodSeconds",
    "preconditions",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
}


def parse_delete_options(query: Mapping[str, str], query_dry_run: list[str], body: Any) -> DeleteOptions:
    """DeleteOptions from the body (JSON, any apiVersion the apiserver accepts) over the query."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_request("the DeleteOptions body must be a JSON object")
    kind = body.get("kind")
    if kind not in (None, "DeleteOptions"):
        raise bad_request(f"the body of a DELETE must be DeleteOptions, not {kind}")
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        # A field kubesim does not know could change what the delete means: refuse it.
        raise bad_request(
            "DeleteOptions: strict decoding error: " + ", ".join(f'unknown field "{k}"' for k in unknown)
        )
    dry_run = parse_dry_run(query_dry_run + _strings(body.get("dryRun"), "dryRun"))
    policy = body.get("propagationPolicy", query.get("propagationPolicy"))
    orphan_raw = body.get("orphanDependents", query.get("orphanDependents"))
    orphan: bool | None = None
    if isinstance(orphan_raw, str):
        orphan = orphan_raw in ("1", "true", "True")
    elif isinstance(orphan_raw, bool):
        orphan = orphan_raw
    causes = []
    if policy is not None and policy not in PROPAGATION_POLICIES:
        causes.append(
            _cause(
                "propagationPolicy",
                f'Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan", "nil"',
            )
        )
    if policy is not None and orphan is not None:
        causes.append(
            _cause(
                "propagationPolicy",
                'Invalid value: "' + str(policy) + '": orphanDependents and deletionPropagation '
                "cannot be both set",
                "FieldValueInvalid",
            )
        )
    grace_raw = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
    grace: int | None = None
    if grace_raw is not None:
        try:
            grace = int(grace_raw)
        except (TypeError, ValueError):
            causes.append(_cause("gracePeriodSeconds", f"Invalid value: {grace_raw!r}", "FieldValueInvalid"))
    if causes:
        raise invalid("DeleteOptions", "meta.k8s.io", "", causes)
    preconditions = body.get("preconditions") or {}
    if not isinstance(preconditions, dict):
        raise bad_request("DeleteOptions.preconditions must be an object")
    return DeleteOptions(
        dry_run=dry_run,
        propagation_policy=policy,
        orphan_dependents=orphan,
        grace_period_seconds=grace,
        preconditions=preconditions,
    )
