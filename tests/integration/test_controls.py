"""Pause, reconcile requests, desired state, config changes, secretEnv, bad credentials (13, 14),
and exactly-once machine creation across an operator crash (8, 11)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from kubernetes import client

from claw_operator.lifecycle.model import Action, ActionResult, CreateMachine, Instance
from tests.integration.conftest import APP, TOKEN, Sandbox


def _machine(sandbox: Sandbox, machine_id: str) -> dict[str, Any]:
    response = sandbox.flyhttp.get(f"/v1/apps/{APP}/machines/{machine_id}")
    response.raise_for_status()
    machine: dict[str, Any] = response.json()
    return machine


def _fly_calls(sandbox: Sandbox) -> int:
    stats = sandbox.flyhttp.get("/_sim/stats").json()
    return sum(row["count"] for row in stats["requests"] if row["route"].startswith("/v1/"))


def test_pause_makes_no_fly_calls_and_says_so(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("calm")
    status = sandbox.wait_phase("calm", "Running")
    sandbox.patch("calm", {"metadata": {"annotations": {"claw.dev/paused": "true"}}})
    sandbox.wait_condition("calm", "Reconciling", "False", "Paused")
    sandbox.wait_events("calm", "Paused")
    calls = _fly_calls(sandbox)
    # Meddle on Fly: a paused instance does not notice (and does not call Fly at all).
    sandbox.flyhttp.post(f"/v1/apps/{APP}/machines/{status['machineId']}/stop").raise_for_status()
    time.sleep(1.5)
    assert _fly_calls(sandbox) == calls + 1  # only our own stop call
    assert sandbox.status("calm")["phase"] == "Running"

    sandbox.patch("calm", {"metadata": {"annotations": {"claw.dev/paused": None}}})
    sandbox.wait(lambda: sandbox.condition("calm", "Reconciling").get("reason") != "Paused", what="unpaused")
    sandbox.wait(
        lambda: _machine(sandbox, status["machineId"])["state"] == "started", timeout=30, what="healed"
    )


def test_reconcile_request_is_echoed_when_handled(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("poke")
    sandbox.wait_phase("poke", "Running")
    sandbox.patch("poke", {"metadata": {"annotations": {"claw.dev/reconcile-requested-at": "req-1"}}})
    sandbox.wait(lambda: sandbox.status("poke").get("lastHandledReconcileAt") == "req-1", what="echo")


def test_desired_stopped_and_back(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("nap")
    status = sandbox.wait_phase("nap", "Running")
    sandbox.patch("nap", {"spec": {"state": "Stopped"}})
    stopped = sandbox.wait_phase("nap", "Stopped")
    assert stopped["lastStoppedAt"]
    sandbox.wait_condition("nap", "Ready", "True", "Stopped")
    assert _machine(sandbox, status["machineId"])["state"] == "stopped"
    assert [v["id"] for v in sandbox.volumes()] == [status["volumeId"]]  # the volume is kept
    time.sleep(1.0)  # periodic checks do not restart a machine meant to be stopped
    assert _machine(sandbox, status["machineId"])["state"] == "stopped"

    sandbox.patch("nap", {"spec": {"state": "Running"}})
    sandbox.wait_condition("nap", "Ready", "True", "Running")
    assert _machine(sandbox, status["machineId"])["state"] == "started"
    assert [m["id"] for m in sandbox.live_machines()] == [status["machineId"]]


def test_image_change_updates_the_machine_in_place(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("upgrade")
    status = sandbox.wait_phase("upgrade", "Running")
    sandbox.patch("upgrade", {"spec": {"image": "registry.fly.io/claw:2"}})
    sandbox.wait(
        lambda: _machine(sandbox, status["machineId"])["config"]["image"] == "registry.fly.io/claw:2",
        what="new image",
    )
    sandbox.wait_condition("upgrade", "Restarting", "False", "RestartSucceeded")
    sandbox.wait_condition("upgrade", "Ready", "True", "Running")
    assert [m["id"] for m in sandbox.live_machines()] == [status["machineId"]]


def _secret(sandbox: Sandbox, value: str, *, create: bool) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds"), data={"token": base64.b64encode(value.encode()).decode()}
    )
    if create:
        sandbox.core.create_namespaced_secret(sandbox.namespace, body)
    else:
        sandbox.core.replace_namespaced_secret("creds", sandbox.namespace, body)


def test_secret_env_reaches_the_machine_and_its_change_restarts_it(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    secret_env = [{"name": "TOKEN", "secretKeyRef": {"name": "creds", "key": "token"}}]
    sandbox.create("secretive", secretEnv=secret_env)
    stalled = sandbox.wait_condition("secretive", "Stalled", "True", "SecretNotFound")
    assert "creds" in stalled["message"]

    _secret(sandbox, "first-value", create=True)
    status = sandbox.wait_phase("secretive", "Running", timeout=30)
    assert _machine(sandbox, status["machineId"])["config"]["env"]["TOKEN"] == "first-value"

    _secret(sandbox, "second-value", create=False)
    sandbox.wait(
        lambda: _machine(sandbox, status["machineId"])["config"]["env"]["TOKEN"] == "second-value",
        timeout=30,
        what="rotated value",
    )
    sandbox.wait_condition("secretive", "Restarting", "False", "RestartSucceeded")
    obj = sandbox.get("secretive")
    everything = str(obj) + str(sandbox.events("secretive")) + sandbox.logs.getvalue()
    assert "first-value" not in everything and "second-value" not in everything


def test_bad_token_stalls_without_crashing_or_leaking_the_token(sandbox: Sandbox) -> None:
    bad = "fo1_wrong-token-do-not-log"
    operator = sandbox.start_operator(token=bad)
    sandbox.create("locked")
    sandbox.wait_condition("locked", "Stalled", "True", "Unauthorized")
    time.sleep(1.0)
    assert operator.error is None  # still running: no crash loop
    everything = str(sandbox.get("locked")) + str(sandbox.events("locked")) + sandbox.logs.getvalue()
    assert bad not in everything and TOKEN not in everything
    assert "wrong-token" not in everything


class CrashAfterCreate:
    """Lets the first machine create reach Fly, then never returns: the pass dies before its
    status write, as if the operator were killed right there."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self.created = asyncio.Event()

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._gateway, attribute)

    async def observe(self, instance: Instance) -> Any:
        return await self._gateway.observe(instance)

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        result: ActionResult = await self._gateway.execute(action, instance, env)
        if isinstance(action, CreateMachine):
            self.created.set()
            await asyncio.Event().wait()  # killed: never writes the status
        return result


