"""Honest status under compound failure (issue 11), against the real operator, kubesim and
flysim: a restart runs once whatever happens to its status write, every mount repair is
reported, a slow boot is not a failure, a missing Secret never freezes observation, a paused
object never claims to be current, a restart request on a stopped machine is acted on at once,
and an instance stalled before its first phase is not re-checked every few seconds."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from claw_operator.lifecycle.model import Action, ActionResult, Instance, RestartMachine
from tests.integration.conftest import APP, FAST, Sandbox

STUCK_IMAGE = "registry.fly.io/claw:sim-boot-stuck"


def _machine(sandbox: Sandbox, machine_id: str) -> dict[str, Any]:
    response = sandbox.flyhttp.get(f"/v1/apps/{APP}/machines/{machine_id}")
    response.raise_for_status()
    machine: dict[str, Any] = response.json()
    return machine


def _requests(sandbox: Sandbox, method: str, suffix: str) -> int:
    stats = sandbox.flyhttp.get("/_sim/stats").json()
    return sum(
        row["count"]
        for row in stats["requests"]
        if row["method"] == method and row["route"].endswith(suffix) and row["status"] < 300
    )


def _versions(sandbox: Sandbox, machine_id: str) -> int:
    """How many updates the machine went through (each one is a new instance_id)."""
    timeline = sandbox.fly.call(sandbox.fly.sim.timeline, machine_id)
    return sum(1 for change in timeline if change.get("state") == "replacing")


def _count(sandbox: Sandbox, name: str, reason: str) -> int:
    return sandbox.event_reasons(name).count(reason)


class EditDuringRestart:
    """After the restart reached Fly, someone annotates the object: the pass's status write,
    conditional on the version it read, answers 409."""

    def __init__(self, gateway: Any, sandbox: Sandbox, name: str) -> None:
        self._gateway, self._sandbox, self._name = gateway, sandbox, name
        self.edits = 0

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._gateway, attribute)

    async def observe(self, instance: Instance) -> Any:
        return await self._gateway.observe(instance)

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        result: ActionResult = await self._gateway.execute(action, instance, env)
        if isinstance(action, RestartMachine) and self.edits == 0:
            self.edits += 1
            body = {"metadata": {"annotations": {"example.com/touched": "yes"}}}
            await asyncio.to_thread(self._sandbox.patch, self._name, body)
        return result


class CrashAfterRestart:
    """The restart reaches Fly, then the operator dies before its status write."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._gateway, attribute)

    async def observe(self, instance: Instance) -> Any:
        return await self._gateway.observe(instance)

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        result: ActionResult = await self._gateway.execute(action, instance, env)
        if isinstance(action, RestartMachine):
            await asyncio.Event().wait()  # killed: never writes the status
        return result


def _restart_once_checks(sandbox: Sandbox, name: str, machine_id: str, stops_before: int) -> None:
    sandbox.wait_condition(name, "Restarting", "False", "RestartSucceeded", timeout=30)
    sandbox.wait_condition(name, "Ready", "True", "Running")
    time.sleep(1.0)  # further periodic checks must not restart it again
    assert _requests(sandbox, "POST", "/stop") - stops_before == 1, "the machine was stopped twice"
    assert _versions(sandbox, machine_id) == 1, "the machine was updated twice"
    sandbox.wait_events(name, "Restarted")
    assert _count(sandbox, name, "Restarted") == 1
    assert sandbox.status(name)["handledRestartedAt"] == "r1"
    assert "restartingInstanceId" not in sandbox.status(name)


def test_a_restart_whose_status_write_conflicts_runs_once(sandbox: Sandbox) -> None:
    sandbox.start_operator(gateway_hook=lambda gateway: EditDuringRestart(gateway, sandbox, "twice"))
    sandbox.create("twice")
    status = sandbox.wait_phase("twice", "Running")
    stops = _requests(sandbox, "POST", "/stop")
    sandbox.patch("twice", {"spec": {"restartedAt": "r1"}})
    _restart_once_checks(sandbox, "twice", status["machineId"], stops)


def test_a_restart_whose_operator_died_before_the_write_is_not_redone(sandbox: Sandbox) -> None:
    first = sandbox.start_operator(gateway_hook=CrashAfterRestart)
    sandbox.create("phoenix")
    status = sandbox.wait_phase("phoenix", "Running")
    stops = _requests(sandbox, "POST", "/stop")
    sandbox.patch("phoenix", {"spec": {"restartedAt": "r1"}})
    sandbox.wait(lambda: _versions(sandbox, status["machineId"]) == 1, timeout=30, what="the restart on Fly")
    sandbox.wait(lambda: _machine(sandbox, status["machineId"])["state"] == "started", what="restarted")
    assert sandbox.status("phoenix")["restartingAt"]  # the guard, persisted; its end never written
    first.stop(timeout=5)
    sandbox.operators.remove(first)

    sandbox.start_operator()
    _restart_once_checks(sandbox, "phoenix", status["machineId"], stops)
    assert "restart_already_applied" in sandbox.logs.getvalue()


