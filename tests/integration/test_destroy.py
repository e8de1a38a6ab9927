"""Delete: two-phase destroy, deletionPolicy, and the reviewer's race closed by design (2, 9)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from claw_operator.fly.tags import METADATA_UID_KEY, volume_name
from claw_operator.lifecycle.model import Action, ActionResult, CreateMachine, Instance
from tests.integration.conftest import APP, Sandbox

MACHINE = "/v1/apps/*/machines/*"


def test_delete_while_starting_never_leaves_destroying_and_leaks_nothing(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("booting", image="registry.fly.io/claw:sim-boot-stuck")
    status = sandbox.wait(lambda: (s := sandbox.status("booting")).get("machineId") and s, what="machineId")
    assert status["phase"] == "Starting"
    recorder = sandbox.record_phases("booting")
    sandbox.delete("booting")
    sandbox.wait_gone("booting", timeout=30)
    phases = recorder.stop()
    assert "Destroying" in phases
    assert phases[phases.index("Destroying") :] == ["Destroying"], phases
    assert sandbox.live_machines() == []
    assert sandbox.volumes() == []
    sandbox.wait_events("booting", "Destroying", "Destroyed")


def test_destroy_failures_are_recorded_retried_then_cleared(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("flaky")
    sandbox.wait_phase("flaky", "Running")
    # The client already retries a DELETE by id a few times on a 500; a fault that outlasts those
    # retries reaches the operator, which records it and keeps trying at its own pace.
    fault = sandbox.fault(
        method="DELETE", path=MACHINE, mode="error", status=500, count=None, message="boom from fly"
    )
    sandbox.delete("flaky")

    status = sandbox.wait(
        lambda: (s := sandbox.status("flaky")).get("lastDestroyErrorOp") and s, what="destroy error"
    )
    assert status["phase"] == "Destroying"
    assert status["lastDestroyErrorOp"] == "machine"
    assert status["lastDestroyErrorStatus"] == 500
    assert "boom from fly" in status["lastDestroyErrorMessage"]
    assert status["lastDestroyErrorAt"]
    assert sandbox.get("flaky") is not None, "the finalizer must hold while the machine exists"
    sandbox.flyhttp.delete(f"/_sim/faults/{fault}").raise_for_status()
    sandbox.wait_gone("flaky", timeout=30)
    sandbox.wait_events("flaky", "DestroyFailed")
    assert sandbox.live_machines() == [] and sandbox.volumes() == []
    assert "destroy_machine_failed" in sandbox.logs.getvalue()


def test_destroy_error_is_cleared_once_the_delete_succeeds(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("later")
    sandbox.wait_phase("later", "Running")
    # The volume delete fails until the fault is removed: the object stays, the error shows.
    fault = sandbox.fault(method="DELETE", path="/v1/apps/*/volumes/*", mode="error", status=500, count=None)
    sandbox.delete("later")
    status = sandbox.wait(
        lambda: (s := sandbox.status("later")).get("lastDestroyErrorOp") == "volume" and s,
        what="volume error",
    )
    assert "pendingDestroyMachineId" not in status and status["pendingDestroyVolumeId"]
    sandbox.flyhttp.delete(f"/_sim/faults/{fault}").raise_for_status()
    sandbox.wait_gone("later", timeout=30)
    assert sandbox.volumes() == []


def test_orphan_policy_keeps_fly_objects_and_releases_the_finalizer(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("keep", deletionPolicy="Orphan")
    status = sandbox.wait_phase("keep", "Running")
    sandbox.delete("keep")
    sandbox.wait_gone("keep")
    assert [m["id"] for m in sandbox.live_machines()] == [status["machineId"]]
    assert [v["id"] for v in sandbox.volumes()] == [status["volumeId"]]


class DeleteDuringCreate:
    """Forces the review's race: a deletion lands between a pass's read and its write.

    It wraps the real gateway; on the first machine create it deletes the ClawInstance (so its
    resourceVersion moves on) and then lets the real create fail with the injected 503. The
    failure handling must not clobber Destroying: its write is conditional and gets a 409.
    """

    def __init__(self, gateway: Any, box: Sandbox, name: str) -> None:
        self._gateway, self._box, self._name = gateway, box, name
        self.fired = False

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._gateway, attribute)

    async def observe(self, instance: Instance) -> Any:
        return await self._gateway.observe(instance)

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        if isinstance(action, CreateMachine) and not self.fired:
            self.fired = True
            await asyncio.to_thread(self._box.delete, self._name)
        result: ActionResult = await self._gateway.execute(action, instance, env)
        return result


def test_a_start_failure_never_overwrites_a_concurrent_delete(sandbox: Sandbox) -> None:
    hooks: list[DeleteDuringCreate] = []

    def hook(gateway: Any) -> DeleteDuringCreate:
        hooks.append(DeleteDuringCreate(gateway, sandbox, "racy"))
        return hooks[-1]

    sandbox.fault(method="POST", path="/v1/apps/*/machines", mode="error", status=503, count=1)
    sandbox.start_operator(gateway_hook=hook)
    recorder = sandbox.record_phases("racy")
    sandbox.create("racy")
    sandbox.wait_gone("racy", timeout=30)
    phases = recorder.stop()
    assert hooks and hooks[0].fired
    assert "status_conflict" in sandbox.logs.getvalue()
    assert "Stopped" not in phases, phases
    assert sandbox.live_machines() == [] and sandbox.volumes() == []


def _listings(sandbox: Sandbox) -> dict[str, int]:
    stats = sandbox.flyhttp.get("/_sim/stats").json()
    counts = {"machines": 0, "volumes": 0}
    for row in stats["requests"]:
        if row["method"] == "GET":
            for kind in counts:
                if row["route"].endswith(f"/{kind}"):
                    counts[kind] += row["count"]
    return counts


def test_a_delete_after_a_restart_lists_once_and_leaves_nothing_an_earlier_process_made(
    sandbox: Sandbox,
) -> None:
    sandbox.start_operator()
    sandbox.create("older")
    status = sandbox.wait_phase("older", "Running")
    uid = sandbox.get("older")["metadata"]["uid"]  # type: ignore[index]
    sandbox.stop_operators()
    # What a process killed between its creates and its status write leaves: a volume named after
    # the instance and a machine tagged with it, mounting it, neither in the status.
    stray_volume = sandbox.fly_call(
        "POST",
        f"/v1/apps/{APP}/volumes",
        json={"name": volume_name(uid), "region": "iad", "size_gb": 1},
    )["id"]
    sandbox.fly_call(
        "POST",
        f"/v1/apps/{APP}/machines",
        json={
            "region": "iad",
            "config": {
                "image": "registry.fly.io/claw:1",
                "metadata": {METADATA_UID_KEY: uid},
                "mounts": [{"volume": stray_volume, "path": "/data"}],
            },
        },
    )
    assert len(sandbox.live_machines()) == 2 and len(sandbox.volumes()) == 2
    sandbox.start_operator()
    # Past listing_settle of the restart: the first deleting pass's listings prove everything.
    time.sleep(2 * sandbox.timings.listing_settle.total_seconds())
    before = _listings(sandbox)
    sandbox.delete("older")
    sandbox.wait_gone("older", timeout=30)
    after = _listings(sandbox)
    # Once each, whatever the destroy then had to do (two machines, two volumes): the record the
    # listings filled in answered every later pass.
    assert {kind: after[kind] - before[kind] for kind in after} == {"machines": 1, "volumes": 1}
    assert sandbox.live_machines() == [] and sandbox.volumes() == []
    assert status["machineId"] and status["volumeId"] != stray_volume
