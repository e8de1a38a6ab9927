"""`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`: what `kubectl get` prints.

Custom resources get NAME plus the CRD's `additionalPrinterColumns` (or AGE when it has none),
converted as the apiextensions-apiserver does (dates become ages); built-ins get the columns
their kubectl tables show.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .jsonpath import JSONPathError, find
from .resources import ResourceType

Cell = Any
Column = tuple[dict[str, Any], Callable[[dict[str, Any]], Cell]]

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def human_duration(seconds: float) -> str:
    """Go's `duration.HumanDuration`, which kubectl's AGE column uses."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any) -> Cell:
    when = parse_time(timestamp) if isinstance(timestamp, str) else None
    if when is None:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - when).total_seconds())


def _column(
    name: str, type_: str, description: str = "", priority: int = 0, format_: str = ""
) -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


def _age_column() -> Column:
    return (
        _column(
            "Age",
            "date",
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
        ),
        lambda obj: age(obj["metadata"].get("creationTimestamp")),
    )


def _json_cell(type_: str, value: Any) -> Cell:
    if type_ == "date":
        return age(value)
    if type_ == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if type_ == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return (
        json.dumps(value)
        if isinstance(value, (dict, list))
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def _printer_column(spec: dict[str, Any]) -> Column:
    type_ = spec.get("type", "string")
    path = spec["jsonPath"]

    def cell(obj: dict[str, Any]) -> Cell:
        try:
            results = find(obj, path)
        except JSONPathError:
            return None
        if not results or results[0] is None:
            return None
        return _json_cell(type_, results[0])

    definition = _column(
        spec["name"], type_, spec.get("description", ""), int(spec.get("priority", 0)), spec.get("format", "")
    )
    return definition, cell


def _builtin_columns(rtype: ResourceType) -> list[Column]:
    key = (rtype.group, rtype.plural)
    if key == ("", "namespaces"):
        return [
            (
                _column("Status", "string", "The status of the namespace"),
                lambda o: (o.get("status") or {}).get("phase"),
            ),
            _age_column(),
        ]
    if key == ("", "secrets"):
        return [
            (_column("Type", "string", "The type of the secret"), lambda o: o.get("type", "Opaque")),
            (
                _column("Data", "string", "The number of entries in the secret"),
                lambda o: str(len(o.get("data") or {})),
            ),
            _age_column(),
        ]
    if key == ("", "configmaps"):
        return [
            (
                _column("Data", "string", "Number of data in the configmap"),
                lambda o: str(len(o.get("data") or {}) + len(o.get("binaryData") or {})),
            ),
            _age_column(),
        ]
    if rtype.plural == "events":
        return [
            (
                _column("Last Seen", "string", "Time since the last occurrence"),
                lambda o: age(
                    o.get("lastTimestamp")
                    or o.get("deprecatedLastTimestamp")
                    or o.get("eventTime")
                    or o["metadata"].get("creationTimestamp")
                ),
            ),
            (_column("Type", "string", "Type of the event"), lambda o: o.get("type")),
            (_column("Reason", "string", "Short reason"), lambda o: o.get("reason")),
            (
                _column("Object", "string", "The object this event is about"),
                lambda o: _involved(o.get("involvedObject") or o.get("regarding") or {}),
            ),
            (
                _column("Message", "string", "Human-readable message"),
                lambda o: o.get("message") or o.get("note"),
            ),
        ]
    if key == ("coordination.k8s.io", "leases"):
        return [
            (
                _column("Holder", "string", "The holder of the lease"),
                lambda o: (o.get("spec") or {}).get("holderIdentity"),
            ),
            _age_column(),
        ]
    if key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        return [
            (
                _column("Created At", "date", "Creation time"),
                lambda o: o["metadata"].get("creationTimestamp"),
            )
        ]
    return [_age_column()]


def _involved(ref: dict[str, Any]) -> str:
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def columns_for(rtype: ResourceType) -> list[Column]:
    name_column: Column = (dict(NAME_COLUMN), lambda obj: obj["metadata"]["name"])
    if rtype.custom:
        specs = rtype.printer_columns
        if not specs:
            return [name_column, _age_column()]
        return [name_column, *(_printer_column(spec) for spec in specs)]
    return [name_column, *_builtin_columns(rtype)]


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def build_table(
    rtype: ResourceType,
    objects: list[dict[str, Any]],
    *,
    include_object: str = "Metadata",
    list_metadata: dict[str, Any] | None = None,
    with_headers: bool = True,
) -> dict[str, Any]:
    columns = columns_for(rtype)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [cell(obj) for _, cell in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata or {},
        "columnDefinitions": [definition for definition, _ in columns] if with_headers else [],
        "rows": rows,
    }
    return table
