"""Create → Running, and the start-failure paths (contract behaviours 1, 3, 7, 8)."""

from __future__ import annotations

from tests.integration.conftest import APP, Sandbox


def test_create_reaches_running_with_one_tagged_volume_and_machine(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    created = sandbox.create("alpha")
    uid = created["metadata"]["uid"]

    status = sandbox.wait_phase("alpha", "Running")
    ready = sandbox.wait_condition("alpha", "Ready", "True", "Running")
    assert ready["observedGeneration"] == created["metadata"]["generation"]
    assert status["appName"] == APP and status["region"] == "iad"
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "Reconciling",
        "Stalled",
        "StartFailed",
        "MountRepaired",
        "Restarting",
    }
    machines = sandbox.live_machines()
    volumes = sandbox.volumes()
    assert [m["id"] for m in machines] == [status["machineId"]]
    assert [v["id"] for v in volumes] == [status["volumeId"]]
    machine = machines[0]
    assert machine["state"] == "started"
    assert machine["config"]["metadata"]["claw_instance_uid"] == uid
    assert machine["config"]["mounts"][0]["volume"] == status["volumeId"]
    assert machine["config"]["mounts"][0]["path"] == "/root"
    reasons = sandbox.event_reasons("alpha")
    for reason in ("VolumeCreated", "MachineCreated", "Started"):
        assert reason in reasons, reasons
    obj = sandbox.get("alpha")
    assert obj is not None and "claw.dev/finalizer" in obj["metadata"]["finalizers"]
