"""Create → Running, and the start-failure paths (contract behaviours 1, 3, 7, 8)."""

from __future__ import annotations

import time

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
    sandbox.wait_events("alpha", "VolumeCreated", "MachineCreated", "Started")
    obj = sandbox.get("alpha")
    assert obj is not None and "claw.dev/finalizer" in obj["metadata"]["finalizers"]


MACHINES = "/v1/apps/*/machines"


def _creates(sandbox: Sandbox) -> int:
    """Machine creates flysim has answered so far (whatever the status)."""
    stats = sandbox.flyhttp.get("/_sim/stats").json()
    return sum(
        row["count"]
        for row in stats["requests"]
        if row["method"] == "POST" and row["route"] == "/v1/apps/{app}/machines"
    )


def test_create_422_stops_at_once_then_a_spec_fix_runs(sandbox: Sandbox) -> None:
    sandbox.fault(
        method="POST", path=MACHINES, mode="error", status=422, count=None, message="invalid image reference"
    )
    sandbox.start_operator()
    sandbox.create("bad")

    status = sandbox.wait_phase("bad", "Stopped")
    assert "startingAt" not in status
    assert "invalid image reference" in status["lastStartErrorMessage"]
    assert status["lastStartErrorAt"]
    assert sandbox.condition("bad", "StartFailed")["status"] == "True"
    assert sandbox.condition("bad", "StartFailed")["reason"] == "InvalidConfig"
    stalled = sandbox.wait_condition("bad", "Stalled", "True", "InvalidConfig")
    assert sandbox.condition("bad", "Ready")["status"] == "False"
    sandbox.wait_events("bad", "StartFailed")
    assert sandbox.live_machines() == []
    # Stalled: no more creates are attempted until the spec changes.
    before = _creates(sandbox)
    time.sleep(1.0)
    assert _creates(sandbox) == before

    sandbox.clear_faults()
    sandbox.patch("bad", {"spec": {"image": "registry.fly.io/claw:2"}})
    status = sandbox.wait_phase("bad", "Running")
    assert "lastStartErrorMessage" not in status and "lastStartErrorAt" not in status
    assert sandbox.wait_condition("bad", "StartFailed", "False", "Started")
    assert sandbox.wait_condition("bad", "Stalled", "False")
    assert stalled["lastTransitionTime"] <= sandbox.condition("bad", "Stalled")["lastTransitionTime"]
    assert len(sandbox.live_machines()) == 1


def test_capacity_error_is_retried_with_backoff_until_it_succeeds(sandbox: Sandbox) -> None:
    # Hosts too small for the machine: the volume lands, the machine does not fit beside it.
    sandbox.flyhttp.post("/_sim/capacity", json={"region": "iad", "host_memory_mb": 1024}).raise_for_status()
    sandbox.start_operator()
    sandbox.create("crowded")

    failed = sandbox.wait_condition("crowded", "StartFailed", "True", "InsufficientCapacity")
    assert sandbox.status("crowded")["phase"] == "Stopped"
    assert sandbox.condition("crowded", "Stalled")["status"] == "False"
    assert failed["message"]

    sandbox.flyhttp.post(
        "/_sim/capacity", json={"region": "iad", "host_memory_mb": 524288}
    ).raise_for_status()
    sandbox.wait_phase("crowded", "Running")
    sandbox.wait_condition("crowded", "StartFailed", "False", "Started")
    assert len(sandbox.live_machines()) == 1
    assert len(sandbox.volumes()) == 1


def test_start_timeout_stops_and_the_event_carries_the_last_error(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=MACHINES, mode="error", status=503, count=1, message="upstream hiccup")
    sandbox.start_operator()
    sandbox.create("stuck", image="registry.fly.io/claw:sim-boot-stuck")

    status = sandbox.wait_phase("stuck", "Starting")
    assert status["machineId"]
    status = sandbox.wait_phase("stuck", "Stopped", timeout=30)
    sandbox.wait_condition("stuck", "Stalled", "True", "StartTimeout")
    assert sandbox.condition("stuck", "StartFailed")["reason"] == "StartTimeout"
    sandbox.wait_events("stuck", "StartTimeout")
    events = [e for e in sandbox.events("stuck") if e.get("reason") == "StartTimeout"]
    assert events and events[0]["type"] == "Warning"
    assert status["lastStartErrorMessage"]
    assert (
        status["lastStartErrorMessage"] in events[-1]["message"] or "upstream hiccup" in events[-1]["message"]
    )
    assert "starting_timeout" in sandbox.logs.getvalue()
