"""§11 F: volumes."""

from __future__ import annotations

import asyncio

from claw_operator.sim.flysim import FlySim, ManualClock

from .conftest import FlyClient, eventually


def mount(volume_id: str) -> list[dict[str, str]]:
    return [{"volume": volume_id, "path": "/data"}]


async def test_f21_mount_rules_region_one_mount_and_claims(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    _, clock = manual
    fly = manual_fly
    iad = await fly.create_volume("f21", region="iad")
    other = await fly.create_volume("f21", name="data2", region="iad")
    lhr = await fly.create_volume("f21", region="lhr")
    two = await fly.post(
        "/v1/apps/f21/machines",
        json={"region": "iad", "config": {"image": "x", "mounts": mount(iad["id"]) + mount(other["id"])}},
    )
    assert two.status_code == 400

    wrong = await fly.post(
        "/v1/apps/f21/machines", json={"region": "ord", "config": {"image": "x", "mounts": mount(lhr["id"])}}
    )
    assert wrong.status_code == 400
    assert (
        wrong.json()["error"] == f'Mounts source volume "{lhr["id"]}" is in the wrong region ("lhr" != "ord")'
    )

    holder = await fly.create_machine("f21", {"image": "x", "mounts": mount(iad["id"])})
    claimed = await fly.post(
        "/v1/apps/f21/machines", json={"region": "iad", "config": {"image": "x", "mounts": mount(iad["id"])}}
    )
    assert claimed.status_code == 412
    assert claimed.json()["error"] == f"failed_precondition: volume already claimed by machine {holder['id']}"

    # Destroyed moments ago still holds the claim, until the detach delay passes [O].
    await fly.delete(f"/v1/apps/f21/machines/{holder['id']}", params={"force": "true"})
    clock.advance(0.05)
    assert (await fly.machine("f21", holder["id"]))["state"] == "destroyed"
    recently = await fly.post(
        "/v1/apps/f21/machines", json={"region": "iad", "config": {"image": "x", "mounts": mount(iad["id"])}}
    )
    assert recently.status_code == 412 and holder["id"] in recently.json()["error"]

    clock.advance(0.1)  # the fast profile's detach delay
    mounted = await fly.post(
        "/v1/apps/f21/machines", json={"region": "iad", "config": {"image": "x", "mounts": mount(iad["id"])}}
    )
    assert mounted.status_code == 200


async def test_f22_bound_volume_delete_refused_then_soft_deleted(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    _, clock = manual
    fly = manual_fly
    volume = await fly.create_volume("f22")
    machine = await fly.create_machine("f22", {"image": "x", "mounts": mount(volume["id"])})
    path = f"/v1/apps/f22/volumes/{volume['id']}"
    assert (await fly.get(path)).json()["attached_machine_id"] is None, "attachment shows asynchronously"
    clock.advance(1)
    assert (await fly.get(path)).json()["attached_machine_id"] == machine["id"]

    bound = await fly.delete(path)
    assert bound.status_code == 412
    assert (
        bound.json()["error"] == f"failed_precondition: volume is currently bound to machine: {machine['id']}"
    )
    await fly.delete(f"/v1/apps/f22/machines/{machine['id']}", params={"force": "true"})
    clock.advance(0.06)  # destroyed, but the volume is released in the background
    assert (await fly.delete(path)).status_code == 412
    clock.advance(1)
    assert (await fly.get(path)).json()["attached_machine_id"] is None
    deleted = await fly.delete(path)
    assert deleted.status_code == 200 and deleted.json()["state"] == "scheduling_destroy"
    clock.advance(0.1)
    listed = (await fly.get("/v1/apps/f22/volumes")).json()
    assert [(v["id"], v["state"]) for v in listed] == [(volume["id"], "pending_destroy")]
    clock.advance(1)
    assert (await fly.get("/v1/apps/f22/volumes")).json() == []
    assert (await fly.get(path)).status_code == 404


async def test_f23_extend_sizes_unique_zones_meta_regions_and_forks(fly: FlyClient, flysim: FlySim) -> None:
    volume = await fly.create_volume("f23", size_gb=3)
    path = f"/v1/apps/f23/volumes/{volume['id']}"
    for smaller in (3, 2):
        shrink = await fly.put(path + "/extend", json={"size_gb": smaller})
        assert shrink.status_code == 400
    grown = await fly.put(path + "/extend", json={"size_gb": 10})
    assert grown.status_code == 200
    assert grown.json()["volume"]["size_gb"] == 10 and grown.json()["needs_restart"] is False
    assert (await fly.put(path + "/extend", json={"size_gb": 501})).status_code == 400

    machine = await fly.create_machine("f23", {"image": "x", "mounts": mount(volume["id"])})
    await fly.reaches("f23", machine["id"], "started")
    await asyncio.sleep(0.05)
    assert (await fly.put(path + "/extend", json={"size_gb": 20})).json()["needs_restart"] is True

    for size in (0, 501):
        assert (
            await fly.post("/v1/apps/f23/volumes", json={"name": "v", "region": "iad", "size_gb": size})
        ).status_code == 400
    for meta in ("us", "iad,ord", "any"):
        response = await fly.post("/v1/apps/f23/volumes", json={"name": "v", "region": meta})
        assert response.status_code == 400, meta

    flysim.set_capacity("cdg", hosts=2)
    await fly.create_volume("f23", name="zoned", region="cdg")
    await fly.create_volume("f23", name="zoned", region="cdg")
    exhausted = await fly.post("/v1/apps/f23/volumes", json={"name": "zoned", "region": "cdg"})
    assert exhausted.status_code == 412 and "require_unique_zone" in exhausted.json()["error"]
    shared = await fly.post(
        "/v1/apps/f23/volumes", json={"name": "zoned", "region": "cdg", "require_unique_zone": False}
    )
    assert shared.status_code == 200

    fork = await fly.create_volume(
        "f23", name="fork", region="lhr", size_gb=20, source_volume_id=volume["id"]
    )
    assert fork["state"] == "hydrating" and fork["size_gb"] == 20 and fork["region"] == "lhr"
    forked = await fly.create_machine("f23", {"image": "x", "mounts": mount(fork["id"])}, region="lhr")
    assert forked["state"] == "created", "a hydrating volume can be mounted"

    async def hydrated() -> bool:
        return (await fly.get(f"/v1/apps/f23/volumes/{fork['id']}")).json()["state"] == "created"

    await eventually(hydrated)


async def test_f24_mount_change_by_update_refused_running_accepted_stopped(fly: FlyClient) -> None:
    first = await fly.create_volume("f24")
    second = await fly.create_volume("f24", name="data-b")
    machine = await fly.create_machine("f24", {"image": "x", "mounts": mount(first["id"])})
    base = f"/v1/apps/f24/machines/{machine['id']}"
    await fly.reaches("f24", machine["id"], "started")
    refused = await fly.post(base, json={"config": {"image": "x", "mounts": mount(second["id"])}})
    assert refused.status_code == 400

    await fly.post(base + "/stop")
    await fly.reaches("f24", machine["id"], "stopped")
    accepted = await fly.post(base, json={"config": {"image": "x", "mounts": mount(second["id"])}})
    assert accepted.status_code == 200 and accepted.json()["config"]["mounts"] == mount(second["id"])
    await fly.reaches("f24", machine["id"], "stopped")

    async def swapped() -> bool:
        a = (await fly.get(f"/v1/apps/f24/volumes/{first['id']}")).json()["attached_machine_id"]
        b = (await fly.get(f"/v1/apps/f24/volumes/{second['id']}")).json()["attached_machine_id"]
        return a is None and b == machine["id"]

    await eventually(swapped)
