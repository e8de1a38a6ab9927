"""Strategic merge patch (`application/strategic-merge-patch+json`) for the built-in kinds, as
apimachinery's `strategicpatch` applies it: lists merge by each field's `patchMergeKey` (containers
by name, ports by port, ownerReferences by uid, finalizers as a set of values) and the
directives `$patch` (merge/replace/delete), `$setElementOrder/<list>`, `$retainKeys` and
`$deleteFromPrimitiveList/<list>` are honoured.

What the patch asks and kubesim does not understand (an unknown directive, a list element
without its merge key, a list where an object belongs) is refused with 400 — as the apiserver
does — rather than guessed at: a guess would corrupt the object. Kinds without a known shape
(custom resources) are refused with 415 by the caller, as the apiserver refuses them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import typemeta
from .errors import ApiError, bad_request

PATCH = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

# A value's shape: ("struct", type name), ("map", value shape), ("list", field meta), ("any",).
Shape = tuple[Any, ...]
ANY: Shape = ("any",)


def root_type(group: str, kind: str) -> str | None:
    """The OpenAPI type of a built-in kind, or None (no strategic merge for it)."""
    return typemeta.KINDS.get((group, kind))


def field_shape(meta: dict[str, Any] | None) -> Shape:
    if not meta:
        return ANY
    if "list" in meta:
        return ("list", meta)
    if meta.get("map"):
        return ("map", ("struct", meta["type"]) if "type" in meta else ANY)
    if "type" in meta:
        return ("struct", meta["type"])
    return ANY


def _fields(shape: Shape) -> dict[str, Any]:
    # An unknown type (e.g. "$Scale") has no lists to merge by key: objects merge, the rest replaces.
    return typemeta.TYPES.get(shape[1], {}) if shape[0] == "struct" else {}


def _child_shape(shape: Shape, key: str) -> Shape:
    if shape[0] == "struct":
        return field_shape(_fields(shape).get(key))
    if shape[0] == "map":
        return shape[1]  # type: ignore[no-any-return]
    return ANY


def _invalid(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def apply(original: dict[str, Any], patch: Any, type_name: str) -> dict[str, Any]:
    """`original` (not modified) with `patch` applied; ApiError for what cannot be applied."""
    if not isinstance(patch, dict):
        raise bad_request("a strategic merge patch must be a JSON object")
    merged = _merge_map(copy.deepcopy(original), patch, ("struct", type_name))
    if merged is None:
        raise bad_request("a strategic merge patch cannot delete the whole object ($patch: delete)")
    return merged


def _strip(value: Any) -> Any:
    """A patch value stored as is (a new field, a replaced map): its directives removed."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and set(v) == {PATCH})]
    return value


