"""The user's volume (issue 18, issue 11 items 7, 8, 10): never duplicated, never replaced on a
blip, never stuck on a retried extend, grown while Stopped, and too-large configs stalled."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from claw_operator.api import GROUP, PLURAL, VERSION
from claw_operator.lifecycle import volume_name
from claw_operator.lifecycle.model import Action, ActionResult, CreateVolume, Instance
from tests.integration.conftest import APP, FAST, Sandbox

VOLUMES = "/v1/apps/*/volumes"
VOLUME = "/v1/apps/*/volumes/*"
EXTEND = "/v1/apps/*/volumes/*/extend"


def _uid(sandbox: Sandbox, name: str) -> str:
    obj = sandbox.get(name)
    assert obj is not None
    return str(obj["metadata"]["uid"])


def _volume(sandbox: Sandbox, volume_id: str) -> dict[str, Any]:
    """Read from the simulator's world: the faults under test shape only the API's answers."""
    volume = sandbox.fly.get_volume(volume_id)
    assert volume is not None
    return volume


def _live_volumes(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        v
        for v in sandbox.fly.list_volumes(APP)
        if v.get("state")
        not in ("destroying", "destroyed", "waiting_for_detach", "pending_destroy", "scheduling_destroy")
    ]


def _hold(sandbox: Sandbox, seconds: float, check: Any) -> None:
    """`check()` holds for `seconds` (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check()
        time.sleep(0.05)


# ---------------------------------------------------------------- 1. never a duplicate volume


def test_silent_volume_create_with_a_stale_listing_makes_one_volume(sandbox: Sandbox) -> None:
    # Fly made the volume but answered 408, and its list keeps hiding it for a second.
    sandbox.fault(method="POST", path=VOLUMES, mode="silent_success", status=408, count=1)
    sandbox.fault(method="GET", path=VOLUMES, mode="stale_list", count=None, window=1.0)
    sandbox.start_operator()
    sandbox.create("once-vol")
    status = sandbox.wait_phase("once-vol", "Running", timeout=30)
    assert [v["id"] for v in _live_volumes(sandbox)] == [status["volumeId"]]
    assert "VolumeLost" not in sandbox.event_reasons("once-vol")


def test_silent_volume_create_with_a_failing_listing_makes_one_volume(sandbox: Sandbox) -> None:
    # The create landed, and every listing fails for a while: "don't know" is never "none".
    sandbox.fault(method="POST", path=VOLUMES, mode="silent_success", status=408, count=1)
    failing = sandbox.fault(method="GET", path=VOLUMES, mode="error", status=503, count=None)
    sandbox.start_operator()
    sandbox.create("listless")
    _hold(sandbox, 3.0, lambda: len(_live_volumes(sandbox)) <= 1 or _fail("a second volume"))
    assert "volumeId" not in sandbox.status("listless")
    sandbox.flyhttp.delete(f"/_sim/faults/{failing}").raise_for_status()
    status = sandbox.wait_phase("listless", "Running", timeout=30)
    assert [v["id"] for v in _live_volumes(sandbox)] == [status["volumeId"]]


def _fail(what: str) -> bool:
    raise AssertionError(what)


class CrashAfterVolumeCreate:
    """Lets the volume create reach Fly, then never returns: the pass dies before its status
    write, as if the operator were killed right there."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._gateway, attribute)

    async def observe(self, instance: Instance) -> Any:
        return await self._gateway.observe(instance)

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        result: ActionResult = await self._gateway.execute(action, instance, env)
        if isinstance(action, CreateVolume):
            await asyncio.Event().wait()  # killed: never writes the status
        return result


@pytest.mark.slow(19)
def test_operator_killed_after_a_volume_create_with_a_stale_listing_makes_one_volume(
    sandbox: Sandbox,
) -> None:
    first = sandbox.start_operator(gateway_hook=CrashAfterVolumeCreate)
    sandbox.create("reborn")
    sandbox.wait(lambda: len(_live_volumes(sandbox)) == 1, what="the volume on Fly")
    time.sleep(2.0)  # the instance is older than the next operator by creationTimestamp's second
    first.stop(timeout=5)
    sandbox.operators.remove(first)
    assert "volumeId" not in sandbox.status("reborn")
    # Fly's list still hides the volume for a while after the new operator starts.
    sandbox.fault(method="GET", path=VOLUMES, mode="stale_list", count=None, window=8.0)
    sandbox.start_operator(timings=replace(FAST, listing_settle=timedelta(seconds=10)))
    status = sandbox.wait_phase("reborn", "Running", timeout=30)
    assert [v["id"] for v in _live_volumes(sandbox)] == [status["volumeId"]]


# ---------------------------------------------------------------- 2. loss only on proof


def test_one_404_on_the_volume_during_a_grow_keeps_the_volume(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("blip", volume={"sizeGB": 10})
    status = sandbox.wait_condition("blip", "Ready", "True", "Running")
    volume_id, machine_id = sandbox.status("blip")["volumeId"], sandbox.status("blip")["machineId"]
    del status
    sandbox.fault(method="GET", path=VOLUME, mode="error", status=404, count=1, message="volume not found")
    sandbox.patch("blip", {"spec": {"volume": {"sizeGB": 20}}})
    sandbox.wait(lambda: _volume(sandbox, volume_id)["size_gb"] == 20, timeout=20, what="the volume grown")
    sandbox.wait_condition("blip", "Ready", "True", "Running")
    status = sandbox.status("blip")
    assert (status["volumeId"], status["machineId"]) == (volume_id, machine_id)
    assert [v["id"] for v in _live_volumes(sandbox)] == [volume_id]
    time.sleep(0.5)
    reasons = sandbox.event_reasons("blip")
    assert "VolumeLost" not in reasons and "MountRepaired" not in reasons, reasons
    assert "lastVolumeLossAt" not in status


def test_one_404_on_the_machine_is_not_a_lost_machine(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("flicker")
    status = sandbox.wait_condition("flicker", "Ready", "True", "Running")
    machine_id = sandbox.status("flicker")["machineId"]
    del status
    sandbox.fault(method="GET", path="/v1/apps/*/machines/*", mode="error", status=404, count=1)
    time.sleep(2.0)  # several periodic checks at FAST's cadence
    sandbox.wait_condition("flicker", "Ready", "True", "Running")
    assert sandbox.status("flicker")["machineId"] == machine_id
    assert [m["id"] for m in sandbox.live_machines()] == [machine_id]
    assert "MachineLost" not in sandbox.event_reasons("flicker")


def test_a_volume_truly_lost_is_replaced_with_the_warning_and_the_evidence(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("doomed")
    sandbox.wait_condition("doomed", "Ready", "True", "Running")
    old = sandbox.status("doomed")
    # Out of band, both go: the machine (force) and then its volume.
    sandbox.flyhttp.delete(f"/v1/apps/{APP}/machines/{old['machineId']}", params={"force": "true"})
    sandbox.wait(
        lambda: sandbox.flyhttp.delete(f"/v1/apps/{APP}/volumes/{old['volumeId']}").status_code == 200,
        what="the volume deleted out of band",
    )
    new = sandbox.wait(
        lambda: (
            (s := sandbox.status("doomed")).get("volumeId") not in (None, old["volumeId"])
            and s.get("phase") == "Running"
            and s
        ),
        timeout=30,
        what="a replacement volume and machine running",
    )
    assert new["lostVolumeId"] == old["volumeId"]
    assert new["lastVolumeLossAt"]
    assert [v["id"] for v in _live_volumes(sandbox)] == [new["volumeId"]]
    sandbox.wait_events("doomed", "VolumeLost")
    lost = [e for e in sandbox.events("doomed") if e.get("reason") == "VolumeLost"]
    assert len(lost) == 1 and lost[0]["type"] == "Warning"
    assert old["volumeId"] in lost[0]["message"] and "404" in lost[0]["message"]
    assert "data_loss" in sandbox.logs.getvalue()


# ---------------------------------------------------------------- 3./4. extend


def test_a_silently_applied_extend_reaches_ready_at_the_new_size_never_stalled(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("grower", volume={"sizeGB": 10})
    sandbox.wait_condition("grower", "Ready", "True", "Running")
    volume_id = sandbox.status("grower")["volumeId"]
    sandbox.fault(method="PUT", path=EXTEND, mode="silent_success", status=408, count=1)
    sandbox.patch("grower", {"spec": {"volume": {"sizeGB": 20}}})
    stalls: list[dict[str, Any]] = []

    def grown() -> bool:
        stalled = sandbox.condition("grower", "Stalled")
        if stalled.get("status") == "True":
            stalls.append(stalled)
        ready = sandbox.condition("grower", "Ready")
        return bool(
            ready.get("status") == "True"
            and ready.get("observedGeneration") == 2
            and _volume(sandbox, volume_id)["size_gb"] == 20
        )

    sandbox.wait(grown, timeout=20, what="Ready at 20 GB")
    _hold(
        sandbox,
        1.0,
        lambda: sandbox.condition("grower", "Stalled").get("status") != "True" or _fail("stalled"),
    )
    assert not stalls, stalls


def test_a_grow_while_stopped_is_applied_or_reported(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("sleeper", volume={"sizeGB": 10}, state="Stopped")
    sandbox.wait_condition("sleeper", "Ready", "True", "Stopped", timeout=30)
    volume_id = sandbox.status("sleeper")["volumeId"]
    failing = sandbox.fault(method="PUT", path=EXTEND, mode="error", status=503, count=None)
    sandbox.patch("sleeper", {"spec": {"volume": {"sizeGB": 20}}})
    # While Fly refuses the extend, the instance says it is not at the size it should be.
    resizing = sandbox.wait_condition("sleeper", "Ready", "False", "Resizing", timeout=20)
    assert "20" in resizing["message"]
    sandbox.flyhttp.delete(f"/_sim/faults/{failing}").raise_for_status()
    sandbox.wait(lambda: _volume(sandbox, volume_id)["size_gb"] == 20, timeout=20, what="grown while Stopped")
    sandbox.wait_condition("sleeper", "Ready", "True", "Stopped")
    assert sandbox.status("sleeper")["volumeSizeGB"] == 20


# ---------------------------------------------------------------- 6. what Fly can never accept


def test_fly_413_stalls_with_what_is_too_large(sandbox: Sandbox) -> None:
    sandbox.fault(
        method="POST",
        path="/v1/apps/*/machines",
        mode="error",
        status=413,
        count=None,
        message="request entity too large",
    )
    sandbox.start_operator()
    sandbox.create("bloated", env={"BIG": "x" * 1000})
    stalled = sandbox.wait_condition("bloated", "Stalled", "True", timeout=20)
    assert "too large" in stalled["message"] and "env" in stalled["message"], stalled
    # Stalled means no retry loop: the create is not sent again until something changes.
    calls = _creates(sandbox)
    time.sleep(1.5)
    assert _creates(sandbox) == calls


def _creates(sandbox: Sandbox) -> int:
    return sum(
        row["count"]
        for row in sandbox.fly.stats()["requests"]
        if row["method"] == "POST" and row["route"] == "/v1/apps/{app}/machines"
    )


def test_a_rendered_config_over_the_limit_stalls_before_any_fly_call(sandbox: Sandbox) -> None:
    # secretEnv values are only known at run time, so the operator checks the rendered config.
    sandbox.core.create_namespaced_secret(
        sandbox.namespace,
        {"metadata": {"name": "huge"}, "stringData": {"blob": "y" * (300 * 1024)}},
    )
    sandbox.start_operator()
    sandbox.create("heavy", secretEnv=[{"name": "BLOB", "secretKeyRef": {"name": "huge", "key": "blob"}}])
    stalled = sandbox.wait_condition("heavy", "Stalled", "True", "InvalidConfig", timeout=20)
    assert "too large" in stalled["message"], stalled
    assert sandbox.live_machines() == []


# ---------------------------------------------------------------- issue 11 items 7 and 8


def test_delete_keeps_the_finalizer_while_the_volume_listing_fails(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("leaky", state="Stopped")
    sandbox.wait_condition("leaky", "Ready", "True", "Stopped", timeout=30)
    uid = _uid(sandbox, "leaky")
    # A second volume of the instance whose create answer was lost (named after it, unrecorded).
    stray = sandbox.flyhttp.post(
        f"/v1/apps/{APP}/volumes", json={"name": volume_name(uid), "region": "iad", "size_gb": 1}
    ).json()
    failing = sandbox.fault(method="GET", path=VOLUMES, mode="error", status=503, count=None)
    sandbox.delete("leaky")
    time.sleep(2.0)
    assert sandbox.get("leaky") is not None, "the finalizer went while the volume listing failed"
    sandbox.flyhttp.delete(f"/_sim/faults/{failing}").raise_for_status()
    sandbox.wait_gone("leaky", timeout=30)
    assert stray["id"] not in [v["id"] for v in _live_volumes(sandbox)]
    assert _live_volumes(sandbox) == []


def test_one_destroyed_event_per_deletion(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("once-gone")
    sandbox.wait_phase("once-gone", "Running")
    sandbox.delete("once-gone")
    sandbox.wait_gone("once-gone", timeout=30)
    time.sleep(0.5)
    assert sandbox.event_reasons("once-gone").count("Destroyed") == 1


def test_the_machine_goes_where_the_volume_really_is(sandbox: Sandbox) -> None:
    sandbox.create("astray", state="Stopped")
    uid = _uid(sandbox, "astray")
    volume = sandbox.flyhttp.post(
        f"/v1/apps/{APP}/volumes", json={"name": volume_name(uid), "region": "ord", "size_gb": 10}
    ).json()
    # The status names the volume but a region it is not in.
    sandbox.api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        sandbox.namespace,
        PLURAL,
        "astray",
        {"status": {"volumeId": volume["id"], "region": "iad", "phase": "Stopped"}},
    )
    sandbox.start_operator()
    sandbox.patch("astray", {"spec": {"state": "Running"}})
    status = sandbox.wait_phase("astray", "Running", timeout=30)
    assert status["region"] == "ord"
    assert status["volumeId"] == volume["id"]
    assert [m["region"] for m in sandbox.live_machines()] == ["ord"]
    assert sandbox.condition("astray", "Stalled").get("status") != "True"


def test_status_follows_the_volume_the_machine_mounts_never_repairs_onto_a_duplicate(
    sandbox: Sandbox,
) -> None:
    sandbox.start_operator()
    sandbox.create("loyal")
    sandbox.wait_condition("loyal", "Ready", "True", "Running")
    status = sandbox.status("loyal")
    data, machine_id = status["volumeId"], status["machineId"]
    # A duplicate named after the instance (an older operator's lost create), and a status that
    # names it instead of the volume the machine runs on.
    duplicate = sandbox.flyhttp.post(
        f"/v1/apps/{APP}/volumes",
        json={"name": volume_name(_uid(sandbox, "loyal")), "region": "iad", "size_gb": 10},
    ).json()
    sandbox.api.patch_namespaced_custom_object_status(
        GROUP, VERSION, sandbox.namespace, PLURAL, "loyal", {"status": {"volumeId": duplicate["id"]}}
    )
    sandbox.wait(
        lambda: sandbox.status("loyal").get("volumeId") == data, timeout=20, what="volumeId back on the data"
    )
    time.sleep(1.0)
    machine = sandbox.fly.get_machine(machine_id)
    assert machine is not None and [m["volume"] for m in machine["config"]["mounts"]] == [data]
    reasons = sandbox.event_reasons("loyal")
    assert "MountRepaired" not in reasons and "Restarting" not in reasons, reasons
