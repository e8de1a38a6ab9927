"""Rendering the chart with the Helm v4 SDK (helm-python-sdk: Helm's Go SDK behind a C ABI).

Everything here is offline: `Chart.render` is `helm template` without a cluster, `lint` is
`helm lint`, and the CRDs come from the chart's `crds/` exactly as `helm install` reads them.
Helm's loader prints one INFO line on stderr for each symlink it follows (our crds/ link); it is
expected, and the SDK offers no way to silence it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from claw_operator.cli import build_parser
from tests.conftest import REPO

CHART = REPO / "helm" / "claw-operator"
RELEASE = "claw"
RELEASE_NAMESPACE = "claw-system"
FULLNAME = "claw-claw-operator"


def run_parser() -> argparse.ArgumentParser:
    """The `claw-operator run` parser, whose flags the chart's Deployment passes."""
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = subparsers.choices["run"]
    return parser


# The non-default values every test also renders: a namespace list (Roles per namespace), the
# ServiceMonitor, a default app, text logs and every timing changed from its default.
NON_DEFAULT: dict[str, Any] = {
    "watchNamespaces": ["team-a", "team-b"],
    "defaultApp": "claw-sandboxes",
    "flyApiUrl": "http://flysim.claw-system.svc:4280",
    "logFormat": "text",
    "image": {"repository": "registry.example/claw-operator", "tag": "1.2.3"},
    "flyToken": {"existingSecret": "fly", "key": "api-token"},
    "metrics": {"port": 9090, "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "timings": {
        "pollStarting": 30,
        "pollRunning": 120.5,
        "pollDestroying": 15,
        "pollIdle": 900,
        "pollJitter": 0,
        "startingTimeout": 600,
        "stoppedThreshold": 3,
        "flyWaitTimeout": 45,
        "crashWindow": 300,
        "crashBackoff": 5,
        "crashBackoffMax": 120,
    },
    "watchStaleAfter": 900,
}

SCENARIOS: dict[str, dict[str, Any]] = {"default": {}, "non-default": NON_DEFAULT}

# Several replicas sharing the instances through Leases (`--shards auto`): tests of their own
# (test_chart_shards.py), since the Deployment differs (replicas, RollingUpdate).
SHARDED: dict[str, Any] = {
    "replicas": 3,
    "shards": "auto",
    "shardTimings": {"leaseDuration": 20, "renewDeadline": 12, "retryPeriod": 3},
    "podDisruptionBudget": {"maxUnavailable": 1},
}


def render_files(values: dict[str, Any] | None = None) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=RELEASE_NAMESPACE)


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the templates render (NOTES.txt excluded), in file order."""
    objects: list[dict[str, Any]] = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def chart_crds(path: Path = CHART) -> list[dict[str, str]]:
    """The chart's CRD files as Helm loads them (`[{"name", "filename", "data"}]`)."""
    with helm.Chart.load(path) as chart:
        return chart.crds


def one(objects: list[dict[str, Any]], kind: str, namespace: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"expected one {kind} in {namespace or 'any namespace'}, got {len(found)}"
    return found[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def load_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values