def test_operator_killed_between_create_and_status_write_makes_one_machine(sandbox: Sandbox) -> None:
    first = sandbox.start_operator(gateway_hook=CrashAfterCreate)
    sandbox.create("survivor")
    sandbox.wait(lambda: len(sandbox.live_machines()) == 1, what="the machine on Fly")
    assert "machineId" not in sandbox.status("survivor")
    first.stop(timeout=5)
    sandbox.operators.remove(first)

    sandbox.start_operator()
    status = sandbox.wait_phase("survivor", "Running", timeout=30)
    machines = sandbox.live_machines()
    assert [m["id"] for m in machines] == [status["machineId"]]
    sandbox.wait_events("survivor", "MachineRecovered")


def test_silent_success_on_create_makes_exactly_one_machine(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/v1/apps/*/machines", mode="silent_success", status=408, count=1)
    sandbox.start_operator()
    sandbox.create("once")
    status = sandbox.wait_phase("once", "Running", timeout=30)
    assert [m["id"] for m in sandbox.live_machines()] == [status["machineId"]]


def test_no_app_anywhere_stalls_without_calling_fly_until_one_is_configured(sandbox: Sandbox) -> None:
    sandbox.start_operator(default_app=None)
    at_start = _fly_calls(sandbox)  # the start-up check asks Fly once whether it takes the token
    sandbox.create("homeless")
    stalled = sandbox.wait_condition("homeless", "Stalled", "True", "InvalidConfig")
    assert "--default-app" in stalled["message"]
    assert _fly_calls(sandbox) == at_start
    # spec.app is immutable once the object exists (CEL), so the fix is the operator's default.
    sandbox.stop_operators()
    sandbox.start_operator(default_app=APP)
    sandbox.wait_phase("homeless", "Running")
    assert sandbox.status("homeless")["appName"] == APP
