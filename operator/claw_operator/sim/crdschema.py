"""Validate custom objects against a CRD's `openAPIV3Schema` the way kube-apiserver does.

Two passes, as in the real server: the structural schema (types, ranges, patterns, enums,
required) and then the `x-kubernetes-validations` CEL rules, evaluated with a real CEL library
(cel-python) — including transition rules with `oldSelf`, which only run when the old object
has a value at the same place. Errors come back as apiserver `Status` causes
(`{"reason": "FieldValueInvalid", "message": ..., "field": "spec.guest.cpus"}`).

kubesim uses this on create/update; the tests use it to check `examples/` and bad manifests.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

_CEL_ENV = celpy.Environment()
_PROGRAM_CACHE: dict[str, Any] = {}
_MISSING = object()


@dataclass(frozen=True)
class Cause:
    """One apiserver `StatusCause`."""

    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    field: str  # e.g. "spec.guest.cpus"
    message: str  # e.g. 'Invalid value: 0: spec.guest.cpus in body should be greater than or equal to 1'

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _field_path(parts: Iterator[Any] | list[Any]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return '"object"' if isinstance(value, dict) else '"array"'
    return json.dumps(value)


def _to_jsonschema(node: Any) -> Any:
    """OpenAPI v3.0 `nullable` → JSON Schema `type: [T, "null"]`; drop Kubernetes extensions."""
    if isinstance(node, list):
        return [_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _schema_cause(error: ValidationError) -> Cause:
    path = list(error.absolute_path)
    field = _field_path(path)
    where = f"{field} in body" if field else "body"
    value = error.instance
    validator = error.validator
    schema = error.validator_value
    if validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else "?"
        return Cause("FieldValueRequired", _field_path([*path, name]), "Required value")
    if validator == "enum":
        supported = ", ".join(_go_value(v) for v in schema if v is not None)
        return Cause(
            "FieldValueNotSupported",
            field,
            f"Unsupported value: {_go_value(value)}: supported values: {supported}",
        )
    if validator == "type":
        expected = schema[0] if isinstance(schema, list) else schema
        return Cause(
            "FieldValueTypeInvalid",
            field,
            f"Invalid value: {_go_value(value)}: {where} must be of type {expected}: {_go_value(value)}",
        )
    texts = {
        "minimum": f"should be greater than or equal to {schema}",
        "maximum": f"should be less than or equal to {schema}",
        "multipleOf": f"should be a multiple of {schema}",
        "pattern": f"should match '{schema}'",
        "minLength": f"should be at least {schema} chars long",
        "maxLength": f"may not be longer than {schema}",
        "minItems": f"should have at least {schema} items",
        "maxItems": f"must have at most {schema} items",
        "maxProperties": f"must have at most {schema} properties",
        "format": f"must be of type {schema}",
    }
    reason = (
        "FieldValueTooLong"
        if validator in ("maxLength", "maxItems", "maxProperties")
        else "FieldValueInvalid"
    )
    text = texts.get(str(validator), error.message)
    return Cause(reason, field, f"Invalid value: {_go_value(value)}: {where} {text}")


# id(schema) -> (schema, its validator). Holding the schema keeps its id from being reused.
_VALIDATOR_CACHE: dict[int, tuple[dict[str, Any], Draft7Validator]] = {}


def _validator(schema: dict[str, Any]) -> Draft7Validator:
    cached = _VALIDATOR_CACHE.get(id(schema))
    if cached is None or cached[0] is not schema:
        if len(_VALIDATOR_CACHE) > 256:
            _VALIDATOR_CACHE.clear()
        cached = _VALIDATOR_CACHE[id(schema)] = (schema, Draft7Validator(_to_jsonschema(schema)))
    return cached[1]


def schema_errors(schema: dict[str, Any], obj: dict[str, Any]) -> list[Cause]:
    """Structural-schema errors of `obj`, apiserver style, in a stable order."""
    validator = _validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    return [_schema_cause(error) for error in errors]


def _list_sum(values: Any) -> Any:
    """Kubernetes' CEL list library `sum()` (cel-python has no list library)."""
    return celtypes.IntType(sum(int(value) for value in values))


# The Kubernetes CEL extensions the CRD's rules use.
_KUBERNETES_FUNCTIONS: dict[str, Any] = {"sum": _list_sum}


def _program(rule: str) -> Any:
    program = _PROGRAM_CACHE.get(rule)
    if program is None:
        program = _CEL_ENV.program(_CEL_ENV.compile(rule), functions=_KUBERNETES_FUNCTIONS)
        _PROGRAM_CACHE[rule] = program
    return program


