"""Decoding the Kubernetes protobuf request bodies kubectl sends for typed built-ins.

kubectl's typed clients (`kubectl create namespace|configmap|secret|serviceaccount|deployment|
job|cronjob|service|ingress|role|rolebinding|...`) POST `application/vnd.kubernetes.protobuf`:
the magic `k8s\\0`, then a `runtime.Unknown` envelope (typeMeta, raw) whose `raw` is the object's
protobuf. kubesim decodes the kinds listed in `protomessages.KIND_MESSAGES` into their JSON form,
using the message layouts of k8s.io/api's generated.proto; anything else — another kind, a
field number the layouts do not know — is refused (415), never decoded by guess.

Protobuf sends Go's non-pointer fields even when empty; JSON leaves them out (`omitempty`). So
empty strings, zeros and `false` are left out, except for the pointer fields whose zero differs
from their default (`replicas: 0` is not `replicas` unset).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .protomessages import KIND_MESSAGES, MAP_ENTRIES, MESSAGES

MAGIC = b"k8s\x00"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_OMIT = object()
# Pointer fields whose zero (or false) means something other than "unset".
_KEEP_ZERO = {
    "replicas",
    "parallelism",
    "completions",
    "backoffLimit",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "defaultMode",
    "mode",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
}


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


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value): an int for varints, bytes otherwise."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield number, wire_type, value
        elif wire_type in (1, 2, 5):
            if wire_type == 2:
                length, position = _varint(data, position)
            else:
                length = 8 if wire_type == 1 else 4
            if position + length > len(data):
                raise ProtobufError("truncated field")
            yield number, wire_type, data[position : position + length]
            position += length
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")


def _time(data: bytes, micro: bool) -> Any:
    seconds = nanos = 0
    for number, _, value in _fields(data):
        if number == 1 and isinstance(value, int):
            seconds = value
        elif number == 2 and isinstance(value, int):
            nanos = value
    if not seconds and not nanos:
        return _OMIT  # the zero Time: `null` in JSON, left out
    when = datetime.fromtimestamp(seconds + nanos / 1e9, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(data: bytes) -> Any:
    kind, number_value, text = 0, 0, ""
    for number, _, value in _fields(data):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, int):
            number_value = _signed32(value)
        elif number == 3 and isinstance(value, bytes):
            text = value.decode()
    return text if kind == 1 else number_value


def _raw_json(data: bytes) -> Any:
    for number, _, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            try:
                return json.loads(value) if value else _OMIT
            except ValueError as exc:
                raise ProtobufError("an embedded object is not JSON") from exc
    return _OMIT


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, wire_type: int, raw: int | bytes, name: str) -> Any:
    if kind in ("int", "int32", "sint", "bool"):
        if not isinstance(raw, int):
            raise ProtobufError(f"field {name} has the wrong wire type")
        if kind == "sint":
            value: Any = (raw >> 1) ^ -(raw & 1)
        elif kind == "bool":
            value = bool(raw)
        else:
            value = _signed32(raw)
        return value
    if not isinstance(raw, bytes):
        raise ProtobufError(f"field {name} has the wrong wire type")
    if kind == "string":
        return raw.decode()
    if kind == "bytes":
        return base64.b64encode(raw).decode()
    if kind == "double" and wire_type == 1:
        return struct.unpack("<d", raw)[0]
    if kind == "float" and wire_type == 5:
        return struct.unpack("<f", raw)[0]
    raise ProtobufError(f"field {name}: kubesim does not decode protobuf {kind} fields")


def _message(data: bytes, type_name: str) -> Any:
    if type_name == _META + "Time":
        return _time(data, micro=False)
    if type_name == _META + "MicroTime":
        return _time(data, micro=True)
    if type_name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        return _int_or_string(data)
    if type_name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        fields = [v for n, _, v in _fields(data) if n == 1 and isinstance(v, bytes)]
        return fields[0].decode() if fields else _OMIT
    if type_name in ("k8s.io.apimachinery.pkg.runtime.RawExtension", _META + "FieldsV1"):
        return _raw_json(data)
    layout = MESSAGES.get(type_name)
    if layout is None:
        raise ProtobufError(f"kubesim does not decode protobuf {type_name}")
    out: dict[str, Any] = {}
    for number, wire_type, raw in _fields(data):
        if number not in layout:
            raise ProtobufError(f"unknown field {number} in protobuf {type_name}")
        name, kind, field_type, repeated = layout[number]
        if kind == "message" and field_type in MAP_ENTRIES:
            if not isinstance(raw, bytes):
                raise ProtobufError(f"field {name} has the wrong wire type")
            key, value = _map_entry(raw, field_type, name)
            out.setdefault(name, {})[key] = value
            continue
        if kind == "message":
            if not isinstance(raw, bytes) or not field_type:
                raise ProtobufError(f"field {name} has the wrong wire type")
            value = _message(raw, field_type)
        else:
            value = _scalar(kind, wire_type, raw, name)
        if not name:  # an embedded struct (`json:",inline"`): its fields are the object's own
            if isinstance(value, dict):
                out.update(value)
            continue
        if repeated:
            out.setdefault(name, []).append(None if value is _OMIT else value)
        elif value is not _OMIT and (value not in ("", 0, False) or name in _KEEP_ZERO or value is True):
            out[name] = value
    return out


def _map_entry(data: bytes, entry_type: str, name: str) -> tuple[str, Any]:
    value_kind, value_type = MAP_ENTRIES[entry_type]
    key, value = "", "" if value_kind in ("string", "bytes") else None
    for number, wire_type, raw in _fields(data):
        if number == 1 and isinstance(raw, bytes):
            key = raw.decode()
        elif number == 2:
            if value_kind == "message" and isinstance(raw, bytes) and value_type:
                value = _message(raw, value_type)
            else:
                value = _scalar(value_kind, wire_type, raw, name)
    return key, (None if value is _OMIT else value)


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; ProtobufError for unknown kinds or bad data."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic")
    api_version = kind = ""
    raw = b""
    for number, _, value in _fields(body[len(MAGIC) :]):
        if number == 1 and isinstance(value, bytes):
            for type_number, _, type_value in _fields(value):
                if type_number == 1 and isinstance(type_value, bytes):
                    api_version = type_value.decode()
                elif type_number == 2 and isinstance(type_value, bytes):
                    kind = type_value.decode()
        elif number == 2 and isinstance(value, bytes):
            raw = value
    message = KIND_MESSAGES.get((api_version, kind))
    if message is None:
        raise ProtobufError(f"kubesim does not decode protobuf {api_version}/{kind}")
    decoded = _message(raw, message)
    return {"apiVersion": api_version, "kind": kind, **decoded}
