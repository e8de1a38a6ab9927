"""§11 C: the wait endpoint."""

from __future__ import annotations

import asyncio

from claw_operator.sim.flysim import FAST, FlySim, ManualClock
from tests.fixtures.flysim import FlySimFactory

from .conftest import ContractChecker, FlyClient


async def test_c10_wait_is_a_long_poll_that_blocks_nobody_and_takes_any_state_form(fly: FlyClient) -> None:
    machine = await fly.create_machine("c10", skip_launch=True)
    base = f"/v1/apps/c10/machines/{machine['id']}"
    waiting = asyncio.create_task(fly.get(base + "/wait", params={"state": "started", "timeout": 30}))
    other = await fly.create_machine("c10", skip_launch=True)  # served while the wait blocks
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert (await fly.machine("c10", other["id"]))["state"] == "created"

    async def start_when_settled() -> None:
        while (await fly.post(base + "/start")).status_code != 200:
            await asyncio.sleep(0.01)

    await start_when_settled()
    answer = await asyncio.wait_for(waiting, 5)
    assert answer.status_code == 200
    assert answer.json()["ok"] is True and answer.json()["state"] == "started"
    assert answer.json()["version"] == machine["instance_id"]

    default = await fly.get(base + "/wait", params={"timeout": 5})  # default state: started
    assert default.json()["state"] == "started"
    repeated = await fly.get(
        base + "/wait", params=[("state", "suspended"), ("state", "started"), ("timeout", "5")]
    )
    assert repeated.json()["state"] == "started"
    comma = await fly.get(base + "/wait", params={"state": "suspended,started", "timeout": 5})
    assert comma.json()["state"] == "started"
    settled = await fly.get(base + "/wait", params={"state": "settled", "timeout": 5})
    assert settled.json()["state"] == "started"

    broken = await fly.create_machine("c10", {"image": "claw:sim-boot-fail"})
    failed = await fly.get(
        f"/v1/apps/c10/machines/{broken['id']}/wait", params={"state": "failed", "timeout": 5}
    )
    assert failed.status_code == 200 and failed.json()["state"] == "failed"


async def test_c11_timeout_bounds_and_deadline_answer(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    _, clock = manual
    machine = await manual_fly.create_machine("c11", skip_launch=True)
    base = f"/v1/apps/c11/machines/{machine['id']}/wait"
    for bad in (0, 61, -5):
        response = await manual_fly.get(base, params={"state": "started", "timeout": bad})
        assert response.status_code == 400
        assert response.json()["error"].startswith("invalid_argument: ")
    waiting = asyncio.create_task(manual_fly.get(base, params={"state": "started", "timeout": 60}))
    await asyncio.sleep(0.05)
    clock.advance(59.9)
    await asyncio.sleep(0.05)
    assert not waiting.done()
    clock.advance(0.2)
    response = await asyncio.wait_for(waiting, 5)
    assert response.status_code == 408
    assert response.json() == {
        "error": "deadline_exceeded: machine failed to reach desired state, started, currently created"
    }


async def test_c12_wait_version_rules(fly: FlyClient) -> None:
    machine = await fly.create_machine("c12")
    base = f"/v1/apps/c12/machines/{machine['id']}"
    await fly.reaches("c12", machine["id"], "started")
    no_version = await fly.get(base + "/wait", params={"state": "stopped", "timeout": 5})
    assert no_version.status_code == 400
    assert no_version.json() == {"error": "instance_id required when waiting for stopped machine"}

    old_version = machine["instance_id"]
    current = await fly.machine("c12", machine["id"])
    updated = (await fly.post(base, json={"config": current["config"]})).json()
    assert updated["instance_id"] != old_version
    stale = await fly.get(base + "/wait", params={"state": "started", "version": old_version, "timeout": 5})
    assert stale.status_code == 412 and "currently replaced" in stale.json()["error"]

    fresh = await fly.get(
        base + "/wait", params={"state": "started", "instance_id": updated["instance_id"], "timeout": 5}
    )
    assert fresh.status_code == 200 and fresh.json()["version"] == updated["instance_id"]
    await fly.post(base + "/stop")
    stopped = await fly.get(
        base + "/wait", params={"state": "stopped", "version": updated["instance_id"], "timeout": 5}
    )
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"

    # A waiter on a version that gets replaced meanwhile learns it, without waiting out its timeout.
    waiting = asyncio.create_task(
        fly.get(base + "/wait", params={"state": "started", "version": updated["instance_id"], "timeout": 30})
    )
    await asyncio.sleep(0.05)
    await fly.post(base, json={"config": current["config"]})
    replaced = await asyncio.wait_for(waiting, 5)
    assert replaced.status_code == 412 and "currently replaced" in replaced.json()["error"]


async def test_c13_unknown_destroyed_and_just_created_machines(
    fly: FlyClient, flysim_factory: FlySimFactory, contract: ContractChecker
) -> None:
    unknown = await fly.get("/v1/apps/c13/machines/00000000000000/wait", params={"timeout": 1})
    assert unknown.status_code == 404

    machine = await fly.create_machine("c13", skip_launch=True)
    base = f"/v1/apps/c13/machines/{machine['id']}"
    await fly.delete(base)
    destroyed = await fly.get(base + "/wait", params={"state": "destroyed", "timeout": 5})
    assert destroyed.status_code == 200 and destroyed.json()["state"] == "destroyed"

    async def gone() -> bool:
        return (await fly.get(base)).status_code == 404

    from .conftest import eventually

    await eventually(gone)
    after_removal = await fly.get(base + "/wait", params={"state": "destroyed", "timeout": 5})
    assert after_removal.status_code == 200 and after_removal.json()["state"] == "destroyed"

    # The optional just-created window: 404 for GET and wait, then visible.
    clock = ManualClock()
    sim = await flysim_factory(profile=FAST.with_overrides(not_found_after_create=2.0), clock=clock)
    windowed = FlyClient(sim.base_url, contract)
    try:
        fresh = await windowed.create_machine("c13", skip_launch=True)
        path = f"/v1/apps/c13/machines/{fresh['id']}"
        assert (await windowed.get(path)).status_code == 404
        waited = await windowed.get(path + "/wait", params={"state": "settled", "timeout": 1})
        assert waited.status_code == 404
        clock.advance(2.1)
        assert (await windowed.get(path)).status_code == 200
    finally:
        await windowed.aclose()
