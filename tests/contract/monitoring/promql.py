"""A small PromQL evaluator over recorded samples, for testing the shipped alerts in Python.

The AST comes from `promql-parser` (Prometheus' grammar, from PyPI); this module evaluates the
subset the alerts use, with Prometheus' semantics where it matters for firing: instant
selectors look back 5 minutes, `rate`/`increase` handle counter resets and extrapolate like
Prometheus, comparisons filter, one-to-one vector matching ignores `__name__`, `for` holds
an alert pending until every evaluation over that span had a result. Anything outside the
subset raises, so a new alert cannot silently pass untested.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import promql_parser as pp

LOOKBACK = 300.0  # seconds: an instant selector sees samples this old at most

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return frozenset(mapping.items())


def without_name(labels: Labels) -> Labels:
    return frozenset((k, v) for k, v in labels if k != "__name__")


@dataclass
class Series:
    labels: Labels
    samples: list[tuple[float, float]] = field(default_factory=list)  # (t seconds, value), sorted


@dataclass
class Store:
    """Samples by series, as a Prometheus TSDB would hold them after some scrapes."""

    series: dict[Labels, Series] = field(default_factory=dict)

    def add(self, name: str, labels: Mapping[str, str], t: float, value: float) -> None:
        key = labels_of({"__name__": name, **labels})
        self.series.setdefault(key, Series(key)).samples.append((t, value))

    def sort(self) -> None:
        for s in self.series.values():
            s.samples.sort()

    def select(self, selector: Any) -> list[Series]:
        checks = _matchers(selector)
        return [s for s in self.series.values() if all(check(dict(s.labels)) for check in checks)]


def _matchers(selector: Any) -> list[Callable[[dict[str, str]], bool]]:
    checks: list[Callable[[dict[str, str]], bool]] = []
    if selector.name:
        name = selector.name
        checks.append(lambda labels: labels.get("__name__") == name)
    if selector.matchers.or_matchers:
        raise NotImplementedError("or-matchers")
    for matcher in selector.matchers.matchers:
        op, key, value = str(matcher.op), matcher.name, matcher.value
        if op == "MatchOp.Equal":
            checks.append(lambda labels, k=key, v=value: labels.get(k, "") == v)
        elif op == "MatchOp.NotEqual":
            checks.append(lambda labels, k=key, v=value: labels.get(k, "") != v)
        elif op == "MatchOp.Re":
            rx = re.compile(f"^(?:{value})$")
            checks.append(lambda labels, k=key, r=rx: bool(r.match(labels.get(k, ""))))
        elif op == "MatchOp.NotRe":
            rx = re.compile(f"^(?:{value})$")
            checks.append(lambda labels, k=key, r=rx: not r.match(labels.get(k, "")))
        else:
            raise NotImplementedError(op)
    return checks


# ---------------------------------------------------------------------------- promtool notation


def expand_values(text: str, interval: float, start: float = 0.0) -> list[tuple[float, float | None]]:
    """promtool's series notation: `1 2 3`, `0+10x5` (0, 10, ... 50), `5x3`, `_` (no sample)."""
    values: list[float | None] = []
    for token in text.split():
        number = r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?"
        match = re.fullmatch(rf"({number})(?:([+-])({number}))?x(\d+)", token)
        if token == "_":
            values.append(None)
        elif match:
            base, sign, step, times = match.groups()
            delta = float(step or 0) * (-1 if sign == "-" else 1)
            values.extend(float(base) + delta * i for i in range(int(times) + 1))
        elif re.fullmatch(r"_x(\d+)", token):
            values.extend([None] * (int(token[2:]) + 1))
        else:
            values.append(float(token))
    return [(start + i * interval, v) for i, v in enumerate(values)]


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """`metric{a="b", c="d"}` → ("metric", {"a": "b", "c": "d"})."""
    match = re.fullmatch(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*", text)
    if not match:
        raise ValueError(text)
    name, body = match.groups()
    labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"', body or ""))
    return name, labels


def duration(text: str | int | float) -> float:
    if isinstance(text, int | float):
        return float(text)
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return total


# ---------------------------------------------------------------------------- evaluation


def _range_seconds(node: Any) -> float:
    value = node.range
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _extrapolated(
    samples: list[tuple[float, float]], t: float, window: float, *, is_rate: bool
) -> float | None:
    """Prometheus' extrapolatedRate for counters (promql/functions.go)."""
    if len(samples) < 2:
        return None
    first_t, first_v = samples[0]
    last_t, last_v = samples[-1]
    result = last_v - first_v
    previous = first_v
    for _, value in samples[1:]:
        if value < previous:  # a counter reset
            result += previous
        previous = value
    range_start, range_end = t - window, t
    to_start, to_end = first_t - range_start, range_end - last_t
    sampled = last_t - first_t
    average = sampled / (len(samples) - 1)
    if result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    extrapolate_to = sampled
    extrapolate_to += to_start if to_start < threshold else average / 2
    extrapolate_to += to_end if to_end < threshold else average / 2
    result *= extrapolate_to / sampled
    return result / window if is_rate else result


class Evaluator:
    def __init__(self, store: Store) -> None:
        self.store = store

    def instant(self, expr: str | Any, t: float) -> Vector | float:
        node = pp.parse(expr) if isinstance(expr, str) else expr
        return self._eval(node, t)

    def _eval(self, node: Any, t: float) -> Vector | float:
        kind = type(node).__name__
        method = getattr(self, f"_eval_{kind}", None)
        if method is None:
            raise NotImplementedError(f"PromQL node {kind}: {node}")
        return method(node, t)  # type: ignore[no-any-return]

    def _eval_NumberLiteral(self, node: Any, t: float) -> float:
        return float(node.val)

    def _eval_ParenExpr(self, node: Any, t: float) -> Vector | float:
        return self._eval(node.expr, t)

    def _eval_UnaryExpr(self, node: Any, t: float) -> Vector | float:
        value = self._eval(node.expr, t)
        if isinstance(value, float):
            return -value
        return {without_name(k): -v for k, v in value.items()}

    def _eval_VectorSelector(self, node: Any, t: float) -> Vector:
        found: Vector = {}
        for series in self.store.select(node):
            latest = [(st, v) for st, v in series.samples if t - LOOKBACK < st <= t]
            if latest:
                found[series.labels] = latest[-1][1]
        return found

    def _window(self, node: Any, t: float) -> list[tuple[Labels, list[tuple[float, float]]]]:
        if type(node).__name__ != "MatrixSelector":
            raise NotImplementedError(f"expected a range selector, got {node}")
        window = _range_seconds(node)
        return [
            (s.labels, [(st, v) for st, v in s.samples if t - window < st <= t])
            for s in self.store.select(node.vector_selector)
        ]

    def _eval_Call(self, node: Any, t: float) -> Vector | float:
        name = node.func.name
        if name in ("rate", "increase"):
            (arg,) = node.args
            window = _range_seconds(arg)
            out: Vector = {}
            for labels, samples in self._window(arg, t):
                value = _extrapolated(samples, t, window, is_rate=name == "rate")
                if value is not None:
                    out[without_name(labels)] = value
            return out
        if name == "absent_over_time":
            (arg,) = node.args
            if any(samples for _, samples in self._window(arg, t)):
                return {}
            return {_absent_labels(arg.vector_selector): 1.0}
        if name == "absent":
            (arg,) = node.args
            if self._eval(arg, t):
                return {}
            return {_absent_labels(arg): 1.0}
        if name == "time":
            return t
        raise NotImplementedError(f"function {name}")

    def _eval_AggregateExpr(self, node: Any, t: float) -> Vector:
        op = str(node.op)
        value = self._eval(node.expr, t)
        if not isinstance(value, dict):
            raise NotImplementedError("aggregating a scalar")
        modifier = node.modifier
        groups: dict[Labels, list[float]] = {}
        for labels, v in value.items():
            if modifier is None:
                key: Labels = frozenset()
            elif str(modifier.type) == "AggModifierType.By":
                key = frozenset((k, x) for k, x in labels if k in modifier.labels)
            else:
                key = frozenset((k, x) for k, x in without_name(labels) if k not in modifier.labels)
            groups.setdefault(key, []).append(v)
        reducers: dict[str, Callable[[list[float]], float]] = {
            "sum": sum,
            "max": max,
            "min": min,
            "count": lambda vs: float(len(vs)),
            "avg": lambda vs: sum(vs) / len(vs),
        }
        if op not in reducers:
            raise NotImplementedError(f"aggregation {op}")
        return {key: reducers[op](vs) for key, vs in groups.items()}

    def _eval_BinaryExpr(self, node: Any, t: float) -> Vector | float:
        op = str(node.op)
        lhs, rhs = self._eval(node.lhs, t), self._eval(node.rhs, t)
        modifier = node.modifier
        return_bool = bool(modifier and modifier.return_bool)
        if op in ("and", "or", "unless"):
            assert isinstance(lhs, dict) and isinstance(rhs, dict)
            keys = {_match_key(k, modifier) for k in rhs}
            if op == "and":
                return {k: v for k, v in lhs.items() if _match_key(k, modifier) in keys}
            if op == "unless":
                return {k: v for k, v in lhs.items() if _match_key(k, modifier) not in keys}
            lkeys = {_match_key(k, modifier) for k in lhs}
            return {**lhs, **{k: v for k, v in rhs.items() if _match_key(k, modifier) not in lkeys}}
        apply = _OPS[op]
        comparison = op in _COMPARISONS
        if isinstance(lhs, float) and isinstance(rhs, float):
            return float(apply(lhs, rhs))
        if isinstance(rhs, float) or isinstance(lhs, float):
            vector, scalar, vector_left = (lhs, rhs, True) if isinstance(rhs, float) else (rhs, lhs, False)
            assert isinstance(vector, dict) and isinstance(scalar, float)
            out: Vector = {}
            for labels, v in vector.items():
                a, b = (v, scalar) if vector_left else (scalar, v)
                result = apply(a, b)
                key = labels if comparison and not return_bool else without_name(labels)
                if comparison and not return_bool:
                    if result:
                        out[key] = v
                else:
                    out[key] = float(result)
            return out
        assert isinstance(lhs, dict) and isinstance(rhs, dict)
        right = {_match_key(k, modifier): v for k, v in rhs.items()}
        out = {}
        for labels, v in lhs.items():
            other = right.get(_match_key(labels, modifier))
            if other is None:
                continue
            result = apply(v, other)
            if comparison and not return_bool:
                if result:
                    out[labels] = v
            else:
                out[without_name(labels)] = float(result)
        return out


def _match_key(labels: Labels, modifier: Any) -> Labels:
    matching = modifier.matching if modifier is not None else None
    plain = without_name(labels)
    if matching is None:
        return plain
    if str(matching.type) == "LabelModifierType.Include":
        return frozenset((k, v) for k, v in plain if k in matching.labels)
    return frozenset((k, v) for k, v in plain if k not in matching.labels)


def _absent_labels(selector: Any) -> Labels:
    return frozenset((m.name, m.value) for m in selector.matchers.matchers if str(m.op) == "MatchOp.Equal")


def _div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


_COMPARISONS = {">", "<", ">=", "<=", "==", "!="}
_OPS: dict[str, Callable[[float, float], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression selects."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.add(m.value)
        elif kind == "MatrixSelector":
            visit(node.vector_selector)
        elif kind in ("ParenExpr", "UnaryExpr", "AggregateExpr", "SubqueryExpr"):
            visit(node.expr)
        elif kind == "BinaryExpr":
            visit(node.lhs)
            visit(node.rhs)
        elif kind == "Call":
            for arg in node.args:
                visit(arg)

    visit(pp.parse(expr))
    return names


def firing(store: Store, expr: str, hold: float, at: float, step: float = 60.0) -> Vector:
    """The alert's result at `at`, when every evaluation over the last `hold` seconds (Prometheus
    evaluates every `step`) had one: what Alertmanager would receive. Empty when not firing."""
    evaluator = Evaluator(store)
    node = pp.parse(expr)
    result = evaluator.instant(node, at)
    if not isinstance(result, dict):
        raise TypeError(f"an alert expression must return a vector: {expr}")
    steps = int(hold // step)
    for i in range(1, steps + 1):
        earlier = evaluator.instant(node, at - i * step)
        assert isinstance(earlier, dict)
        if not earlier:
            return {}
    return result


def store_from_fixture(input_series: Iterable[Mapping[str, str]], interval: float) -> Store:
    store = Store()
    for item in input_series:
        name, labels = parse_series(item["series"])
        for t, value in expand_values(str(item["values"]), interval):
            if value is not None:
                store.add(name, labels, t, value)
    store.sort()
    return store