def _is_transition_rule(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


def _walk(
    schema: dict[str, Any], value: Any, old: Any, path: list[Any], ratcheting: bool = False
) -> Iterator[tuple[dict[str, Any], Any, Any, list[Any]]]:
    """Yield (schema, value, old value or _MISSING, path) for every node carrying CEL rules.

    With `ratcheting`, subtrees equal to their old value are skipped: the apiserver (validation
    ratcheting, on by default since 1.30) ignores errors on unchanged values anyway.
    """
    if value is None or value is _MISSING:
        return
    if ratcheting and old is not _MISSING and value == old:
        return
    if schema.get("x-kubernetes-validations"):
        yield schema, value, old, path
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, child in value.items():
            child_schema = (properties or {}).get(key)
            if child_schema is None and isinstance(additional, dict):
                child_schema = additional
            if child_schema is None:
                continue
            child_old = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
            yield from _walk(child_schema, child, child_old, [*path, key], ratcheting)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        item_schema = schema["items"]
        keys = (
            schema.get("x-kubernetes-list-map-keys")
            if schema.get("x-kubernetes-list-type") == "map"
            else None
        )
        old_by_key: dict[tuple[Any, ...], Any] = {}
        if keys and isinstance(old, list):
            old_by_key = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
        for index, item in enumerate(value):
            # Only list-type=map items correlate with an old item (as in the apiserver).
            item_old = (
                old_by_key.get(tuple(item.get(k) for k in keys), _MISSING)
                if keys and isinstance(item, dict)
                else _MISSING
            )
            yield from _walk(item_schema, item, item_old, [*path, index], ratcheting)


def cel_errors(
    schema: dict[str, Any],
    obj: dict[str, Any],
    old: dict[str, Any] | None = None,
    *,
    ratcheting: bool = False,
) -> list[Cause]:
    """Failures of the `x-kubernetes-validations` rules, evaluated with cel-python.

    `ratcheting=True` skips rules on values an update left unchanged (see `_walk`).
    """
    causes: list[Cause] = []
    old_root: Any = old if old is not None else _MISSING
    for node_schema, value, old_value, path in _walk(schema, obj, old_root, [], ratcheting):
        for rule in node_schema["x-kubernetes-validations"]:
            expression = rule["rule"]
            activation = {"self": json_to_cel(value)}
            if _is_transition_rule(expression):
                if old_value is _MISSING or old_value is None:
                    continue  # transition rules run on updates only, where an old value exists
                activation["oldSelf"] = json_to_cel(old_value)
            field = _field_path(path) + rule.get("fieldPath", "")
            try:
                result = _program(expression).evaluate(activation)
            except CELEvalError as exc:
                causes.append(
                    Cause(
                        "FieldValueInvalid",
                        field,
                        f"Invalid value: {_go_value(value)}: rule evaluation error: {exc.args[0]}",
                    )
                )
                continue
            if not bool(result):
                message = rule.get("message") or f"failed rule: {expression}"
                causes.append(
                    Cause("FieldValueInvalid", field, f"Invalid value: {_go_value(value)}: {message}")
                )
    return causes


def validate(
    schema: dict[str, Any],
    obj: dict[str, Any],
    old: dict[str, Any] | None = None,
    *,
    ratcheting: bool = False,
) -> list[Cause]:
    """All errors of `obj` (and of the transition from `old`), schema first, then CEL.

    As in the apiserver, CEL rules are evaluated only when the structural schema passes.
    """
    causes = schema_errors(schema, obj)
    if causes:
        return causes
    return cel_errors(schema, obj, old, ratcheting=ratcheting)


# --- Structural pruning and defaulting (what the apiserver does before validating) -------------

# Fields of ObjectMeta: the apiserver decodes `metadata` into this Go struct, so anything else
# under the root `metadata` disappears, whatever the CRD schema says.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


def _prune_node(schema: dict[str, Any], value: Any, path: list[Any], pruned: list[str]) -> Any:
    if isinstance(value, dict) and (schema.get("type") in (None, "object")):
        properties: dict[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        out: dict[str, Any] = {}
        for key, child in value.items():
            child_schema = properties.get(key)
            if child_schema is None and isinstance(additional, dict):
                child_schema = additional
            if child_schema is None and embedded and key in ("apiVersion", "kind", "metadata"):
                out[key] = child
                continue
            if child_schema is None:
                if preserve or additional is True:
                    out[key] = child
                else:
                    pruned.append(_field_path([*path, key]))
                continue
            if child is None and not child_schema.get("nullable", False):
                # Non-nullable nulls are dropped before defaulting, as in the apiserver.
                continue
            out[key] = _prune_node(child_schema, child, [*path, key], pruned)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        return [_prune_node(items, item, [*path, index], pruned) for index, item in enumerate(value)]
    return value


def prune(schema: dict[str, Any], obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`obj` without the fields its structural schema does not declare, and their paths.

    `apiVersion` and `kind` always survive; `metadata` is cut down to ObjectMeta's fields (the
    apiserver decodes it into that struct). Returns a new object; `obj` is left untouched.
    """
    pruned: list[str] = []
    out: dict[str, Any] = {}
    properties: dict[str, Any] = schema.get("properties") or {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            out[key] = value
        elif key == "metadata" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k in OBJECT_META_FIELDS}
            pruned.extend(f"metadata.{k}" for k in value if k not in OBJECT_META_FIELDS)
        elif key in properties:
            if value is None and not properties[key].get("nullable", False):
                continue
            out[key] = _prune_node(properties[key], value, [key], pruned)
        elif schema.get("x-kubernetes-preserve-unknown-fields"):
            out[key] = value
        else:
            pruned.append(key)
    return out, pruned


def _default_node(schema: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties") or {}
        out = dict(value)
        for key, child_schema in properties.items():
            if key not in out and "default" in child_schema:
                out[key] = copy.deepcopy(child_schema["default"])
        additional = schema.get("additionalProperties")
        for key, child in list(out.items()):
            child_schema = properties.get(key)
            if child_schema is None and isinstance(additional, dict):
                child_schema = additional
            if child_schema is not None:
                out[key] = _default_node(child_schema, child)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_default_node(schema["items"], item) for item in value]
    return value


def apply_defaults(schema: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with the schema's `default`s filled in where a field is absent (a new object).

    Defaults apply top-down, so a defaulted `{}` gets its own fields' defaults too — the
    apiserver's behaviour for `guest: {default: {}}` with defaulted members.
    """
    result: dict[str, Any] = _default_node(schema, obj)
    return result
