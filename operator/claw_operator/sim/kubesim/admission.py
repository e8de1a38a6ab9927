"""What the apiserver does to an object between decoding and storage: names, per-kind defaults
(Secret `stringData`, Namespace phase, CRD conditions), and for custom resources the CRD's
structural schema: pruning, defaulting, validation and CEL rules (`claw_operator.sim.crdschema`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from claw_operator.sim import crdschema

from . import defaults
from .errors import ApiError, bad_request, invalid
from .resources import ResourceType

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


@dataclass
class Admitted:
    """An object ready to store, and the warnings to send back (`Warning:` headers)."""

    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _cause(field_path: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field_path}


def validate_metadata(rtype: ResourceType, obj: dict[str, Any]) -> None:
    metadata = obj["metadata"]
    name = metadata.get("name", "")
    causes = []
    if rtype.plural == "namespaces":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            causes.append(
                _cause(
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                    "alphanumeric characters or '-', and must start and end with an alphanumeric character",
                )
            )
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        causes.append(
            _cause(
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    for key in ("labels", "annotations"):
        mapping = metadata.get(key)
        if mapping is None:
            continue
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise bad_request(
                f"{rtype.kind} in version {rtype.version!r} cannot be handled: "
                f"metadata.{key} must be a map of strings"
            )
    for value in (metadata.get("labels") or {}).values():
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                _cause(
                    "metadata.labels",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist of '
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character",
                )
            )
    if causes:
        raise invalid(rtype.kind, rtype.group, name, causes)


def _prepare_secret(obj: dict[str, Any]) -> None:
    string_data = obj.pop("stringData", None) or {}
    data = dict(obj.get("data") or {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    for key, value in data.items():
        try:
            base64.b64decode(value, validate=True)
        except (ValueError, TypeError) as exc:
            raise invalid(
                "Secret",
                "",
                obj["metadata"]["name"],
                [_cause(f"data[{key}]", "Invalid value: illegal base64 data")],
            ) from exc
    if data:
        obj["data"] = data
    obj.setdefault("type", "Opaque")


def _prepare_namespace(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    obj["status"] = (old or {}).get("status") or {"phase": "Active"}
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def _prepare_crd(obj: dict[str, Any], old: dict[str, Any] | None, names_conflict: str | None) -> None:
    spec = obj.get("spec") or {}
    name = obj["metadata"]["name"]
    causes = []
    names = spec.get("names") or {}
    if not spec.get("group"):
        causes.append(_cause("spec.group", "Required value", "FieldValueRequired"))
    if not names.get("plural") or not names.get("kind"):
        causes.append(_cause("spec.names", "Required value: plural and kind", "FieldValueRequired"))
    elif name != f"{names['plural']}.{spec.get('group')}":
        causes.append(
            _cause("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            _cause("spec.versions", "Invalid value: must have exactly one version marked as storage version")
        )
    if causes:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
    accepted = names_conflict is None
    names_out = {"listKind": f"{names['kind']}List", "singular": names["kind"].lower(), **names}
    spec["names"] = names_out
    spec.setdefault("scope", "Namespaced")
    condition_time = ((old or {}).get("status") or {}).get("conditions", [{}])[0].get("lastTransitionTime")
    now = obj["metadata"]["creationTimestamp"] if condition_time is None else condition_time
    storage_versions = [v["name"] for v in versions if v.get("storage")] or [versions[0]["name"]]
    obj["status"] = {
        "acceptedNames": names_out if accepted else {},
        "storedVersions": storage_versions,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True" if accepted else "False",
                "reason": "NoConflicts" if accepted else "NameConflict",
                "message": "no conflicts found" if accepted else names_conflict,
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True" if accepted else "False",
                "reason": "InitialNamesAccepted" if accepted else "NotAccepted",
                "message": "the initial names have been accepted"
                if accepted
                else "not all names are accepted",
                "lastTransitionTime": now,
            },
        ],
    }


def prepare_builtin(
    rtype: ResourceType,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    names_conflict: str | None = None,
    allocate: defaults.Allocator | None = None,
) -> None:
    """Per-kind defaults and derived fields, in place on a fresh copy."""
    key = (rtype.group, rtype.plural)
    if not rtype.custom and defaults.prepare(
        rtype.group, rtype.plural, rtype.kind, obj, old, allocate or _no_allocation
    ):
        return
    if key == ("", "secrets"):
        _prepare_secret(obj)
    elif key == ("", "namespaces"):
        _prepare_namespace(obj, old)
    elif key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        _prepare_crd(obj, old, names_conflict)


def _no_allocation(what: str) -> Any:
    raise ApiError(500, "InternalError", f"Internal error occurred: no {what} allocator")


def admit_custom(
    rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, field_validation: str
) -> Admitted:
    """Prune, default and validate a custom resource as the apiextensions-apiserver does."""
    schema = rtype.schema
    if schema is None:
        return Admitted(obj)
    pruned_obj, unknown = crdschema.prune(schema, obj)
    if unknown and field_validation == "Strict":
        fields = ", ".join(f'unknown field "{path}"' for path in unknown)
        raise ApiError(
            400,
            "BadRequest",
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {fields}",
        )
    warnings = [f'unknown field "{path}"' for path in unknown] if field_validation == "Warn" else []
    defaulted = crdschema.apply_defaults(schema, pruned_obj)
    old_for_rules = None
    if old is not None:
        old_for_rules = crdschema.apply_defaults(schema, crdschema.prune(schema, old)[0])
    causes = crdschema.validate(schema, defaulted, old_for_rules, ratcheting=True)
    if causes:
        raise invalid(
            rtype.kind,
            rtype.group,
            obj["metadata"]["name"],
            [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
        )
    return Admitted(defaulted, warnings)
