"""`shardSelector`: server-side sharded list and watch (KEP-5866, alpha in Kubernetes 1.36).

The `shardSelector` list option takes one or more `shardRange(FIELD, 'START', 'END')` terms
joined by `||`. FIELD is `object.metadata.uid` or `object.metadata.namespace` (CEL-style,
object-rooted; every term of one selector names the same field); START and END are
`0x`-prefixed hex bounds of the 64-bit FNV-1a hash of the field's value, START inclusive, END
exclusive, END at most `0x10000000000000000` (2^64). An object matches when its hash falls in
any range. A list answer echoes the selector back in `metadata.shardInfo.selector`: its
presence tells a client that the server filtered (an apiserver without the feature ignores the
parameter and answers the whole collection without `shardInfo`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from claw_operator.api.sharding import HASH_SPACE, fnv1a_64

from .errors import bad_request

__all__ = ["HASH_SPACE", "fnv1a_64", "parse_shard_selector", "shard_info"]

FIELDS = {
    "object.metadata.uid": ("metadata", "uid"),
    "object.metadata.namespace": ("metadata", "namespace"),
}

_TERM = re.compile(
    r"""^shardRange\(\s*([A-Za-z.]+)\s*,\s*'(0x[0-9a-fA-F]+)'\s*,\s*'(0x[0-9a-fA-F]+)'\s*\)$"""
)


def _invalid(text: str, why: str) -> Exception:
    return bad_request(f"invalid shardSelector {text!r}: {why}")


def parse_shard_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate on objects; 400 BadRequest for a malformed selector."""
    terms = [term.strip() for term in text.split("||")]
    field: str | None = None
    ranges: list[tuple[int, int]] = []
    for term in terms:
        match = _TERM.match(term)
        if match is None:
            raise _invalid(text, f"cannot parse {term!r}; expected shardRange(FIELD, '0xSTART', '0xEND')")
        path, start_text, end_text = match.groups()
        if path not in FIELDS:
            raise _invalid(text, f"unsupported field {path!r}; supported: {', '.join(sorted(FIELDS))}")
        if field is not None and path != field:
            raise _invalid(text, "every shardRange of a selector must hash the same field")
        field = path
        start, end = int(start_text, 16), int(end_text, 16)
        if start >= HASH_SPACE or end > HASH_SPACE:
            raise _invalid(text, "bounds must lie within 0x0..0x10000000000000000")
        if start >= end:
            raise _invalid(text, f"start {start_text} must be below end {end_text}")
        ranges.append((start, end))
    assert field is not None
    section, key = FIELDS[field]

    def predicate(obj: dict[str, Any]) -> bool:
        value = (obj.get(section) or {}).get(key) or ""
        digest = fnv1a_64(str(value))
        return any(start <= digest < end for start, end in ranges)

    return predicate


def shard_info(text: str) -> dict[str, str]:
    """What a list answer's `metadata.shardInfo` says: the selector the server applied."""
    return {"selector": text}
