"""Decoding the Kubernetes protobuf request bodies kubectl sends for typed built-ins.

kubectl's typed clients (`kubectl create namespace|configmap|secret`) POST
`application/vnd.kubernetes.protobuf`: the magic `k8s\\0`, then a `runtime.Unknown` envelope
(typeMeta, raw) whose `raw` is the object's protobuf. kubesim decodes the few kinds it serves
into their JSON form; anything else is refused with 415 as before.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value): an int for varints, bytes for length-delimited fields."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire_type == 2:
            length, position = _varint(data, position)
            yield number, data[position : position + length]
            position += length
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")


# A schema: field number -> (JSON name, kind), kind one of "string", "bytes", "int", "bool",
# "strings" (repeated string), "map", "bytesmap", "time", or a nested schema (dict) / [schema] (repeated).
Schema = dict[int, tuple[str, Any]]

_OWNER_REFERENCE: Schema = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
_OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    6: ("resourceVersion", "string"),
    11: ("labels", "map"),
    12: ("annotations", "map"),
    13: ("ownerReferences", [_OWNER_REFERENCE]),
    14: ("finalizers", "strings"),
}
KIND_SCHEMAS: dict[tuple[str, str], Schema] = {
    ("v1", "Namespace"): {
        1: ("metadata", _OBJECT_META),
        2: ("spec", {1: ("finalizers", "strings")}),
    },
    ("v1", "ConfigMap"): {
        1: ("metadata", _OBJECT_META),
        2: ("data", "map"),
        3: ("binaryData", "bytesmap"),
        4: ("immutable", "bool"),
    },
    ("v1", "Secret"): {
        1: ("metadata", _OBJECT_META),
        2: ("data", "bytesmap"),
        3: ("type", "string"),
        4: ("stringData", "map"),
        5: ("immutable", "bool"),
    },
}


def _entry(data: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, raw in _fields(data):
        if number == 1 and isinstance(raw, bytes):
            key = raw.decode()
        elif number == 2 and isinstance(raw, bytes):
            value = raw
    return key, value


def _decode(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind == "int" or kind == "bool":
            out[name] = bool(raw) if kind == "bool" else raw
        elif not isinstance(raw, bytes):
            raise ProtobufError(f"field {name} has the wrong wire type")
        elif kind == "string":
            if raw:  # proto3 sends "" for unset strings; JSON omits them
                out[name] = raw.decode()
        elif kind == "bytes":
            out[name] = base64.b64encode(raw).decode()
        elif kind == "strings":
            out.setdefault(name, []).append(raw.decode())
        elif kind in ("map", "bytesmap"):
            key, value = _entry(raw)
            text = value.decode() if kind == "map" else base64.b64encode(value).decode()
            out.setdefault(name, {})[key] = text
        elif isinstance(kind, list):
            out.setdefault(name, []).append(_decode(raw, kind[0]))
        elif isinstance(kind, dict):
            out[name] = _decode(raw, kind)
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; ProtobufError for unknown kinds or bad data."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic")
    api_version = kind = ""
    raw = b""
    for number, value in _fields(body[len(MAGIC) :]):
        if number == 1 and isinstance(value, bytes):
            for type_number, type_value in _fields(value):
                if type_number == 1 and isinstance(type_value, bytes):
                    api_version = type_value.decode()
                elif type_number == 2 and isinstance(type_value, bytes):
                    kind = type_value.decode()
        elif number == 2 and isinstance(value, bytes):
            raw = value
    schema = KIND_SCHEMAS.get((api_version, kind))
    if schema is None:
        raise ProtobufError(f"kubesim does not decode protobuf {api_version}/{kind}")
    return {"apiVersion": api_version, "kind": kind, **_decode(raw, schema)}
