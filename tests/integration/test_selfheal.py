"""Periodic checks: mount repair, restarts with the Restarting guard, and self-heal (4, 6, 10)."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.conftest import APP, Sandbox


def _machine(sandbox: Sandbox, machine_id: str) -> dict[str, Any]:
    response = sandbox.flyhttp.get(f"/v1/apps/{APP}/machines/{machine_id}")
    response.raise_for_status()
    machine: dict[str, Any] = response.json()
    return machine


def _wait_fly_state(sandbox: Sandbox, machine_id: str, state: str) -> None:
    sandbox.wait(lambda: _machine(sandbox, machine_id)["state"] == state, what=f"machine {state}")


def _stop_behind_our_back(sandbox: Sandbox, machine_id: str) -> None:
    sandbox.flyhttp.post(f"/v1/apps/{APP}/machines/{machine_id}/stop").raise_for_status()
    _wait_fly_state(sandbox, machine_id, "stopped")


def test_mount_drift_is_repaired_by_the_periodic_check(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("drift")
    status = sandbox.wait_phase("drift", "Running")
    machine_id, volume_id = status["machineId"], status["volumeId"]
    # Someone re-points the mount through the normal Fly API: stop, update, start.
    other = sandbox.flyhttp.post(
        f"/v1/apps/{APP}/volumes", json={"name": "stray", "region": "iad", "size_gb": 1}
    ).json()
    _stop_behind_our_back(sandbox, machine_id)
    config = _machine(sandbox, machine_id)["config"]
    config["mounts"] = [{"volume": other["id"], "path": "/data"}]
    sandbox.flyhttp.post(f"/v1/apps/{APP}/machines/{machine_id}", json={"config": config}).raise_for_status()
    sandbox.wait(
        lambda: _machine(sandbox, machine_id)["state"] not in ("replacing", "updating"), what="update settled"
    )
    sandbox.flyhttp.post(f"/v1/apps/{APP}/machines/{machine_id}/start")

    repaired = sandbox.wait_condition("drift", "MountRepaired", "True", "MountRepaired", timeout=30)
    assert other["id"] in repaired["message"] and volume_id in repaired["message"]
    sandbox.wait_condition("drift", "Restarting", "False", "RestartSucceeded")
    sandbox.wait_phase("drift", "Running")
    machine = _machine(sandbox, machine_id)
    assert machine["state"] == "started"
    assert [(m["volume"], m["path"]) for m in machine["config"]["mounts"]] == [(volume_id, "/root")]
    sandbox.wait_events("drift", "MountRepaired")
    assert "repair_mount" in sandbox.logs.getvalue()


def test_restart_request_never_shows_stopped_and_ends_succeeded(sandbox: Sandbox) -> None:
    sandbox.start_operator()  # periodic checks every 0.5 s (FAST timings)
    sandbox.create("restart-me")
    status = sandbox.wait_phase("restart-me", "Running")
    before = _machine(sandbox, status["machineId"])["instance_id"]
    recorder = sandbox.record_phases("restart-me")
    sandbox.patch("restart-me", {"spec": {"restartedAt": "2026-11-24T09:00:00Z"}})

    sandbox.wait(
        lambda: sandbox.status("restart-me").get("handledRestartedAt") == "2026-11-24T09:00:00Z",
        what="handled",
    )
    sandbox.wait_condition("restart-me", "Restarting", "False", "RestartSucceeded")
    time.sleep(1.0)  # a few more periodic checks
    recorder.stop()
    assert "Stopped" not in recorder.phases, recorder.phases
    assert "True" in recorder.restarting, recorder.restarting
    assert recorder.restarting[-1] == "False"
    assert _machine(sandbox, status["machineId"])["instance_id"] != before
    sandbox.wait_events("restart-me", "Restarting", "Restarted")
    assert sandbox.condition("restart-me", "Ready")["status"] == "True"


def test_failed_restart_reports_the_real_fly_state(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("doomed")
    status = sandbox.wait_phase("doomed", "Running")
    machine_id = status["machineId"]
    sandbox.fault(
        method="POST",
        path="/v1/apps/*/machines/*",
        mode="error",
        status=422,
        count=None,
        message="bad config",
    )
    sandbox.patch("doomed", {"spec": {"restartedAt": "now"}})

    failed = sandbox.wait_condition("doomed", "Restarting", "False", "RestartFailed", timeout=30)
    assert "bad config" in failed["message"]
    assert "restartingAt" not in sandbox.status("doomed")
    sandbox.wait_events("doomed", "RestartFailed")
    real = _machine(sandbox, machine_id)["state"]
    sandbox.wait(lambda: sandbox.status("doomed").get("machineState") == real, what=f"machineState {real}")


def test_stopped_behind_our_back_is_marked_after_five_checks_then_started(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("sleepy")
    status = sandbox.wait_phase("sleepy", "Running")
    machine_id = status["machineId"]
    _stop_behind_our_back(sandbox, machine_id)

    sandbox.wait(lambda: sandbox.status("sleepy").get("stoppedChecks", 0) >= 2, what="stopped sightings")
    assert sandbox.status("sleepy")["phase"] == "Running"  # below the threshold: not yet
    sandbox.wait(lambda: "Stopped" in sandbox.event_reasons("sleepy"), what="Stopped event", timeout=30)
    sandbox.wait_phase("sleepy", "Running", timeout=30)
    sandbox.wait(lambda: _machine(sandbox, machine_id)["state"] == "started", what="started again")
    assert "mark_stopped" in sandbox.logs.getvalue()
    assert sandbox.status("sleepy").get("stoppedChecks", 0) == 0
    assert [m["id"] for m in sandbox.live_machines()] == [machine_id]


def test_failed_machine_is_handled_at_once(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("crashy", image="registry.fly.io/claw:sim-boot-fail")
    sandbox.wait(
        lambda: (
            "sync_status_failed" in sandbox.logs.getvalue()
            or sandbox.status("crashy").get("machineState") == "failed"
        ),
        what="failed seen",
    )
    status = sandbox.wait_phase("crashy", "Stopped")
    assert status.get("stoppedChecks", 0) == 0  # no five-sightings wait for `failed`
    sandbox.patch("crashy", {"spec": {"image": "registry.fly.io/claw:2"}})
    sandbox.wait_phase("crashy", "Running", timeout=30)
    assert len(sandbox.live_machines()) == 1


def test_machine_destroyed_behind_our_back_is_recreated_on_the_volume(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("phoenix")
    status = sandbox.wait_phase("phoenix", "Running")
    old_machine, volume_id = status["machineId"], status["volumeId"]
    sandbox.flyhttp.delete(
        f"/v1/apps/{APP}/machines/{old_machine}", params={"force": "true"}
    ).raise_for_status()

    new = sandbox.wait(
        lambda: (
            (s := sandbox.status("phoenix")).get("machineId") not in (None, old_machine)
            and s.get("phase") == "Running"
            and s
        ),
        timeout=30,
        what="a new machine running",
    )
    assert new["volumeId"] == volume_id
    machines = sandbox.live_machines()
    assert [m["id"] for m in machines] == [new["machineId"]]
    assert machines[0]["config"]["mounts"][0]["volume"] == volume_id
    sandbox.wait_events("phoenix", "MachineLost")
