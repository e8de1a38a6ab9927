"""§11 H: fault injection and the rate limiter."""

from __future__ import annotations

import httpx
import pytest

from claw_operator.sim.flysim import FlySim, ManualClock
from tests.fixtures.flysim import FlySimFactory

from .conftest import ContractChecker, FlyClient


async def test_h27_5xx_faults_answer_json_or_html_for_count_then_stop(fly: FlyClient) -> None:
    added = await fly.post(
        "/_sim/faults",
        json={"method": "POST", "path": "/v1/apps/*/machines", "mode": "error", "status": 503, "count": 2},
    )
    assert added.status_code == 201 and added.json()["id"]
    for _ in range(2):
        failed = await fly.post("/v1/apps/h27/machines", json={"config": {"image": "x"}})
        assert failed.status_code == 503 and failed.json()["error"].startswith("unavailable")
    assert (await fly.get("/v1/apps/h27/machines")).json() == [], "error mode commits nothing"
    assert (await fly.post("/v1/apps/h27/machines", json={"config": {"image": "x"}})).status_code == 200

    for status in (500, 502, 504):
        await fly.post("/_sim/faults", json={"path": "/v1/apps/h27", "status": status, "body": "html"})
        html = await fly.get("/v1/apps/h27")
        assert html.status_code == status and html.headers["content-type"].startswith("text/html")
    assert (await fly.get("/v1/apps/h27")).status_code == 200


async def test_h27_429_with_and_without_retry_after(fly: FlyClient, flysim: FlySim) -> None:
    flysim.add_fault("/v1/apps/*", status=429, retry_after=7)
    limited = await fly.get("/v1/apps/h27b")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    flysim.add_fault("/v1/apps/*", status=429)
    bare = await fly.get("/v1/apps/h27b")
    assert bare.status_code == 429 and "Retry-After" not in bare.headers


async def test_h27_silent_success_commits_then_answers_408(fly: FlyClient, flysim: FlySim) -> None:
    flysim.add_fault("/v1/apps/*/machines", method="POST", mode="silent_success")
    ambiguous = await fly.post(
        "/v1/apps/h27c/machines", json={"config": {"image": "x", "metadata": {"claw.dev/uid": "u1"}}}
    )
    assert ambiguous.status_code == 408
    found = (await fly.get("/v1/apps/h27c/machines", params={"metadata.claw.dev/uid": "u1"})).json()
    assert len(found) == 1, "the create happened exactly once"

    flysim.add_fault("/v1/apps/*/machines", method="POST", mode="error", status=408)
    timed_out = await fly.post(
        "/v1/apps/h27c/machines", json={"config": {"image": "x", "metadata": {"claw.dev/uid": "u2"}}}
    )
    assert timed_out.status_code == 408
    assert (await fly.get("/v1/apps/h27c/machines", params={"metadata.claw.dev/uid": "u2"})).json() == []

    machine_id = found[0]["id"]
    await fly.reaches("h27c", machine_id, "started")
    flysim.add_fault(
        f"/v1/apps/h27c/machines/{machine_id}", method="DELETE", mode="silent_success", status=504
    )
    destroy = await fly.delete(f"/v1/apps/h27c/machines/{machine_id}", params={"force": "true"})
    assert destroy.status_code == 504
    await fly.reaches("h27c", machine_id, "destroyed")


async def test_h27_connection_reset_and_hang(fly: FlyClient, flysim: FlySim) -> None:
    flysim.add_fault("/v1/apps/*/machines", method="GET", mode="reset")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await fly.get("/v1/apps/h27d/machines")
    flysim.add_fault("/v1/apps/*/machines", method="GET", mode="hang")
    with pytest.raises(httpx.ReadTimeout):
        await fly.get("/v1/apps/h27d/machines", timeout=0.3)
    assert (await fly.get("/v1/apps/h27d/machines")).status_code == 200


