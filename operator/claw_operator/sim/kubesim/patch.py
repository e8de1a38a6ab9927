"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and server-side apply
(create-or-merge, with managedFields); strategic merge patch is `strategic.py`.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from .errors import ApiError, bad_request

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (JSON_PATCH, MERGE, STRATEGIC, APPLY)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(target, operations, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from exc


def apply_merge(target: Any, applied: Any) -> Any:
    """Server-side apply, approximated: the applied configuration merged over the live object.

    Objects merge key by key; lists and scalars from the applied configuration win. Fields the
    manager stopped applying are not removed (kubesim does not track ownership per field).
    """
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    result = dict(target)
    for key, value in applied.items():
        result[key] = apply_merge(target.get(key), value)
    return result


def fields_v1(applied: Any, *, root: bool = True) -> dict[str, Any]:
    """The `fieldsV1` set of an applied configuration (lists treated as atomic).

    At the root, only metadata's labels, annotations and finalizers are owned, as in the
    apiserver; apiVersion and kind are not fields anyone owns.
    """
    if not isinstance(applied, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in applied.items():
        if root and key in ("apiVersion", "kind"):
            continue
        if root and key == "metadata":
            if not isinstance(value, dict):
                continue
            value = {k: v for k, v in value.items() if k in ("labels", "annotations", "finalizers")}
            if not value:
                continue
        out[f"f:{key}"] = fields_v1(value, root=False) if isinstance(value, dict) else {}
    return out


Path = tuple[str, ...]


def leaf_paths(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """The owned leaves of a `fieldsV1` set, e.g. {("spec", "region"), ("spec", "env", "A")}."""
    paths: set[Path] = set()
    for key, child in fields.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        if isinstance(child, dict) and child:
            paths |= leaf_paths(child, path)
        else:
            paths.add(path)
    return paths


def managed_fields(obj: dict[str, Any], manager: str, subresource: str, *, mine: bool) -> set[Path]:
    """Leaves owned by `manager`'s Apply entry (mine=True) or by every other Apply entry."""
    paths: set[Path] = set()
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("operation") != "Apply" or entry.get("subresource", "") != subresource:
            continue
        if (entry.get("manager") == manager) == mine:
            paths |= leaf_paths(entry.get("fieldsV1") or {})
    return paths


def remove_unapplied(obj: dict[str, Any], dropped: set[Path], owned_by_others: set[Path]) -> None:
    """Remove (in place) the fields a manager applied before and no longer applies, unless
    another manager applies them too — what makes `kubectl apply --server-side` delete a field
    dropped from the manifest."""
    for path in sorted(dropped):
        if any(other[: len(path)] == path or path[: len(other)] == other for other in owned_by_others):
            continue
        node: Any = obj
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)


def record_manager(
    obj: dict[str, Any],
    manager: str,
    operation: str,
    applied: Any,
    api_version: str,
    now: str,
    subresource: str,
) -> None:
    """Add or replace this manager's `managedFields` entry (in place, on a fresh copy)."""
    metadata = obj.setdefault("metadata", {})
    entries = [
        e
        for e in metadata.get("managedFields") or []
        if not (
            e.get("manager") == manager
            and e.get("operation") == operation
            and e.get("subresource", "") == subresource
        )
    ]
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(applied),
    }
    if subresource:
        entry["subresource"] = subresource
    entries.append(entry)
    metadata["managedFields"] = entries
