"""Field ownership (`metadata.managedFields`), as the apiserver's field manager keeps it.

Every write records who set which fields, as `fieldsV1` sets: create, update and the merge,
JSON and strategic patches add the fields they changed to the writer's `Update` entry (the
manager from `?fieldManager=` or the User-Agent) and take them from everybody else; a
server-side apply makes the applier's `Apply` entry exactly the fields it applied, removes the
fields it applied before and no longer does (unless someone else owns them too), and answers
409 when it would change a field another manager owns — unless `force=true`, which moves the
ownership to it.

Lists follow the schema: a `map` list (containers by name, ports by port and protocol,
`x-kubernetes-list-type: map` in a CRD) is owned item by item (`k:{"name":"app"}`), a `set`
(finalizers) value by value (`v:"x"`), an `atomic` list (the default in CRDs) as a whole.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from . import typemeta
from .errors import ApiError
from .resources import ResourceType

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Metadata the server sets: what a client sends for them is not kept.
SERVER_OWNED_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)
# Nobody owns these: the server sets them (or they identify the object).
_UNOWNED_METADATA = {"name", "namespace", "managedFields", *SERVER_OWNED_METADATA}

Path = tuple[str, ...]  # fieldsV1 keys: "f:spec", 'k:{"name":"app"}', 'v:"x"'
PRESENT = object()  # the value of a member that is a node (a map, a list item), not a leaf


@dataclass(frozen=True)
class Shape:
    kind: str  # "struct", "map", "list", "leaf" or "any" (no schema: maps of anything)
    type_name: str | None = None  # a typemeta struct
    schema: Any = None  # a CRD openAPIV3Schema node (a struct from a CRD)
    list_type: str = "atomic"
    keys: tuple[str, ...] = ()
    item: Shape | None = None


LEAF = Shape("leaf")
ANY = Shape("any")


def _from_meta(meta: dict[str, Any] | None) -> Shape:
    if not meta or meta.get("atomic"):
        return LEAF
    item = LEAF
    if "type" in meta:
        item = LEAF if typemeta.TYPES.get(meta["type"], {}).get("$atomic") else Shape("struct", meta["type"])
    if "list" in meta:
        return Shape("list", list_type=meta["list"], keys=tuple(meta.get("keys", ())), item=item)
    if meta.get("map"):
        return Shape("map", item=item)
    return item


_SCHEMA_SHAPES: dict[int, tuple[Any, Shape]] = {}  # id(schema node) -> (the node, its shape)


def _from_schema(node: Any) -> Shape:
    """The shape of a CRD schema node, memoized: every write of a custom resource walks it."""
    cached = _SCHEMA_SHAPES.get(id(node))
    if cached is not None and cached[0] is node:
        return cached[1]
    shape = _shape_of_schema(node)
    if isinstance(node, dict):
        if len(_SCHEMA_SHAPES) > 100_000:
            _SCHEMA_SHAPES.clear()
        _SCHEMA_SHAPES[id(node)] = (node, shape)
    return shape


def _shape_of_schema(node: Any) -> Shape:
    if not isinstance(node, dict) or node.get("x-kubernetes-map-type") == "atomic":
        return LEAF
    kind = node.get("type")
    if kind == "array":
        return Shape(
            "list",
            list_type=node.get("x-kubernetes-list-type", "atomic"),
            keys=tuple(node.get("x-kubernetes-list-map-keys") or ()),
            item=_from_schema(node.get("items")),
        )
    if node.get("properties"):
        return Shape("struct", schema=node)
    if isinstance(node.get("additionalProperties"), dict):
        return Shape("map", item=_from_schema(node["additionalProperties"]))
    if node.get("x-kubernetes-preserve-unknown-fields") or kind == "object":
        return ANY
    return LEAF


def root_shape(rtype: ResourceType) -> Shape:
    # Objects are tracked in storage form: events.k8s.io/v1 Events are core/v1 Events there.
    group = "" if rtype.to_storage is not None else rtype.group
    type_name = typemeta.KINDS.get((group, rtype.kind))
    if type_name is not None:
        return Shape("struct", type_name)
    if rtype.schema is not None:
        return Shape("struct", schema=rtype.schema)
    return ANY


def child(shape: Shape, key: str, *, root: bool = False) -> Shape:
    if root and key == "metadata":
        return Shape("struct", OBJECT_META)
    if shape.kind == "struct":
        if shape.type_name is not None:
            return _from_meta(typemeta.TYPES.get(shape.type_name, {}).get(key))
        properties = (shape.schema or {}).get("properties") or {}
        if key in properties:
            return _from_schema(properties[key])
        return ANY if shape.schema.get("x-kubernetes-preserve-unknown-fields") else LEAF
    if shape.kind in ("map", "list"):
        return shape.item or LEAF
    if shape.kind == "any":
        return ANY
    return LEAF


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _item_key(item: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict) or not keys or not any(k in item for k in keys):
        return None
    return "k:" + _dumps({k: item[k] for k in keys if k in item})


# --- object -> the set of its fields --------------------------------------------------------------


def flatten(obj: dict[str, Any], shape: Shape, scope: str = "") -> dict[Path, Any]:
    """Every owned field of `obj`: path -> value (PRESENT for nodes). `scope`: "status" keeps
    only status; "spec" drops it (a kind with a status subresource, written at the main URL)."""
    out: dict[Path, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if (scope == "status" and key != "status") or (scope == "spec" and key == "status"):
            continue
        sub = child(shape, key, root=True)
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _UNOWNED_METADATA}
            if not value:
                continue
        _walk(value, sub, (f"f:{key}",), out)
    return out


def _walk(value: Any, shape: Shape, path: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and shape.kind == "struct":
        if not value:
            out[path] = {}
        for key, sub in value.items():
            _walk(sub, child(shape, key), (*path, f"f:{key}"), out)
    elif isinstance(value, dict) and shape.kind in ("map", "any"):
        out[path] = PRESENT
        for key, sub in value.items():
            _walk(sub, child(shape, key), (*path, f"f:{key}"), out)
    elif isinstance(value, list) and shape.kind == "list" and shape.list_type == "set":
        out[path] = PRESENT
        for item in value:
            out[(*path, "v:" + _dumps(item))] = item
    elif isinstance(value, list) and shape.kind == "list" and shape.list_type == "map":
        item_keys = [_item_key(item, shape.keys) for item in value]
        if None in item_keys or len(set(item_keys)) != len(item_keys):
            out[path] = value  # not a well-formed map list: owned as a whole
            return
        out[path] = PRESENT
        for item, key in zip(value, item_keys, strict=True):
            item_path = (*path, str(key))
            out[item_path] = PRESENT
            for field, sub in item.items():
                _walk(sub, child(shape.item or ANY, field), (*item_path, f"f:{field}"), out)
    else:
        out[path] = value


# --- fieldsV1 <-> sets ---------------------------------------------------------------------------


def to_fields_v1(paths: set[Path], members: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    for path in members:
        node = tree
        for element in path:
            node = node.get(element, {})
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(tree)


def _sorted_tree(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(v) for k, v in sorted(tree.items())}


def from_fields_v1(tree: Any, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    if not isinstance(tree, dict):
        return paths
    for key, sub in tree.items():
        if key == ".":
            paths.add(prefix)
            continue
        path = (*prefix, key)
        if isinstance(sub, dict) and sub:
            paths |= from_fields_v1(sub, path)
        else:
            paths.add(path)
    return paths


def path_text(path: Path) -> str:
    """`.spec.containers[name="app"].image`, as the apiserver names a field in a conflict."""
    out = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out += f".{rest}"
        elif kind == "k":
            fields = json.loads(rest)
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in fields.items()) + "]"
        elif kind == "v":
            out += f"[={rest}]"
        else:
            out += f"[{rest}]"
    return out


# --- server-side apply's merge -------------------------------------------------------------------


def merge_applied(live: Any, applied: Any, shape: Shape) -> Any:
    """The applied configuration over the live object: objects merge by field, `map` lists by
    key, `set` lists by value; anything else is replaced."""
    if isinstance(applied, dict) and isinstance(live, dict) and shape.kind in ("struct", "map", "any"):
        result = dict(live)
        for key, value in applied.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge_applied(live.get(key), value, child(shape, key))
        return result
    if isinstance(applied, list) and isinstance(live, list) and shape.kind == "list":
        if shape.list_type == "set":
            return live + [v for v in applied if v not in live]
        if shape.list_type == "map":
            result_list = list(live)
            for item in applied:
                key = _item_key(item, shape.keys)
                index = next(
                    (i for i, it in enumerate(result_list) if _item_key(it, shape.keys) == key), None
                )
                if key is None or index is None:
                    result_list.append(copy.deepcopy(item))
                else:
                    result_list[index] = merge_applied(result_list[index], item, shape.item or ANY)
            return result_list
    return copy.deepcopy(applied)


def remove_path(obj: Any, path: Path) -> None:
    """Remove the field (or list item, or set value) at `path` from `obj`, in place."""
    node = obj
    for depth, element in enumerate(path):
        last = depth == len(path) - 1
        kind, _, rest = element.partition(":")
        if kind == "f" and isinstance(node, dict):
            if last:
                node.pop(rest, None)
                return
            node = node.get(rest)
        elif kind in ("k", "v") and isinstance(node, list):
            if kind == "k":
                wanted = json.loads(rest)
                index = next(
                    (
                        i
                        for i, it in enumerate(node)
                        if isinstance(it, dict) and all(it.get(k) == v for k, v in wanted.items())
                    ),
                    None,
                )
            else:
                value = json.loads(rest)
                index = next((i for i, it in enumerate(node) if it == value), None)
            if index is None:
                return
            if last:
                del node[index]
                return
            node = node[index]
        else:
            return


# --- managedFields entries -----------------------------------------------------------------------


def _entry_id(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (entry.get("manager", ""), entry.get("operation", ""), entry.get("subresource", ""))


def _sort_key(entry: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        entry.get("operation", ""),
        entry.get("time", ""),
        entry.get("manager", ""),
        entry.get("apiVersion", ""),
        entry.get("subresource", ""),
    )


def manager_label(entry: dict[str, Any]) -> str:
    label = json.dumps(entry.get("manager", ""))
    if entry.get("subresource"):
        label += f" with subresource {json.dumps(entry['subresource'])}"
    if entry.get("operation") == "Update":
        label += f" using {entry.get('apiVersion', '')}"
    return label


def conflict_error(conflicts: list[tuple[dict[str, Any], Path]]) -> ApiError:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {manager_label(entry)}",
            "field": path_text(path),
        }
        for entry, path in conflicts
    ]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {manager_label(entry)}: {path_text(path)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(manager_label(entry), []).append(path_text(path))
        lines = []
        for label in sorted(by_manager):
            lines.append(f"conflicts with {label}:")
            lines.extend(f"- {text}" for text in by_manager[label])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, details={"causes": causes})


@dataclass
class Write:
    """Who writes, and how: what `track` needs besides the objects."""

    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    subresource: str = ""
    applied: dict[str, Any] | None = None  # the applied configuration (Apply)
    force: bool = False
    now: str = ""


def _scope(rtype: ResourceType, subresource: str) -> str:
    if subresource == "status":
        return "status"
    return "spec" if rtype.has_status else ""


def apply_configuration(rtype: ResourceType, live: dict[str, Any], write: Write) -> dict[str, Any]:
    """Server-side apply before admission: the merged object, with the fields this manager
    stopped applying removed (unless another manager owns them)."""
    shape = root_shape(rtype)
    applied = write.applied or {}
    merged = copy.deepcopy(_merge_root(live, applied, shape))
    entries = live.get("metadata", {}).get("managedFields") or []
    mine: set[Path] = set()
    others: set[Path] = set()
    for entry in entries:
        owned = from_fields_v1(entry.get("fieldsV1"))
        if _entry_id(entry) == (write.manager, "Apply", write.subresource):
            mine |= owned
        else:
            others |= owned
    now_applied = set(flatten(applied, shape, _scope(rtype, write.subresource)))
    # Outermost first: a removed list item takes its fields along, and is found by its key.
    for path in sorted(mine - now_applied, key=len):
        if any(owned[: len(path)] == path for owned in others):
            continue  # another manager owns it, or something beneath it: it stays
        if len(path) >= 2 and path[-2].startswith("k:") and path[-1][2:] in json.loads(path[-2][2:]):
            continue  # a list item's key stays as long as the item does
        remove_path(merged, path)
    return merged


def _merge_root(live: dict[str, Any], applied: dict[str, Any], shape: Shape) -> dict[str, Any]:
    result = dict(live)
    for key, value in applied.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_applied(live.get(key), value, child(shape, key, root=True))
    return result


def track(rtype: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], write: Write) -> None:
    """Record `write` in `new`'s managedFields (in place): ownership of what changed from `old`
    (None: a create); for an Apply, conflicts first (409 unless forced)."""
    shape = root_shape(rtype)
    scope = _scope(rtype, write.subresource)
    before = flatten(old, shape, scope) if old is not None else {}
    after = flatten(new, shape, scope)
    changed = {p for p in before.keys() | after.keys() if before.get(p, _MISSING) != after.get(p, _MISSING)}
    entries = [
        dict(e)
        for e in new.get("metadata", {}).get("managedFields") or []
        if isinstance(e, dict) and e.get("manager") is not None and e.get("operation")
    ]
    this_id = (write.manager, write.operation, write.subresource)
    if write.operation == "Apply":
        applied_paths = set(flatten(write.applied or {}, shape, scope))
        conflicts = []
        for entry in entries:
            if _entry_id(entry) == this_id:
                continue
            owned = from_fields_v1(entry.get("fieldsV1"))
            conflicts += [(entry, path) for path in sorted(owned & changed & applied_paths)]
        if conflicts and not write.force:
            raise conflict_error(conflicts)
        mine = {p for p in applied_paths if p in after}
        taken = changed & applied_paths  # forced (or owned by nobody else): the applier's now
    else:
        previous = next((e for e in entries if _entry_id(e) == this_id), None)
        kept = from_fields_v1(previous.get("fieldsV1")) if previous else set()
        mine = {p for p in (kept | changed) if p in after}
        taken = changed
    result = []
    for entry in entries:
        if _entry_id(entry) == this_id:
            continue
        owned = from_fields_v1(entry.get("fieldsV1"))
        remaining = {p for p in owned - taken if p in after}
        if remaining != owned:
            if not remaining:
                continue
            entry["fieldsV1"] = to_fields_v1(remaining, {p for p in remaining if after.get(p) is PRESENT})
            entry["time"] = write.now
        result.append(entry)
    if mine:
        entry = {
            "manager": write.manager,
            "operation": write.operation,
            "apiVersion": write.api_version,
            "time": write.now,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(mine, {p for p in mine if after.get(p) is PRESENT}),
        }
        if write.subresource:
            entry["subresource"] = write.subresource
        previous = next((e for e in entries if _entry_id(e) == this_id), None)
        if previous is not None and previous.get("fieldsV1") == entry["fieldsV1"]:
            entry["time"] = previous.get("time", write.now)
        result.append(entry)
    result.sort(key=_sort_key)
    metadata = new.setdefault("metadata", {})
    if result:
        metadata["managedFields"] = result
    else:
        metadata.pop("managedFields", None)


_MISSING = object()
