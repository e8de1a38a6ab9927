"""Regenerates `kubesim/protomessages.py`, the protobuf message layouts kubesim decodes, from the
gzipped `FileDescriptorProto`s that every kubectl binary embeds (k8s.io/api's generated.proto).

    .venv/bin/python -m tests.contract.kubesim.protobuf_descriptors /path/to/kubectl-1.32
    .venv/bin/ruff format operator/claw_operator/sim/kubesim/protomessages.py
"""

from __future__ import annotations

import pprint
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from claw_operator.sim.kubesim import protomessages

TARGET = Path(protomessages.__file__)
# (apiVersion, kind) -> message: the built-ins kubesim serves that kubectl may send as protobuf.
KIND_MESSAGES = {
    ("v1", "Namespace"): "k8s.io.api.core.v1.Namespace",
    ("v1", "ConfigMap"): "k8s.io.api.core.v1.ConfigMap",
    ("v1", "Secret"): "k8s.io.api.core.v1.Secret",
    ("v1", "ServiceAccount"): "k8s.io.api.core.v1.ServiceAccount",
    ("v1", "Service"): "k8s.io.api.core.v1.Service",
    ("v1", "Pod"): "k8s.io.api.core.v1.Pod",
    ("apps/v1", "Deployment"): "k8s.io.api.apps.v1.Deployment",
    ("batch/v1", "Job"): "k8s.io.api.batch.v1.Job",
    ("batch/v1", "CronJob"): "k8s.io.api.batch.v1.CronJob",
    ("networking.k8s.io/v1", "Ingress"): "k8s.io.api.networking.v1.Ingress",
    ("rbac.authorization.k8s.io/v1", "Role"): "k8s.io.api.rbac.v1.Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "k8s.io.api.rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "k8s.io.api.rbac.v1.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "k8s.io.api.rbac.v1.ClusterRoleBinding",
}
_TYPES = {1: "double", 2: "float", 3: "int", 4: "int", 5: "int32", 8: "bool", 9: "string", 11: "message"}
_TYPES |= {12: "bytes", 13: "int", 17: "sint", 18: "sint"}


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, Any]]:
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire == 2:
            length, position = _varint(data, position)
            yield number, data[position : position + length]
            position += length
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4


def descriptors(binary: bytes) -> Iterator[bytes]:
    for match in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", binary):
        try:
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                binary[match.start() : match.start() + 4_000_000]
            )
        except zlib.error:
            continue
        if out[:1] == b"\x0a" and out[2 : 2 + out[1]].startswith(b"k8s.io/"):
            yield out


def _messages(descriptor: bytes, prefix: str, out: dict[str, Any], maps: dict[str, Any]) -> None:
    name, fields, nested, is_map = "", [], [], False
    for number, value in _fields(descriptor):
        if number == 1:
            name = value.decode()
        elif number == 2:
            fields.append(value)
        elif number == 3:
            nested.append(value)
        elif number == 7:
            is_map = any(n == 7 and v for n, v in _fields(value))
    full = f"{prefix}.{name}"
    layout: dict[int, tuple[str, str, str | None, bool]] = {}
    for field in fields:
        parts = dict(_fields(field))
        type_name = parts[6].decode().lstrip(".") if 6 in parts else None
        layout[parts[3]] = (
            parts[1].decode(),
            _TYPES.get(parts[5], f"?{parts[5]}"),
            type_name,
            parts.get(4) == 3,
        )
    if is_map:
        maps[full] = layout[2][1:3]
    else:
        out[full] = layout
    for child in nested:
        _messages(child, full, out, maps)


def _inline(name: str, layout: dict[int, Any]) -> dict[int, Any]:
    """Embedded structs (`json:",inline"`, e.g. IngressRule's ingressRuleValue, Volume's
    volumeSource) are named "" : their fields belong to the enclosing object in JSON."""
    definition = _openapi().get("io.k8s." + name.removeprefix("k8s.io."))
    if definition is None or "properties" not in definition:
        return layout
    properties = definition["properties"]
    return {
        number: (
            "" if kind == "message" and json_name not in properties else json_name,
            kind,
            type_name,
            repeated,
        )
        for number, (json_name, kind, type_name, repeated) in layout.items()
    }


def _openapi() -> dict[str, Any]:
    from .test_typemeta import _definitions

    return _definitions()


def generate(binary: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    messages: dict[str, Any] = {}
    maps: dict[str, Any] = {}
    for descriptor in descriptors(binary):
        package = next(v.decode() for n, v in _fields(descriptor) if n == 2)
        for number, value in _fields(descriptor):
            if number == 4:
                _messages(value, package, messages, maps)
    reachable: set[str] = set()
    pending = list(KIND_MESSAGES.values())
    while pending:
        name = pending.pop()
        if name in reachable or name not in messages:
            continue
        reachable.add(name)
        for _, kind, type_name, _ in messages[name].values():
            if kind == "message" and type_name:
                if type_name in maps:
                    value_kind, value_type = maps[type_name]
                    if value_kind == "message" and value_type:
                        pending.append(value_type)
                else:
                    pending.append(type_name)
    kept = {name: _inline(name, messages[name]) for name in sorted(reachable)}
    used_maps = {
        type_name: maps[type_name]
        for layout in kept.values()
        for _, _, type_name, _ in layout.values()
        if type_name in maps
    }
    return kept, dict(sorted(used_maps.items()))


def render(binary: bytes) -> str:
    messages, maps = generate(binary)
    return (
        "# ruff: noqa: E501\n"
        '"""Protobuf layouts of the built-in kinds kubectl may send as protobuf: message -> field\n'
        'number -> (JSON name, "" for an inlined struct, type, message type, repeated), and map\n'
        "entries -> (value type, "
        "message type). Generated from kubectl 1.32's embedded descriptors by\n"
        'tests/contract/kubesim/protobuf_descriptors.py; do not edit by hand."""\n\n'
        "from typing import Any\n\n"
        f"KIND_MESSAGES: dict[tuple[str, str], str] = {pprint.pformat(KIND_MESSAGES, width=100)}\n\n"
        "MESSAGES: dict[str, dict[int, tuple[str, str, Any, bool]]] = "
        f"{pprint.pformat(messages, width=100)}\n\n"
        f"MAP_ENTRIES: dict[str, tuple[str, Any]] = {pprint.pformat(maps, width=100)}\n"
    )


if __name__ == "__main__":
    TARGET.write_text(render(Path(sys.argv[1]).read_bytes()))
