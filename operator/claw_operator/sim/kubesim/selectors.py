"""Label selectors (`a=b,c!=d,e in (f,g),!h`) and field selectors (`metadata.name=x`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ_RE = re.compile(r"^([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)$")
_EXISTS_RE = re.compile(r"^(!?)\s*([A-Za-z0-9_./-]+)$")


def _split_requirements(text: str) -> list[str]:
    """Split on commas that are not inside `( )`."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


LabelCheck = Callable[[dict[str, str]], bool]


def _in_set(key: str, values: set[str], *, wanted: bool) -> LabelCheck:
    return lambda labels: (labels.get(key) in values) == wanted


def _equals(key: str, value: str, *, wanted: bool) -> LabelCheck:
    return lambda labels: (labels.get(key) == value) == wanted


def _exists(key: str, *, wanted: bool) -> LabelCheck:
    return lambda labels: (key in labels) == wanted


def parse_label_selector(text: str | None) -> Predicate:
    """A predicate on an object's labels; 400 BadRequest on a malformed selector."""
    if not text:
        return lambda obj: True
    checks: list[LabelCheck] = []
    for requirement in _split_requirements(text):
        if match := _SET_RE.match(requirement):
            key, operator, values_text = match.groups()
            values = {v.strip() for v in values_text.split(",") if v.strip()}
            checks.append(_in_set(key, values, wanted=operator == "in"))
        elif match := _EQ_RE.match(requirement):
            key, operator, value = match.groups()
            checks.append(_equals(key, value, wanted=operator != "!="))
        elif match := _EXISTS_RE.match(requirement):
            negated, key = match.groups()
            checks.append(_exists(key, wanted=not negated))
        else:
            raise bad_request(f"unable to parse requirement: {requirement!r}")

    def predicate(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return predicate


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form of a dotted field, "" when absent (as field selectors compare)."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


# Field labels the apiserver accepts beyond metadata.name and metadata.namespace, per resource
# ("group/plural"); anything else is a 400, as for an operator that relies on one by mistake.
SELECTABLE_FIELDS: dict[str, frozenset[str]] = {
    "/events": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    "events.k8s.io/events": frozenset(
        {
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        }
    ),
    "/secrets": frozenset({"type"}),
    "/namespaces": frozenset({"status.phase"}),
    "/pods": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "/nodes": frozenset({"spec.unschedulable"}),
    "/replicationcontrollers": frozenset({"status.replicas"}),
    "apps/replicasets": frozenset({"status.replicas"}),
    "batch/jobs": frozenset({"status.successful"}),
    "/services": frozenset({"spec.clusterIP", "spec.type"}),
}


def parse_field_selector(text: str | None, resource: str | None = None) -> Predicate:
    """A predicate on dotted fields (`metadata.name`, `involvedObject.uid`, ...).

    With `resource` ("group/plural"), only the field labels the apiserver supports for it are
    accepted.
    """
    if not text:
        return lambda obj: True
    allowed = {"metadata.name", "metadata.namespace"} | SELECTABLE_FIELDS.get(resource or "", frozenset())
    checks: list[tuple[str, bool, str]] = []
    for requirement in _split_requirements(text):
        match = re.match(r"^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$", requirement)
        if not match:
            raise bad_request(f"invalid selector: {text!r}; can't understand {requirement!r}")
        path, operator, value = match.groups()
        if resource is not None and path not in allowed:
            supported = ", ".join(f'"{name}"' for name in sorted(allowed))
            raise bad_request(f'"{path}" is not a known field selector: only {supported}')
        checks.append((path, operator != "!=", value))

    def predicate(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, path) == value) == equal for path, equal, value in checks)

    return predicate


def combine(*predicates: Predicate) -> Predicate:
    return lambda obj: all(p(obj) for p in predicates)
