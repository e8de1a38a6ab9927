"""§11 G: capacity per region and host, and quotas."""

from __future__ import annotations

import asyncio

from claw_operator.sim.flysim import FlySim

from .conftest import FlyClient


async def test_g25_region_full_falls_back_along_the_region_list(fly: FlyClient, flysim: FlySim) -> None:
    set_capacity = await fly.post("/_sim/capacity", json={"region": "iad", "max_machines": 0})
    assert set_capacity.status_code == 200
    assert set_capacity.json()["regions"]["iad"]["max_machines"] == 0
    full = await fly.post("/v1/apps/g25/machines", json={"region": "iad", "config": {"image": "x"}})
    assert full.status_code == 412
    assert full.json() == {"error": "no capacity available in iad", "status": "insufficient_capacity"}
    fallback = await fly.create_machine("g25", region="iad,dfw")
    assert fallback["region"] == "dfw"
    await fly.post("/_sim/capacity", json={"region": "iad", "max_machines": None})
    assert (await fly.create_machine("g25", region="iad"))["region"] == "iad"

    # Every host of a region too small for the guest is a full region as well.
    flysim.set_capacity("fra", hosts=1, host_cpus=2, host_memory_mb=1024)
    big = {"image": "x", "guest": {"cpu_kind": "performance", "cpus": 4, "memory_mb": 8192}}
    no_host = await fly.post("/v1/apps/g25/machines", json={"region": "fra", "config": big})
    assert no_host.status_code == 412 and no_host.json()["status"] == "insufficient_capacity"


async def test_g25_full_volume_host_and_growth_on_a_full_host(fly: FlyClient, flysim: FlySim) -> None:
    flysim.set_capacity("ams", hosts=1, host_cpus=4, host_memory_mb=2048)
    volume = await fly.create_volume("g25b", region="ams")
    huge = {
        "image": "x",
        "guest": {"cpus": 2, "memory_mb": 4096},
        "mounts": [{"volume": volume["id"], "path": "/d"}],
    }
    refused = await fly.post("/v1/apps/g25b/machines", json={"region": "ams", "config": huge})
    assert refused.status_code == 412
    assert refused.json()["error"] == (
        "failed_precondition: insufficient resources to create new machine with existing volume "
        f"'{volume['id']}'"
    )

    small = {
        "image": "x",
        "guest": {"cpus": 1, "memory_mb": 1024},
        "mounts": [{"volume": volume["id"], "path": "/d"}],
    }
    machine = await fly.create_machine("g25b", small, region="ams")
    base = f"/v1/apps/g25b/machines/{machine['id']}"
    await fly.reaches("g25b", machine["id"], "started")
    neighbour = await fly.create_machine(
        "g25b", {"image": "x", "guest": {"cpus": 1, "memory_mb": 1024}}, region="ams"
    )
    await fly.reaches("g25b", neighbour["id"], "started")
    grow = await fly.post(base, json={"config": {**small, "guest": {"cpus": 1, "memory_mb": 2048}}})
    assert grow.status_code == 409
    assert (
        grow.json()["error"]
        == "could not reserve resource for machine: insufficient memory available to fulfill request"
    )

    # A stopped machine gives its memory back; starting it when the host has filled up -> 409.
    await fly.post(base + "/stop")
    await fly.reaches("g25b", machine["id"], "stopped")
    filler = await fly.create_machine(
        "g25b", {"image": "x", "guest": {"cpus": 1, "memory_mb": 1024}}, region="ams"
    )
    await fly.reaches("g25b", filler["id"], "started")
    await asyncio.sleep(0.05)  # past the "still active" tail
    start = await fly.post(base + "/start")
    assert start.status_code == 409
    assert "insufficient memory" in start.json()["error"]


async def test_g26_org_machine_quota_answers_422(fly: FlyClient) -> None:
    await fly.create_machine("g26", skip_launch=True)
    await fly.create_machine("g26b", skip_launch=True)
    await fly.post("/_sim/capacity", json={"org_max_machines": 2})
    over = await fly.post("/v1/apps/g26/machines", json={"config": {"image": "x"}})
    assert over.status_code == 422
    assert "machine limit" in over.json()["error"]
    await fly.post("/_sim/capacity", json={"org_max_machines": None})
    assert (await fly.create_machine("g26", skip_launch=True))["state"] == "created"


async def test_g25_a_full_volume_host_while_the_region_has_room_and_a_fork_onto_another_host(
    fly: FlyClient, flysim: FlySim
) -> None:
    """The stranded volume (issue 12): its host is full, other hosts of the region are not; a
    fork (`source_volume_id`, no size) lands on another host with a copy of the data."""
    volume = await fly.create_volume("g25c", region="lhr", name="data", size_gb=7)
    await fly.post(f"/_sim/volumes/{volume['id']}/contents", json={"path": "/d/notes", "content": "hi"})
    filled = await fly.post("/_sim/hosts/fill", json={"volume": volume["id"]})
    assert filled.status_code == 200
    mount = {"image": "x", "mounts": [{"volume": volume["id"], "path": "/d"}]}
    refused = await fly.post("/v1/apps/g25c/machines", json={"region": "lhr", "config": mount})
    assert refused.status_code == 412
    assert "insufficient resources to create new machine with existing volume" in refused.json()["error"]
    # The region has room elsewhere: a machine without the volume is placed.
    assert (await fly.create_machine("g25c", region="lhr"))["region"] == "lhr"
    hosts = (await fly.post("/_sim/capacity", json={})).json()["regions"]["lhr"]["hosts"]
    assert [h["full"] for h in hosts].count(True) == 1

    fork = await fly.post(
        "/v1/apps/g25c/volumes", json={"name": "data", "region": "lhr", "source_volume_id": volume["id"]}
    )
    assert fork.status_code == 200, fork.text
    forked = fork.json()
    assert forked["state"] == "hydrating" and forked["size_gb"] == 7 and forked["zone"] != volume["zone"]
    contents = await fly.get(f"/_sim/volumes/{forked['id']}/contents")
    assert contents.json() == {"/d/notes": "hi"}
    on_fork = {"image": "x", "mounts": [{"volume": forked["id"], "path": "/d"}]}
    machine = await fly.post("/v1/apps/g25c/machines", json={"region": "lhr", "config": on_fork})
    assert machine.status_code == 200, machine.text

    # Freed again: the old volume's host takes machines.
    await fly.post("/_sim/hosts/fill", json={"volume": volume["id"], "full": False})
    again = await fly.post("/v1/apps/g25c/machines", json={"region": "lhr", "config": mount})
    assert again.status_code == 200, again.text