def test_a_restart_whose_stop_and_start_fly_applied_although_they_failed_runs_once(sandbox: Sandbox) -> None:
    """`make chaos` on 42ce2c9 (restart_repeated): Fly applies the restart's stop and answers 408
    (RestartFailed), then applies the start of the stopped machine and answers 502 (StartFailed).
    The machine was stopped and booted after the request: it is served (Fly's start event is
    past the request's baseline), never stopped and started a second time."""
    sandbox.start_operator()
    sandbox.create("echo")
    status = sandbox.wait_phase("echo", "Running")
    machine_id = status["machineId"]
    seen = len(sandbox.fly.call(sandbox.fly.sim.timeline, machine_id))
    stop = "/v1/apps/*/machines/*/stop"
    start = "/v1/apps/*/machines/*/start"
    sandbox.fault(method="POST", path=stop, mode="silent_success", status=408, count=1)
    sandbox.fault(method="POST", path=start, mode="silent_success", status=502, count=1)
    sandbox.patch("echo", {"spec": {"restartedAt": "r1"}})

    sandbox.wait(lambda: sandbox.status("echo").get("handledRestartedAt") == "r1", timeout=30, what="handled")
    sandbox.wait_condition("echo", "Ready", "True", "Running")
    sandbox.wait_condition("echo", "Restarting", "False", "RestartSucceeded")
    time.sleep(1.0)  # further periodic checks must not restart it again
    states = [change["state"] for change in sandbox.fly.call(sandbox.fly.sim.timeline, machine_id)[seen:]]
    assert states.count("stopping") == 1 and states.count("started") == 1, states
    assert states[-1] == "started"
    reasons = sandbox.event_reasons("echo")
    assert "RestartFailed" in reasons and "StartFailed" in reasons  # what the calls answered
    assert reasons.count("Restarted") == 1
    assert "restart_served_by_boot" in sandbox.logs.getvalue()
    assert "restartBaselineFor" not in sandbox.status("echo")


def test_a_stopped_machine_on_the_wrong_volume_is_repaired_by_its_start_and_says_so(sandbox: Sandbox) -> None:
    sandbox.start_operator(timings=replace(FAST, stopped_threshold=1000))
    sandbox.create("drifted")
    status = sandbox.wait_phase("drifted", "Running")
    machine_id, volume_id = status["machineId"], status["volumeId"]
    sandbox.patch("drifted", {"metadata": {"annotations": {"claw.dev/paused": "true"}}})
    sandbox.wait_condition("drifted", "Reconciling", "False", "Paused")
    # While nobody watches: the machine is stopped and re-pointed at another volume.
    other = sandbox.flyhttp.post(
        f"/v1/apps/{APP}/volumes", json={"name": "stray", "region": "iad", "size_gb": 1}
    ).json()
    sandbox.flyhttp.post(f"/v1/apps/{APP}/machines/{machine_id}/stop").raise_for_status()
    sandbox.wait(lambda: _machine(sandbox, machine_id)["state"] == "stopped", what="stopped")
    config = _machine(sandbox, machine_id)["config"]
    config["mounts"] = [{"volume": other["id"], "path": "/data"}]
    sandbox.flyhttp.post(f"/v1/apps/{APP}/machines/{machine_id}", json={"config": config}).raise_for_status()
    sandbox.wait(lambda: _machine(sandbox, machine_id)["state"] == "stopped", what="update settled")

    sandbox.patch("drifted", {"metadata": {"annotations": {"claw.dev/paused": None}}})
    repaired = sandbox.wait_condition("drifted", "MountRepaired", "True", "MountRepaired", timeout=30)
    assert other["id"] in repaired["message"] and volume_id in repaired["message"]
    sandbox.wait_condition("drifted", "Ready", "True", "Running")
    machine = _machine(sandbox, machine_id)
    assert [(m["volume"], m["path"]) for m in machine["config"]["mounts"]] == [(volume_id, "/root")]
    sandbox.wait_events("drifted", "MountRepaired")
    assert "repair_mount" in sandbox.logs.getvalue()


