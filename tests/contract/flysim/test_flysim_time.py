"""§11 B: time and asynchrony, and determinism."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from claw_operator.sim.flysim import FAST, FlySim, ManualClock

from .conftest import ContractChecker, FlyClient


async def test_b6_state_changes_happen_after_the_response_through_transient_states(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    sim, clock = manual
    fly = manual_fly
    machine = await fly.create_machine("b6")
    assert machine["state"] == "created"
    assert (await fly.machine("b6", machine["id"]))["state"] == "created", "nothing moves until time does"
    clock.advance(1.0)
    assert (await fly.machine("b6", machine["id"]))["state"] == "started"

    assert (await fly.post(f"/v1/apps/b6/machines/{machine['id']}/stop")).json() == {"ok": True}
    assert (await fly.machine("b6", machine["id"]))["state"] == "started", "the stop answer comes first"
    clock.advance(1.0)
    assert (await fly.machine("b6", machine["id"]))["state"] == "stopped"

    states = [step["state"] for step in sim.timeline(machine["id"])]
    assert states == ["created", "starting", "started", "stopping", "stopped"]
    times = [step["time"] for step in sim.timeline(machine["id"])]
    assert times == sorted(times) and times[0] < times[2] < times[4]


async def run_scripted_session(seed: int) -> dict[str, Any]:
    """The same request sequence against a fresh simulator: everything it hands out."""
    clock = ManualClock()
    sim = FlySim(profile="realistic", seed=seed, clock=clock)
    await sim.start()
    fly = FlyClient(sim.base_url, ContractChecker())
    try:
        volume = await fly.create_volume("det")
        machine = await fly.create_machine(
            "det", {"image": "nginx", "mounts": [{"volume": volume["id"], "path": "/d"}]}, lease_ttl=60
        )
        clock.advance(30)
        await fly.post(
            f"/v1/apps/det/machines/{machine['id']}/stop",
            headers={"fly-machine-lease-nonce": machine["nonce"]},
        )
        clock.advance(30)
        updated = (
            await fly.post(
                f"/v1/apps/det/machines/{machine['id']}",
                json={"config": {"image": "nginx:2", "mounts": [{"volume": volume["id"], "path": "/d"}]}},
                headers={"fly-machine-lease-nonce": machine["nonce"]},
            )
        ).json()
        clock.advance(30)
        other = await fly.create_machine("det")
        clock.advance(30)
        return {
            "ids": [volume["id"], machine["id"], machine["instance_id"], machine["nonce"], machine["name"],
                    updated["instance_id"], other["id"], other["private_ip"]],
            "timeline": [(s["state"], s["elapsed"]) for s in sim.timeline(machine["id"])],
            "other_timeline": [(s["state"], s["elapsed"]) for s in sim.timeline(other["id"])],
        }  # fmt: skip
    finally:
        await fly.aclose()
        await sim.stop()


async def test_b7_same_seed_and_requests_give_same_ids_and_timings() -> None:
    first = await run_scripted_session(seed=42)
    again = await run_scripted_session(seed=42)
    other = await run_scripted_session(seed=43)
    assert first == again
    assert first["ids"] != other["ids"]
    assert first["timeline"] != other["timeline"], "jitter is seeded, not absent"
    states = [state for state, _ in first["timeline"]]
    assert states == ["created", "starting", "started", "stopping", "stopped", "replacing", "stopped"]


async def test_b7_lease_expiry_and_wait_deadlines_run_on_the_injected_clock(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    _, clock = manual
    machine = await manual_fly.create_machine("b7", skip_launch=True)
    base = f"/v1/apps/b7/machines/{machine['id']}"
    await manual_fly.post(base + "/lease", params={"ttl": 10})
    clock.advance(9.9)
    assert (await manual_fly.get(base + "/lease")).status_code == 200
    clock.advance(0.2)
    assert (await manual_fly.get(base + "/lease")).status_code == 404


async def test_b8_start_is_refused_while_settling_and_succeeds_after(contract: ContractChecker) -> None:
    clock = ManualClock()
    sim = FlySim(profile=FAST.with_overrides(still_active_tail=1.0), clock=clock)
    await sim.start()
    fly = FlyClient(sim.base_url, contract)
    try:
        machine = await fly.create_machine("b8")
        base = f"/v1/apps/b8/machines/{machine['id']}"
        early = await fly.post(base + "/start")
        assert early.status_code == 412
        assert (
            early.json()["error"]
            == "failed_precondition: unable to start machine from current state: 'created'"
        )
        clock.advance(0.2)
        assert (await fly.machine("b8", machine["id"]))["state"] == "started"

        await fly.post(base + "/stop")
        stopping = await fly.post(base + "/start")
        assert stopping.status_code == 412
        assert (
            stopping.json()["error"]
            == "failed_precondition: unable to start machine from current state: 'stopping'"
        )
        clock.advance(0.2)
        assert (await fly.machine("b8", machine["id"]))["state"] == "stopped"
        active = await fly.post(base + "/start")
        assert active.status_code == 412
        assert active.json()["error"] == "failed_precondition: machine still active, refusing to start"
        clock.advance(1.0)
        retried = await fly.post(base + "/start")
        assert retried.status_code == 200 and retried.json()["previous_state"] == "stopped"
        clock.advance(0.2)
        current = await fly.machine("b8", machine["id"])
        assert current["state"] == "started"

        await fly.post(base, json={"config": current["config"]})
        replacing = await fly.post(base + "/start")
        assert replacing.status_code == 412
        assert replacing.json()["error"] == "failed_precondition: machine getting replaced, refusing to start"
    finally:
        await fly.aclose()
        await sim.stop()


async def test_b9_stuck_boot_stays_created_until_released(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    sim, clock = manual
    machine = await manual_fly.create_machine("b9", {"image": "registry.fly.io/claw:sim-boot-stuck"})
    clock.advance(3600)
    assert (await manual_fly.machine("b9", machine["id"]))["state"] == "created"
    released = (await manual_fly.post(f"/_sim/machines/{machine['id']}/release")).json()
    assert released == {"ok": True, "released": True}
    clock.advance(1)
    assert (await manual_fly.machine("b9", machine["id"]))["state"] == "started"
    assert sim.release_stuck(machine["id"]) is False, "nothing left to release"

    # An update to a stuck image stays `replacing` the same way.
    path = f"/v1/apps/b9/machines/{machine['id']}"
    await manual_fly.post(path, json={"config": {"image": "registry.fly.io/claw:sim-boot-stuck"}})
    clock.advance(3600)
    assert (await manual_fly.machine("b9", machine["id"]))["state"] == "replacing"
    assert sim.release_stuck(machine["id"]) is True
    clock.advance(1)
    assert (await manual_fly.machine("b9", machine["id"]))["state"] == "started"


@pytest.mark.looptime
async def test_b7_realistic_profile_runs_in_looptime_fake_time(contract: ContractChecker) -> None:
    """The default clock follows the loop's time, so under looptime seconds cost nothing."""
    began = time.monotonic()
    sim = FlySim(profile="realistic", seed=1)
    await sim.start()
    fly = FlyClient(sim.base_url, contract)
    try:
        machine = await fly.create_machine("lt")
        loop_began = asyncio.get_running_loop().time()
        waited = await fly.get(
            f"/v1/apps/lt/machines/{machine['id']}/wait", params={"state": "started", "timeout": 60}
        )
        assert waited.json()["state"] == "started"
        simulated = asyncio.get_running_loop().time() - loop_began
        assert 2.0 < simulated < 10.0, "realistic pull + boot take seconds of loop time"
        assert time.monotonic() - began < simulated, "and less wall time than that"
    finally:
        await fly.aclose()
        await sim.stop()
