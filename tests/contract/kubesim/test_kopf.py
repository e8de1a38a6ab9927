"""Unmodified kopf against kubesim: a small operator with create/update/delete handlers, a timer
and a finalizer runs each handler exactly once per change, posts events, and releases its
finalizer on delete — cluster-wide and restricted to namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from claw_operator.sim.kubesim import KubeSimThread

CLAW = ("claw.dev/v1alpha1", "ClawInstance")
FINALIZER = "claw.dev/test-finalizer"


@dataclass
class SampleOperator:
    registry: kopf.OperatorRegistry
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)


def build_operator(kubeconfig: Path) -> SampleOperator:
    registry = kopf.OperatorRegistry()
    operator = SampleOperator(registry)
    calls = operator.calls
    resource = ("claw.dev", "v1alpha1", "clawinstances")

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # The kubeconfig kubesim wrote, read explicitly (the kubernetes client reads $KUBECONFIG
        # only at import time).
        document = yaml.safe_load(kubeconfig.read_text())
        return kopf.ConnectionInfo(
            server=document["clusters"][0]["cluster"]["server"],
            scheme="Bearer",
            token=document["users"][0]["user"]["token"],
            default_namespace="default",
        )

    @kopf.on.create(*resource, registry=registry)
    def on_create(name: str, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        calls["create", name] += 1
        patch.status["phase"] = "Provisioned"
        kopf.info(body, reason="Provisioning", message=f"provisioning {name}")

    @kopf.on.update(*resource, registry=registry)
    def on_update(name: str, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        calls["update", name] += 1
        kopf.info(body, reason="Updated", message=f"image is now {body['spec']['image']}")
        # A transformation: kopf sends it as a JSON patch of /status guarded by a `test` of the
        # resourceVersion, the way to upsert one condition without clobbering the list.
        patch.fns.append(mark_ready)

    @kopf.on.delete(*resource, registry=registry)
    def on_delete(name: str, **_: Any) -> None:
        calls["delete", name] += 1

    @kopf.timer(*resource, interval=0.3, registry=registry)
    def tick(name: str, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        calls["timer", name] += 1
        patch.status["stoppedChecks"] = int(status.get("stoppedChecks") or 0) + 1

    return operator


def mark_ready(body: dict[str, Any]) -> None:
    status = body.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c["type"] != "Ready"]
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Updated",
        "lastTransitionTime": "2026-11-24T08:00:00Z",
    }
    status["conditions"] = [*conditions, ready]


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 30
    settings.watching.client_timeout = 40
    settings.networking.error_backoffs = [0.1, 0.2, 0.5]
    return settings


@contextlib.asynccontextmanager
async def running(operator: SampleOperator, **scope: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(
        kopf.operator(registry=operator.registry, settings=operator_settings(), standalone=True, **scope)
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def claw(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "claw.dev/v1alpha1",
        "kind": "ClawInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"region": "iad", "image": "registry.fly.io/claw:1"},
    }


def field_of(kubesim: KubeSimThread, name: str, namespace: str, *path: str) -> Any:
    node: Any = kubesim.get(*CLAW, name, namespace)
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def events_about(kubesim: KubeSimThread, name: str, namespace: str) -> list[str]:
    return [event["reason"] for event in kubesim.events(name, namespace, "ClawInstance")]


async def exercise_one_instance(
    kubesim: KubeSimThread, operator: SampleOperator, name: str, namespace: str
) -> None:
    calls = operator.calls
    kubesim.create(claw(name, namespace))
    await eventually(lambda: field_of(kubesim, name, namespace, "status", "phase") == "Provisioned")
    assert FINALIZER in field_of(kubesim, name, namespace, "metadata", "finalizers")
    await eventually(lambda: (field_of(kubesim, name, namespace, "status", "stoppedChecks") or 0) >= 2)

    kubesim.patch(*CLAW, name, {"spec": {"image": "registry.fly.io/claw:2"}}, namespace)
    await eventually(lambda: calls["update", name] >= 1)
    await eventually(
        lambda: (
            [c["type"] for c in field_of(kubesim, name, namespace, "status", "conditions") or []] == ["Ready"]
        )
    )

    kubesim.delete(*CLAW, name, namespace)
    await eventually(lambda: kubesim.get(*CLAW, name, namespace) is None)
    assert calls["delete", name] == 1


@pytest.mark.parametrize("scope", ["clusterwide", "namespaced"])
async def test_kopf_runs_every_handler_once_per_change(
    kubesim_thread: KubeSimThread, caplog: pytest.LogCaptureFixture, scope: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="kopf")
    assert kubesim_thread.kubeconfig is not None
    operator = build_operator(kubesim_thread.kubeconfig)
    namespace = "default" if scope == "clusterwide" else "team-a"
    options: dict[str, Any] = {"clusterwide": True} if scope == "clusterwide" else {"namespaces": ["team-a"]}
    async with running(operator, **options):
        if scope == "namespaced":
            kubesim_thread.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
            kubesim_thread.create(claw("outside", "default"))
        await exercise_one_instance(kubesim_thread, operator, "first", namespace)
        # A later instance, fully handled, shows that no duplicate run of the first one was pending.
        kubesim_thread.create(claw("second", namespace))
        await eventually(
            lambda: field_of(kubesim_thread, "second", namespace, "status", "phase") == "Provisioned"
        )
        await eventually(lambda: operator.calls["timer", "second"] >= 2)

    calls = operator.calls
    assert (calls["create", "first"], calls["update", "first"], calls["delete", "first"]) == (1, 1, 1)
    assert calls["create", "second"] == 1 and calls["update", "second"] == 0
    assert calls["timer", "first"] >= 2
    assert events_about(kubesim_thread, "first", namespace).count("Provisioning") == 1
    assert events_about(kubesim_thread, "first", namespace).count("Updated") == 1
    if scope == "namespaced":
        outside = kubesim_thread.get(*CLAW, "outside", "default")
        assert outside is not None and "status" not in outside and not outside["metadata"].get("finalizers")
        assert calls["create", "outside"] == 0

    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "inconsisten" in m.lower()], "kopf saw its own patches come back wrong"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "kopf logged warnings or errors"