def test_a_slow_boot_stays_starting_and_is_never_reported_as_a_failed_start(sandbox: Sandbox) -> None:
    timings = replace(FAST, fly_wait_timeout=timedelta(seconds=1), starting_timeout=timedelta(seconds=60))
    sandbox.start_operator(timings=timings)
    sandbox.create("sleepy", state="Stopped")
    sandbox.wait_condition("sleepy", "Ready", "True", "Stopped")
    sandbox.patch("sleepy", {"spec": {"state": "Running"}})
    status = sandbox.wait_phase("sleepy", "Running")
    sandbox.patch("sleepy", {"spec": {"state": "Stopped"}})
    sandbox.wait_condition("sleepy", "Ready", "True", "Stopped")
    machine_id = status["machineId"]

    # Started again with an image that takes longer than --fly-wait-timeout (1 s) to boot.
    recorder = sandbox.record_phases("sleepy")
    sandbox.patch("sleepy", {"spec": {"state": "Running", "image": STUCK_IMAGE}})
    starting = sandbox.wait_phase("sleepy", "Starting")
    time.sleep(4 * timings.fly_wait_timeout.total_seconds())
    still = sandbox.status("sleepy")
    assert still["phase"] == "Starting"
    assert still["startingAt"] == starting["startingAt"], "the start's clock was restarted"
    assert sandbox.condition("sleepy", "StartFailed")["status"] != "True"
    assert "StartFailed" not in sandbox.event_reasons("sleepy")

    # The image is fixed and Fly lets the parked update finish: the same start completes.
    sandbox.patch("sleepy", {"spec": {"image": "registry.fly.io/claw:1"}})

    def running() -> bool:
        sandbox.fly.call(sandbox.fly.sim.release_stuck, machine_id)
        return sandbox.condition("sleepy", "Ready").get("status") == "True"

    sandbox.wait(running, timeout=30, what="Ready once the boot completes")
    sandbox.wait_phase("sleepy", "Running")
    time.sleep(0.1)
    phases = recorder.stop()
    assert phases[phases.index("Starting") :] == ["Starting", "Running"], phases


def _secret(sandbox: Sandbox, value: str) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds"), data={"token": base64.b64encode(value.encode()).decode()}
    )
    sandbox.core.create_namespaced_secret(sandbox.namespace, body)


