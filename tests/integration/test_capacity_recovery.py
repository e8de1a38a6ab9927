"""Capacity recovery (issue 12, part 1: KiloClaw's replaceStrandedVolume), against the real
operator, kubesim and flysim: a volume's host is full while its region has room elsewhere, so
the machine cannot be created (or started) on it. A never-started volume is replaced by a new
one; one with data is forked, and the old one deleted only once the machine on the fork has
started; a failed fork leaves the volume untouched; an operator killed mid-recovery leaks
nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from claw_operator.lifecycle.model import Action, ActionResult, DeleteStrandedVolume, Instance, ReplaceVolume
from tests.integration.conftest import Sandbox


class Hook:
    """Wraps the operator's Fly gateway (see test_honest_status)."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._gateway, attribute)

    async def observe(self, instance: Instance) -> Any:
        return await self._gateway.observe(instance)

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        result: ActionResult = await self._gateway.execute(action, instance, env)
        return result


def _running_with_data(sandbox: Sandbox, name: str, **spec: Any) -> dict[str, Any]:
    """An instance that ran (lastStartedAt set), stopped, with a file on its volume, and the
    volume's host then filled by other tenants."""
    sandbox.create(name, **spec)
    status = sandbox.wait_phase(name, "Running", timeout=20)
    assert status.get("lastStartedAt")
    sandbox.fly.write_volume(status["volumeId"], "/root/notes.txt", "the user's data")
    sandbox.patch(name, {"spec": {"state": "Stopped"}})
    sandbox.wait_phase(name, "Stopped", timeout=20)
    sandbox.fly.fill_host(volume_id=status["volumeId"])
    return status


