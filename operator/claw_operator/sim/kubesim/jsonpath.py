"""The JSONPath subset of `additionalPrinterColumns`: `.a.b`, `[0]`, `[*]`, `['k']`, and filters
`[?(@.type=="Ready")]` (==, != on a relative path)."""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN_RE = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$-]+)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[\*\]|\.\*"""
    r"""|\[['"](?P<quoted>[^'"]+)['"]\]"""
    r"""|\[\?\(@(?P<fpath>(?:\.[A-Za-z0-9_$-]+)+)\s*(?P<op>==|!=)\s*(?P<fvalue>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\]"""
)


class JSONPathError(ValueError):
    pass


def _steps(path: str) -> list[tuple[str, Any]]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    steps: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if not match:
            raise JSONPathError(f"unsupported JSONPath {path!r} at {text[position:]!r}")
        if match.group("field") is not None:
            steps.append(("field", match.group("field")))
        elif match.group("quoted") is not None:
            steps.append(("field", match.group("quoted")))
        elif match.group("index") is not None:
            steps.append(("index", int(match.group("index"))))
        elif match.group("fpath") is not None:
            raw = match.group("fvalue")
            value: Any = raw[1:-1] if raw[0] in "\"'" else json.loads(raw)
            steps.append(("filter", (match.group("fpath")[1:].split("."), match.group("op"), value)))
        else:
            steps.append(("all", None))
        position = match.end()
    return steps


def _get_relative(node: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def find(obj: Any, path: str) -> list[Any]:
    """Every value `path` selects in `obj` (empty when nothing matches)."""
    current = [obj]
    for kind, arg in _steps(path):
        following: list[Any] = []
        for node in current:
            is_field = kind == "field" and isinstance(node, dict) and arg in node
            if is_field or (kind == "index" and isinstance(node, list) and -len(node) <= arg < len(node)):
                following.append(node[arg])
            elif kind == "all":
                following.extend(
                    node if isinstance(node, list) else node.values() if isinstance(node, dict) else []
                )
            elif kind == "filter" and isinstance(node, list):
                parts, op, value = arg
                for item in node:
                    found = _get_relative(item, parts)
                    if (found == value) == (op == "=="):
                        following.append(item)
        current = following
    return current