async def test_h27_not_found_flicker_only_for_new_machines(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    sim, clock = manual
    old = await manual_fly.create_machine("h27e", skip_launch=True)
    clock.advance(10)
    sim.add_fault("/v1/apps/*/machines/*", method="GET", mode="not_found_flicker", count=None, window=5)
    new = await manual_fly.create_machine("h27e", skip_launch=True)
    assert (await manual_fly.get(f"/v1/apps/h27e/machines/{new['id']}")).status_code == 404
    assert (await manual_fly.get(f"/v1/apps/h27e/machines/{old['id']}")).status_code == 200
    clock.advance(5.1)
    assert (await manual_fly.get(f"/v1/apps/h27e/machines/{new['id']}")).status_code == 200


async def test_h27_not_found_flicker_on_a_volume_answers_one_404_then_the_volume(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    sim, clock = manual
    old = await manual_fly.create_volume("h27v")
    clock.advance(10)
    sim.add_fault("/v1/apps/*/volumes/*", method="GET", mode="not_found_flicker", count=1, window=5)
    new = await manual_fly.create_volume("h27v")
    assert (await manual_fly.get(f"/v1/apps/h27v/volumes/{old['id']}")).status_code == 200, "too old"
    flickered = await manual_fly.get(f"/v1/apps/h27v/volumes/{new['id']}")
    assert flickered.status_code == 404 and flickered.json()["error"].startswith("not_found")
    assert (await manual_fly.get(f"/v1/apps/h27v/volumes/{new['id']}")).status_code == 200, "count=1"

    # A large window reaches any volume: a single 404 for one that has long existed.
    sim.add_fault("/v1/apps/*/volumes/*", method="GET", mode="not_found_flicker", count=1, window=1e9)
    assert (await manual_fly.get(f"/v1/apps/h27v/volumes/{old['id']}")).status_code == 404
    assert (await manual_fly.get(f"/v1/apps/h27v/volumes/{old['id']}")).status_code == 200
    assert len((await manual_fly.get("/v1/apps/h27v/volumes")).json()) == 2, "nothing was removed"


async def test_world_snapshot_shows_machines_mounts_and_volumes_whatever_the_faults(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    sim, _ = manual
    volume = await manual_fly.create_volume("h27w")
    machine = await manual_fly.create_machine(
        "h27w",
        skip_launch=True,
        config={
            "image": "x",
            "metadata": {"claw_instance_uid": "u1"},
            "mounts": [{"volume": volume["id"], "path": "/data"}],
        },
    )
    sim.add_fault("/v1/apps/*/machines", method="GET", mode="empty_list", count=None)
    sim.add_fault("/v1/apps/*/volumes", method="GET", mode="error", status=503, count=None)
    world = (await manual_fly.get("/_sim/world")).json()
    [seen] = world["machines"]
    assert seen["id"] == machine["id"] and seen["volume_id"] == volume["id"]
    assert seen["metadata"] == {"claw_instance_uid": "u1"} and seen["image"] == "x"
    [held] = world["volumes"]
    assert (held["id"], held["name"], held["size_gb"]) == (volume["id"], volume["name"], volume["size_gb"])
    assert world["time"] == pytest.approx(sim.world.now())


async def test_h27_stale_and_empty_lists(manual: tuple[FlySim, ManualClock], manual_fly: FlyClient) -> None:
    sim, clock = manual
    old = await manual_fly.create_machine("h27f", skip_launch=True)
    clock.advance(10)
    new = await manual_fly.create_machine("h27f", skip_launch=True)
    sim.add_fault("/v1/apps/*/machines", method="GET", mode="stale_list", window=5)
    assert [m["id"] for m in (await manual_fly.get("/v1/apps/h27f/machines")).json()] == [old["id"]]
    sim.add_fault("/v1/apps/*/machines", method="GET", mode="empty_list")
    assert (await manual_fly.get("/v1/apps/h27f/machines")).json() == []
    listed = {m["id"] for m in (await manual_fly.get("/v1/apps/h27f/machines")).json()}
    assert listed == {old["id"], new["id"]}, "each fault fired once"
    sim.add_fault("/v1/apps/*/volumes", method="GET", mode="empty_list")
    await manual_fly.create_volume("h27f")
    assert (await manual_fly.get("/v1/apps/h27f/volumes")).json() == []


async def test_h27_probability_and_removal_through_the_control_api(
    flysim_factory: FlySimFactory, contract: ContractChecker
) -> None:
    async def failures(seed: int) -> list[int]:
        sim = await flysim_factory(seed=seed)
        fly = FlyClient(sim.base_url, contract)
        try:
            await fly.post(
                "/_sim/faults", json={"path": "/v1/apps/*", "status": 500, "count": None, "probability": 0.5}
            )
            return [(await fly.get("/v1/apps/p")).status_code for _ in range(40)]
        finally:
            await fly.aclose()

    first, again = await failures(1), await failures(1)
    assert first == again, "fault draws are seeded"
    assert 5 < first.count(500) < 35 and first.count(200) > 0

    sim = await flysim_factory()
    fly = FlyClient(sim.base_url, contract)
    try:
        fault = (await fly.post("/_sim/faults", json={"path": "/v1/apps/*", "count": None})).json()
        assert (await fly.get("/_sim/faults")).json()[0]["id"] == fault["id"]
        assert (await fly.get("/v1/apps/q")).status_code == 503
        assert (await fly.delete(f"/_sim/faults/{fault['id']}")).status_code == 200
        assert (await fly.get("/v1/apps/q")).status_code == 200
        await fly.post("/_sim/faults", json={"path": "/v1/apps/*", "count": None})
        assert (await fly.delete("/_sim/faults")).status_code == 200
        assert (await fly.get("/v1/apps/q")).status_code == 200
        bad = await fly.post("/_sim/faults", json={"path": "/v1/apps/*", "mode": "explode"})
        assert bad.status_code == 400
    finally:
        await fly.aclose()


async def test_h28_rate_limiter_follows_the_documented_buckets(contract: ContractChecker) -> None:
    clock = ManualClock()
    sim = FlySim(rate_limit=True, clock=clock)
    await sim.start()
    fly = FlyClient(sim.base_url, contract)
    try:
        created = [
            await fly.post("/v1/apps/h28/machines", json={"config": {"image": "x"}, "skip_launch": True})
            for _ in range(4)
        ]
        assert [r.status_code for r in created] == [200, 200, 200, 429], "1 rps, burst 3 per action per app"
        assert created[3].headers["Retry-After"] == "1"
        clock.advance(1.0)
        assert (await fly.post("/v1/apps/h28/machines", json={"config": {"image": "x"}})).status_code == 200

        machine_id = created[0].json()["id"]
        gets = [await fly.get(f"/v1/apps/h28/machines/{machine_id}") for _ in range(11)]
        assert [r.status_code for r in gets].count(429) == 1 and gets[-1].status_code == 429, (
            "5 rps, burst 10"
        )
        other_id = created[1].json()["id"]
        assert (await fly.get(f"/v1/apps/h28/machines/{other_id}")).status_code == 200, (
            "buckets are per machine"
        )
        clock.advance(0.2)
        assert (await fly.get(f"/v1/apps/h28/machines/{machine_id}")).status_code == 200

        stats = (await fly.get("/_sim/stats")).json()
        assert stats["rate_limited"] == 2

        # App deletions: 100 a minute across the organization.
        for index in range(101):
            clock.advance(1.0)  # app create is an action too: 1/s
            created_app = await fly.post("/v1/apps", json={"name": f"gone-{index}", "org_slug": "personal"})
            assert created_app.status_code == 201
        deletes = [(await fly.delete(f"/v1/apps/gone-{index}")).status_code for index in range(101)]
        assert deletes.count(202) == 100 and deletes[-1] == 429
        assert {"method": "POST", "route": "/v1/apps/{app}/machines", "status": 429, "count": 1} in stats[
            "requests"
        ]
    finally:
        await fly.aclose()
        await sim.stop()


async def test_h28_rate_limiter_is_off_by_default(fly: FlyClient) -> None:
    machine = await fly.create_machine("h28b", skip_launch=True)
    statuses = {(await fly.get(f"/v1/apps/h28b/machines/{machine['id']}")).status_code for _ in range(30)}
    assert statuses == {200}