def test_a_never_started_volume_on_a_full_host_is_replaced(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("fresh", state="Stopped")
    old = sandbox.wait(lambda: sandbox.status("fresh").get("volumeId"), what="the first volume")
    sandbox.wait_phase("fresh", "Stopped")
    sandbox.fly.fill_host(volume_id=old)

    sandbox.patch("fresh", {"spec": {"state": "Running"}})
    sandbox.wait_events("fresh", "VolumeReplaced", timeout=20)
    status = sandbox.wait_phase("fresh", "Running", timeout=20)
    sandbox.wait(lambda: "strandedVolumeId" not in sandbox.status("fresh"), what="the recovery's end")
    status = sandbox.status("fresh")
    new = status["volumeId"]
    assert new != old
    assert [v["id"] for v in sandbox.volumes()] == [new], "the stranded volume leaked"
    (machine,) = sandbox.live_machines()
    assert [m["volume"] for m in machine["config"]["mounts"]] == [new]
    sandbox.wait_condition("fresh", "StartFailed", "False", "Started")
    logs = sandbox.logs.getvalue()
    for action in ("insufficient_resources", "create_replacement_volume", "delete_stranded_volume"):
        assert action in logs, action
    assert "fork_stranded_volume" not in logs
    replaced = next(e for e in sandbox.events("fresh") if e["reason"] == "VolumeReplaced")
    assert old in replaced["message"] and new in replaced["message"] and "iad" in replaced["message"]


class SeeTheDelete(Hook):
    """Records what Fly shows of the instance's machines when the old volume is deleted."""

    seen: list[list[tuple[str, str]]] = []

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        if isinstance(action, DeleteStrandedVolume):
            machines = await self._gateway._fly.list_machines(instance.app)
            SeeTheDelete.seen.append(
                [
                    (m.state or "", (m.config.mounts[0].volume if m.config and m.config.mounts else ""))
                    for m in machines
                ]
            )
        return await super().execute(action, instance, env)


def test_a_volume_with_data_is_forked_and_the_old_one_deleted_only_after_the_start(sandbox: Sandbox) -> None:
    SeeTheDelete.seen = []
    sandbox.start_operator(gateway_hook=SeeTheDelete)
    before = _running_with_data(sandbox, "keeper")
    old, old_machine = before["volumeId"], before["machineId"]

    sandbox.patch("keeper", {"spec": {"state": "Running"}})
    sandbox.wait_events("keeper", "VolumeForked", timeout=20)
    sandbox.wait(
        lambda: "strandedVolumeId" not in sandbox.status("keeper"), timeout=20, what="the recovery's end"
    )
    status = sandbox.wait_phase("keeper", "Running")
    new = status["volumeId"]
    assert new != old and status["machineId"] != old_machine
    # The fork carries the data; the old volume is gone, the stranded machine destroyed.
    assert sandbox.fly.volume_contents(new) == {"/root/notes.txt": "the user's data"}
    assert [v["id"] for v in sandbox.volumes()] == [new]
    (machine,) = sandbox.live_machines()
    assert machine["id"] == status["machineId"] and machine["state"] == "started"
    # When the old volume was deleted, the machine on the fork had started.
    assert SeeTheDelete.seen, "the old volume was never deleted by the recovery"
    assert ("started", new) in SeeTheDelete.seen[0]
    logs = sandbox.logs.getvalue()
    for action in ("destroy_stranded_machine", "fork_stranded_volume", "delete_stranded_volume"):
        assert action in logs, action
    assert "create_replacement_volume" not in logs
    forked = next(e for e in sandbox.events("keeper") if e["reason"] == "VolumeForked")
    assert old in forked["message"] and new in forked["message"]
    sandbox.wait_condition("keeper", "Ready", "True", "Running")


def test_a_failed_fork_leaves_the_volume_untouched_then_falls_back_to_another_region(
    sandbox: Sandbox,
) -> None:
    sandbox.start_operator()
    before = _running_with_data(sandbox, "cramped")
    old = before["volumeId"]
    # No room for another volume anywhere in iad: the fork fails.
    sandbox.fly.call(sandbox.fly.sim.set_capacity, "iad", max_volumes=1)

    sandbox.patch("cramped", {"spec": {"state": "Running"}})
    cond = sandbox.wait(
        lambda: (
            c
            if (c := sandbox.condition("cramped", "StartFailed"))["reason"] == "InsufficientCapacity"
            and "forking volume" in c["message"]
            else None
        ),
        timeout=20,
        what="the failed fork",
    )
    assert cond["status"] == "True"
    status = sandbox.status("cramped")
    assert status["volumeId"] == old and status["strandedVolumeId"] == old
    assert [v["id"] for v in sandbox.volumes()] == [old]
    assert sandbox.fly.volume_contents(old) == {"/root/notes.txt": "the user's data"}
    assert "fork_stranded_volume_failed" in sandbox.logs.getvalue()
    assert "VolumeForked" not in sandbox.event_reasons("cramped")

    # A fallback region with room: the fork lands there, and the machine follows it.
    sandbox.patch("cramped", {"spec": {"fallbackRegions": ["ord"]}})
    sandbox.wait_events("cramped", "VolumeForked", timeout=20)
    sandbox.wait(
        lambda: "strandedVolumeId" not in sandbox.status("cramped"), timeout=20, what="the recovery's end"
    )
    status = sandbox.wait_phase("cramped", "Running")
    assert status["region"] == "ord"
    (volume,) = sandbox.volumes()
    assert volume["id"] == status["volumeId"] != old and volume["region"] == "ord"
    assert sandbox.fly.volume_contents(volume["id"]) == {"/root/notes.txt": "the user's data"}
    (machine,) = sandbox.live_machines()
    assert machine["region"] == "ord"


class DieAfterTheFork(Hook):
    """The fork reaches Fly, then the operator dies before its status write."""

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        result = await super().execute(action, instance, env)
        if isinstance(action, ReplaceVolume):
            await asyncio.Event().wait()  # killed: never writes the status
        return result


def test_an_operator_killed_mid_recovery_leaves_no_leak(sandbox: Sandbox) -> None:
    first = sandbox.start_operator(gateway_hook=DieAfterTheFork)
    before = _running_with_data(sandbox, "phoenix")
    old = before["volumeId"]
    sandbox.patch("phoenix", {"spec": {"state": "Running"}})
    sandbox.wait(lambda: len(sandbox.volumes()) == 2, timeout=20, what="the fork on Fly")
    assert sandbox.status("phoenix")["volumeId"] == old  # the fork was never recorded
    first.stop(timeout=5)
    sandbox.operators.remove(first)

    sandbox.start_operator()
    sandbox.wait(
        lambda: "strandedVolumeId" not in sandbox.status("phoenix"), timeout=30, what="the recovery's end"
    )
    status = sandbox.wait_phase("phoenix", "Running")
    (volume,) = sandbox.volumes()
    assert volume["id"] == status["volumeId"] != old
    assert sandbox.fly.volume_contents(volume["id"]) == {"/root/notes.txt": "the user's data"}
    assert [m["id"] for m in sandbox.live_machines()] == [status["machineId"]]
    logs = sandbox.logs.getvalue()
    assert "recover_volume_by_name" in logs  # the fork was found by its name, not made twice
    # Two volume creates in all: the first volume and one fork (never a second fork).
    assert _volume_creates(sandbox) == 2


def _volume_creates(sandbox: Sandbox) -> int:
    stats = sandbox.flyhttp.get("/_sim/stats").json()
    return sum(
        row["count"]
        for row in stats["requests"]
        if row["method"] == "POST" and row["route"].endswith("/volumes") and row["status"] < 300
    )