def test_a_missing_secret_never_freezes_observation(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    _secret(sandbox, "v1")
    secret_env = [{"name": "TOKEN", "secretKeyRef": {"name": "creds", "key": "token"}}]
    sandbox.create("blind", secretEnv=secret_env)
    status = sandbox.wait_phase("blind", "Running", timeout=30)
    sandbox.core.delete_namespaced_secret("creds", sandbox.namespace)
    sandbox.patch("blind", {"metadata": {"annotations": {"claw.dev/reconcile-requested-at": "now"}}})
    sandbox.wait_condition("blind", "Stalled", "True", "SecretNotFound")

    # The machine is destroyed behind the operator's back while the Secret is missing.
    sandbox.flyhttp.delete(f"/v1/apps/{APP}/machines/{status['machineId']}", params={"force": "true"})
    sandbox.wait_events("blind", "MachineLost", timeout=20)
    sandbox.wait(lambda: sandbox.status("blind").get("machineId") is None, what="the lost machine forgotten")
    assert sandbox.live_machines() == []  # nothing is created without the config
    assert sandbox.condition("blind", "Ready")["status"] == "False"

    _secret(sandbox, "v2")
    sandbox.wait_condition("blind", "Ready", "True", "Running", timeout=30)
    assert len(sandbox.live_machines()) == 1


def test_a_paused_spec_edit_leaves_observed_generation_behind(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("frozen")
    sandbox.wait_condition("frozen", "Ready", "True", "Running")
    before = sandbox.get("frozen")
    assert before is not None
    generation = before["metadata"]["generation"]
    sandbox.patch("frozen", {"metadata": {"annotations": {"claw.dev/paused": "true"}}})
    sandbox.wait_condition("frozen", "Reconciling", "False", "Paused")
    edited = sandbox.patch("frozen", {"spec": {"image": "registry.fly.io/claw:2"}})
    assert edited["metadata"]["generation"] == generation + 1
    time.sleep(1.0)
    status = sandbox.status("frozen")
    assert status["observedGeneration"] == generation, "a paused object claimed the new generation"
    assert {c["observedGeneration"] for c in status["conditions"]} == {generation}

    sandbox.patch("frozen", {"metadata": {"annotations": {"claw.dev/paused": None}}})
    sandbox.wait(
        lambda: sandbox.status("frozen").get("observedGeneration") == generation + 1, what="observed"
    )
    sandbox.wait_condition("frozen", "Ready", "True", "Running", timeout=30)


def test_a_restart_request_on_a_machine_fly_shows_stopped_is_acted_on_at_once(sandbox: Sandbox) -> None:
    # With the stopped-check threshold out of reach, only the restart request can start it.
    sandbox.start_operator(timings=replace(FAST, stopped_threshold=1000))
    sandbox.create("ignored")
    status = sandbox.wait_phase("ignored", "Running")
    machine_id = status["machineId"]
    sandbox.flyhttp.post(f"/v1/apps/{APP}/machines/{machine_id}/stop").raise_for_status()
    sandbox.wait(lambda: _machine(sandbox, machine_id)["state"] == "stopped", what="stopped")
    sandbox.patch("ignored", {"spec": {"restartedAt": "r1"}})
    sandbox.wait(lambda: _machine(sandbox, machine_id)["state"] == "started", timeout=15, what="started")
    sandbox.wait(lambda: sandbox.status("ignored").get("handledRestartedAt") == "r1", what="request handled")
    sandbox.wait_condition("ignored", "Ready", "True", "Running")


def test_an_instance_stalled_before_its_first_phase_waits_for_the_idle_cadence(sandbox: Sandbox) -> None:
    sandbox.start_operator(timings=replace(FAST, poll_idle=FAST.poll_idle * 60))
    secret_env = [{"name": "TOKEN", "secretKeyRef": {"name": "absent", "key": "token"}}]
    sandbox.create("patient", secretEnv=secret_env)
    sandbox.wait_condition("patient", "Stalled", "True", "SecretNotFound")
    counts = dict(sandbox.kube.sim.request_counts)

    def secret_reads(now: dict[Any, int]) -> int:
        return sum(n for (verb, route), n in now.items() if verb == "GET" and "secrets" in route)

    before = secret_reads(counts)
    time.sleep(2.0)
    after = secret_reads(dict(sandbox.kube.sim.request_counts))
    assert after - before <= 1, f"{after - before} passes in 2 s while stalled"


@pytest.mark.slow(15)
def test_an_instance_older_than_the_operator_says_at_once_why_nothing_is_created(sandbox: Sandbox) -> None:
    """After an operator restart, an instance older than the process waits `listing_settle`
    before an empty listing may prove that no earlier create landed: its first pass still
    writes a status that says so (the chaos run's "no status yet" band)."""
    sandbox.create("early")  # no operator running: the instance predates the next one
    time.sleep(2.0)  # older than the operator by creationTimestamp's whole second
    assert sandbox.status("early") == {}
    sandbox.start_operator(timings=replace(FAST, listing_settle=timedelta(seconds=12)))
    waiting = sandbox.wait_condition("early", "Reconciling", "True", "ListingInconclusive", timeout=12)
    assert "listed yet" in waiting["message"], waiting
    assert sandbox.condition("early", "Ready")["status"] == "False"
    assert sandbox.fly.list_volumes(APP) == [] and sandbox.live_machines() == []
    # The wait ends: once the listing may be trusted, the instance is provisioned as usual.
    sandbox.wait_phase("early", "Running", timeout=30)
    assert sandbox.condition("early", "Reconciling")["reason"] != "ListingInconclusive"


@pytest.mark.slow(31)
def test_a_new_instance_whose_first_create_hangs_has_a_status_while_it_hangs(sandbox: Sandbox) -> None:
    """The first action of a new instance can take long (a create Fly does not answer is
    resolved by listing before it is retried): its first status is written meanwhile, not
    after (the chaos run's instances without any status for ~30 s)."""
    sandbox.start_operator()
    sandbox.fault(method="POST", path=f"/v1/apps/{APP}/volumes", mode="hang", count=1)
    sandbox.create("hung")
    status = sandbox.wait(lambda: sandbox.status("hung"), timeout=20, what="a first status")
    # Written while the create still hangs: no volume on Fly, none in status.
    assert sandbox.fly.list_volumes(APP) == [], "the status came only after the create"
    assert "volumeId" not in status and "phase" not in status
    reconciling = next(c for c in status["conditions"] if c["type"] == "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "Provisioning")
    sandbox.wait_phase("hung", "Running", timeout=30)
    assert len(sandbox.fly.list_volumes(APP)) == 1


@pytest.mark.slow(31)
def test_a_user_edit_during_a_hanging_first_create_does_not_keep_the_status_away(sandbox: Sandbox) -> None:
    """The first status, written while the first create hangs, meets a 409 when the user
    edited the object since the pass read it: it goes onto the object as it is now."""
    sandbox.start_operator()
    sandbox.fault(method="POST", path=f"/v1/apps/{APP}/volumes", mode="hang", count=1)
    sandbox.create("edited")
    time.sleep(1.0)  # the first pass has read the object and its create hangs
    sandbox.patch("edited", {"metadata": {"labels": {"team": "blue"}}})
    status = sandbox.wait(lambda: sandbox.status("edited"), timeout=20, what="a first status")
    assert sandbox.fly.list_volumes(APP) == [], "the status came only after the create"
    assert "volumeId" not in status
    sandbox.wait_phase("edited", "Running", timeout=30)