def _merge_map(original: dict[str, Any], patch: dict[str, Any], shape: Shape) -> dict[str, Any] | None:
    directive = patch.get(PATCH)
    if directive == "replace":
        return _strip(patch)  # type: ignore[no-any-return]
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive!r} in map")
    result = dict(original)
    retain = patch.get(RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
            raise bad_request("invalid patch: $retainKeys must be a list of strings")
        stray = [k for k in patch if not k.startswith("$") and k not in retain]
        if stray:
            raise _invalid(f"$retainKeys does not list the patched fields {stray}")
        result = {k: v for k, v in result.items() if k in retain}
    orders: dict[str, Any] = {}
    deletions: dict[str, Any] = {}
    for key, value in patch.items():
        if key in (PATCH, RETAIN_KEYS):
            continue
        if key.startswith(SET_ELEMENT_ORDER):
            orders[key[len(SET_ELEMENT_ORDER) :]] = value
        elif key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            deletions[key[len(DELETE_FROM_PRIMITIVE_LIST) :]] = value
        elif key.startswith("$"):
            raise bad_request(f"invalid patch: unknown directive {key!r}")
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        child = _child_shape(shape, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            if child[0] == "list":
                raise bad_request(f"invalid patch: {key} is a list, the patch has an object")
            current = result.get(key)
            merged = _merge_map(current if isinstance(current, dict) else {}, value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            if child[0] in ("struct", "map"):
                raise bad_request(f"invalid patch: {key} is an object, the patch has a list")
            current = result.get(key)
            result[key] = _merge_list(current if isinstance(current, list) else [], value, child)
        else:
            result[key] = value
    for key, values in deletions.items():
        child = _child_shape(shape, key)
        if not isinstance(values, list) or not _merges(child) or _merge_key(child):
            raise bad_request(f"invalid patch: $deleteFromPrimitiveList/{key} needs a merging list of values")
        if isinstance(result.get(key), list):
            result[key] = [v for v in result[key] if v not in values]
    for key, order in orders.items():
        child = _child_shape(shape, key)
        if not isinstance(order, list):
            raise bad_request(f"invalid patch: $setElementOrder/{key} must be a list")
        if _merges(child) and isinstance(result.get(key), list):
            result[key] = _reorder(result[key], order, _merge_key(child))
    return result


def _merges(shape: Shape) -> bool:
    return shape[0] == "list" and "merge" in str(shape[1].get("strategy", "")).split(",")


def _merge_key(shape: Shape) -> str | None:
    return shape[1].get("mergeKey") if shape[0] == "list" else None


def _identity(item: Any, merge_key: str | None) -> str:
    return json.dumps(item.get(merge_key) if merge_key and isinstance(item, dict) else item, sort_keys=True)


def _merge_list(original: list[Any], patch: list[Any], shape: Shape) -> list[Any]:
    if not _merges(shape):
        if any(isinstance(item, dict) and PATCH in item for item in patch):
            raise bad_request("invalid patch: a $patch directive in a list that does not merge")
        return _strip(patch)  # type: ignore[no-any-return]  # atomic: the patch's list replaces it
    merge_key = _merge_key(shape)
    meta = shape[1]
    if merge_key is None:
        if "type" in meta:
            raise bad_request("invalid patch: a merging list of objects without a merge key")
        result = list(original)
        for value in patch:
            if isinstance(value, dict):
                raise bad_request("invalid patch: an object in a list of values")
            if value not in result:
                result.append(value)
        return result
    item_shape: Shape = ("struct", meta["type"]) if "type" in meta else ANY
    if any(isinstance(item, dict) and item.get(PATCH) == "replace" for item in patch):
        return [
            _strip(item) for item in patch if not (isinstance(item, dict) and item.get(PATCH) == "replace")
        ]
    result = list(original)
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request(f"invalid patch: a value in a list merged by {merge_key!r}")
        if merge_key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
        identity = _identity(item, merge_key)
        position = next((i for i, it in enumerate(result) if _identity(it, merge_key) == identity), None)
        directive = item.get(PATCH)
        if directive == "delete":
            if position is not None:
                del result[position]
            continue
        if directive not in (None, "merge"):
            raise bad_request(f"Unknown patch type: {directive!r} in list")
        if position is None:
            merged = _merge_map({}, item, item_shape)
            if merged is not None:
                result.append(merged)
        else:
            current = result[position]
            merged = _merge_map(current if isinstance(current, dict) else {}, item, item_shape)
            if merged is not None:
                result[position] = merged
    return result


def _reorder(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    """`$setElementOrder`: the listed items take the listed order, in the slots they occupy;
    items only the server knows keep theirs."""
    ranks = {_identity(entry, merge_key): rank for rank, entry in enumerate(order)}
    slots = [i for i, item in enumerate(items) if _identity(item, merge_key) in ranks]
    ordered = sorted((items[i] for i in slots), key=lambda item: ranks[_identity(item, merge_key)])
    result = list(items)
    for slot, item in zip(slots, ordered, strict=True):
        result[slot] = item
    return result
