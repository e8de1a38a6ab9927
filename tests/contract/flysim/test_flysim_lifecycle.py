"""§11 E: lifecycle semantics."""

from __future__ import annotations

import asyncio

from claw_operator.sim.flysim import FlySim, ManualClock, WorldSettings
from tests.fixtures.flysim import FlySimFactory

from .conftest import ContractChecker, FlyClient, eventually


async def test_e16_update_replaces_config_with_a_new_version(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    # Time moves only when told: the second update arrives while the first is still replacing,
    # however long the requests take on a loaded machine.
    flysim, clock = manual
    fly = manual_fly
    machine = await fly.create_machine("e16", {"image": "nginx:1", "env": {"A": "1"}, "metadata": {"k": "v"}})
    base = f"/v1/apps/e16/machines/{machine['id']}"
    clock.advance(1.0)
    assert (await fly.machine("e16", machine["id"]))["state"] == "started"

    response = await fly.post(base, json={"config": {"image": "nginx:2"}})
    updated = response.json()
    assert response.status_code == 200 and updated["state"] == "replacing"
    assert updated["instance_id"] != machine["instance_id"]
    assert "env" not in updated["config"] and "metadata" not in updated["config"], "no partial update"
    concurrent = await fly.post(base, json={"config": {"image": "nginx:3"}})
    assert concurrent.status_code == 409
    assert concurrent.json()["error"] == "aborted: machine is replacing: concurrent update in progress"
    clock.advance(1.0)
    assert (await fly.machine("e16", machine["id"]))["state"] == "started"
    versions = (await fly.get(base + "/versions")).json()
    assert [v["version"] for v in versions] == [updated["instance_id"], machine["instance_id"]]
    assert versions[0]["user_config"]["image"] == "nginx:2"
    assert any(s["state"] == "replacing" for s in flysim.timeline(machine["id"]))

    mismatch = await fly.post(
        base, json={"config": {"image": "nginx:2"}, "current_version": machine["instance_id"]}
    )
    assert mismatch.status_code == 409
    for field, value in (("name", "renamed"), ("region", "lhr")):
        refused = await fly.post(base, json={"config": {"image": "nginx:2"}, field: value})
        assert refused.status_code == 400 and field in refused.json()["error"]

    skip = (await fly.post(base, json={"config": {"image": "nginx:4"}, "skip_launch": True})).json()
    assert skip["state"] == "replacing"
    clock.advance(1.0)
    assert (await fly.machine("e16", machine["id"]))["state"] == "stopped"

    # A stopped machine's update leaves the new version stopped (Fly since 2026) [O].
    stopped_update = (await fly.post(base, json={"config": {"image": "nginx:5"}})).json()
    assert stopped_update["instance_id"] != skip["instance_id"]
    clock.advance(1.0)
    assert (await fly.machine("e16", machine["id"]))["state"] == "stopped"
    clock.advance(1.0)
    assert (await fly.machine("e16", machine["id"]))["state"] == "stopped"


async def test_e16_update_starts_stopped_machine_behind_a_flag(
    flysim_factory: FlySimFactory, contract: ContractChecker
) -> None:
    sim = await flysim_factory(settings=WorldSettings(update_starts_stopped_machine=True))
    fly = FlyClient(sim.base_url, contract)
    try:
        machine = await fly.create_machine("e16b", skip_launch=True)
        await fly.post(f"/v1/apps/e16b/machines/{machine['id']}", json={"config": {"image": "nginx:2"}})
        await fly.reaches("e16b", machine["id"], "started")
    finally:
        await fly.aclose()


async def test_e17_destroy_rules_and_the_destroyed_window(fly: FlyClient) -> None:
    machine = await fly.create_machine("e17")
    base = f"/v1/apps/e17/machines/{machine['id']}"
    await fly.reaches("e17", machine["id"], "started")
    refused = await fly.delete(base)
    assert refused.status_code == 412
    assert refused.json() == {
        "error": "failed_precondition: unable to destroy machine, "
        "not currently stopped, suspended, failed or created"
    }
    forced = await fly.delete(base, params={"force": "true"})
    assert forced.status_code == 200 and forced.json() == {"ok": True}
    destroyed = await fly.reaches("e17", machine["id"], "destroyed")
    assert destroyed["id"] == machine["id"]
    for method, path, body in (
        ("POST", base, {"config": {"image": "x"}}),
        ("POST", base + "/start", None),
        ("POST", base + "/stop", None),
        ("DELETE", base + "?force=true", None),
    ):
        gone = await fly.request(method, path, json=body)
        assert gone.status_code == 404 and gone.json() == {"error": "not_found: machine not found"}
    listed = [m["id"] for m in (await fly.get("/v1/apps/e17/machines")).json()]
    assert machine["id"] not in listed
    with_deleted = (await fly.get("/v1/apps/e17/machines", params={"include_deleted": "true"})).json()
    assert [m["state"] for m in with_deleted if m["id"] == machine["id"]] == ["destroyed"]

    async def not_found() -> bool:
        return (await fly.get(base)).status_code == 404

    await eventually(not_found)
    still_listed = (await fly.get("/v1/apps/e17/machines", params={"include_deleted": "1"})).json()
    assert machine["id"] in [m["id"] for m in still_listed]

    kill = await fly.create_machine("e17")
    assert (
        await fly.delete(f"/v1/apps/e17/machines/{kill['id']}", params={"kill": "true"})
    ).status_code == 200
    await fly.reaches("e17", kill["id"], "destroyed")


async def test_e18_exits_follow_restart_policy_and_boot_failures_fail(fly: FlyClient, flysim: FlySim) -> None:
    async def exited(policy: dict[str, object] | None, code: int, **extra: object) -> str:
        config: dict[str, object] = {"image": "nginx", **extra}
        if policy is not None:
            config["restart"] = policy
        machine = await fly.create_machine("e18", config)
        await fly.reaches("e18", machine["id"], "started")
        response = await fly.post(f"/_sim/machines/{machine['id']}/exit", json={"exit_code": code})
        assert response.status_code == 200
        return str(machine["id"])

    stays = await exited({"policy": "no"}, 1)
    await asyncio.sleep(0.1)
    assert (await fly.machine("e18", stays))["state"] == "stopped"
    exit_event = (await fly.get(f"/v1/apps/e18/machines/{stays}/events")).json()[0]
    assert exit_event["type"] == "exit" and exit_event["source"] == "flyd"
    assert exit_event["request"]["exit_event"]["exit_code"] == 1

    always = await exited({"policy": "always"}, 0)
    await eventually(lambda: _has_restarted(flysim, always))
    await fly.reaches("e18", always, "started")

    on_failure = await exited(None, 3)  # default policy on-failure [D]
    await eventually(lambda: _has_restarted(flysim, on_failure))
    clean_exit = await exited(None, 0)
    await asyncio.sleep(0.1)
    assert (await fly.machine("e18", clean_exit))["state"] == "stopped"

    doomed = await exited({"policy": "no"}, 0, auto_destroy=True)
    await fly.reaches("e18", doomed, "destroyed")

    broken = await fly.create_machine("e18", {"image": "claw:sim-boot-fail"})
    await fly.reaches("e18", broken["id"], "failed")
    base = f"/v1/apps/e18/machines/{broken['id']}"
    restarted = await fly.post(base + "/start")
    assert restarted.status_code == 200 and restarted.json()["previous_state"] == "failed"

    async def failed_twice() -> bool:
        states = [s["state"] for s in flysim.timeline(broken["id"])]
        return states.count("failed") == 2 and states[-1] == "failed"

    await eventually(failed_twice)
    # The way out: a good image (the update leaves it stopped), then start.
    await fly.post(base, json={"config": {"image": "claw:good"}})
    await fly.reaches("e18", broken["id"], "stopped")
    await eventually(lambda: _start_until_ok(fly, base))
    await fly.reaches("e18", broken["id"], "started")

    selfstop = await fly.create_machine("e18", {"image": "claw:sim-exit"})
    await fly.reaches("e18", selfstop["id"], "started")
    await fly.reaches("e18", selfstop["id"], "stopped")


async def _has_restarted(sim: FlySim, machine_id: str) -> bool:
    states = [s["state"] for s in sim.timeline(machine_id)]
    return states[-3:] == ["stopped", "starting", "started"]


async def _start_until_ok(fly: FlyClient, base: str) -> bool:
    response = await fly.post(base + "/start")
    return response.status_code == 200 or (await fly.get(base)).json()["state"] in ("starting", "started")


async def test_e19_autostop_autostart_and_an_unreachable_host(fly: FlyClient) -> None:
    services = [{"protocol": "tcp", "internal_port": 8080, "autostop": "stop", "autostart": True}]
    machine = await fly.create_machine("e19", {"image": "nginx", "services": services})
    await fly.reaches("e19", machine["id"], "started")
    assert (await fly.post(f"/_sim/machines/{machine['id']}/autostop")).status_code == 200
    await fly.reaches("e19", machine["id"], "stopped")
    stop_event = (await fly.get(f"/v1/apps/e19/machines/{machine['id']}/events")).json()[0]
    assert (stop_event["type"], stop_event["source"]) == ("stop", "flyd")
    await asyncio.sleep(0.05)
    assert (await fly.post(f"/_sim/machines/{machine['id']}/autostart")).status_code == 200
    await fly.reaches("e19", machine["id"], "started")

    plain = await fly.create_machine("e19")
    await fly.reaches("e19", plain["id"], "started")
    assert (await fly.post(f"/_sim/machines/{plain['id']}/autostop")).status_code == 412

    base = f"/v1/apps/e19/machines/{plain['id']}"
    await fly.post(f"/_sim/machines/{plain['id']}/host", json={"status": "unreachable"})
    seen = await fly.machine("e19", plain["id"])
    assert seen["host_status"] == "unreachable" and "incomplete_config" in seen and "config" not in seen
    stop = await fly.post(base + "/stop")
    assert stop.status_code == 503 and stop.json()["error"].startswith("unavailable: ")
    assert (await fly.delete(base, params={"force": "true"})).status_code == 200
    await fly.reaches("e19", plain["id"], "destroying")
    await asyncio.sleep(0.1)
    assert (await fly.machine("e19", plain["id"]))["state"] == "destroying"
    await fly.post(f"/_sim/machines/{plain['id']}/host", json={"status": "ok"})
    await fly.reaches("e19", plain["id"], "destroyed")


async def test_e20_events_are_newest_first_with_sources_and_a_limit(fly: FlyClient) -> None:
    machine = await fly.create_machine("e20")
    base = f"/v1/apps/e20/machines/{machine['id']}"
    await fly.reaches("e20", machine["id"], "started")
    await fly.post(base + "/stop")
    await fly.reaches("e20", machine["id"], "stopped")
    await asyncio.sleep(0.03)
    await eventually(lambda: _start_until_ok(fly, base))
    await fly.reaches("e20", machine["id"], "started")
    events = (await fly.get(base + "/events")).json()
    assert [(e["type"], e["source"]) for e in events] == [
        ("start", "flyd"),
        ("stop", "user"),
        ("start", "flyd"),
        ("launch", "user"),
    ]
    assert [e["type"] for e in (await fly.get(base + "/events", params={"limit": 1})).json()] == ["start"]
    for _ in range(30):
        await fly.post(base + "/metadata/k", json={"value": "v"})
        await fly.post(base + "/cordon")
    assert len((await fly.get(base + "/events", params={"limit": 100})).json()) <= 50
    embedded = (await fly.machine("e20", machine["id"]))["events"]
    assert embedded[0]["id"] == events[0]["id"]
