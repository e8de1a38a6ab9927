"""Server-side sharded list and watch, the wire contract (KEP-5866, alpha in Kubernetes 1.36).

A `shardSelector` list/watch option holds one or more `shardRange(FIELD, '0xSTART', '0xEND')`
terms joined by `||`; an object matches when the 64-bit FNV-1a hash of FIELD's value (the UTF-8
bytes of `metadata.uid` or `metadata.namespace`) falls in any `[START, END)` range, END at most
2^64. One implementation of the hash for both sides: kubesim filters with it, the operator
assigns ClawInstances to replicas by it (`lifecycle/shards.py`), so a replica's share can be
written as a selector the apiserver applies.
"""

from __future__ import annotations

from collections.abc import Iterable

FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3
HASH_SPACE = 1 << 64
UID_FIELD = "object.metadata.uid"
NAMESPACE_FIELD = "object.metadata.namespace"


def fnv1a_64(value: str) -> int:
    """The 64-bit FNV-1a hash of the value's UTF-8 bytes."""
    digest = FNV64_OFFSET
    for byte in value.encode("utf-8"):
        digest ^= byte
        digest = (digest * FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return digest


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted `[start, end)` ranges with touching or overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def shard_selector(ranges: Iterable[tuple[int, int]], field: str = UID_FIELD) -> str:
    """The `shardSelector` matching these hash ranges (merged); "" when there are none."""
    return " || ".join(
        f"shardRange({field}, '{start:#x}', '{end:#x}')" for start, end in merge_ranges(ranges)
    )
