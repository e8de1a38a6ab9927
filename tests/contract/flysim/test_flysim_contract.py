"""Every endpoint of Fly's spec, answered by flysim and validated against the spec; plus the
control API, the thread runner and the `claw-operator flysim` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from claw_operator.sim.flysim import FlySim, FlySimThread, run_in_thread

from .conftest import SPEC_PATH, ContractChecker, FlyClient, corrected_spec, eventually

REPO = Path(__file__).resolve().parents[3]


async def test_every_spec_operation_answers_and_validates(flysim: FlySim) -> None:
    checker = ContractChecker()  # a fresh tally for this tour only
    fly = FlyClient(flysim.base_url, checker)
    try:
        assert (
            await fly.post("/v1/apps", json={"app_name": "tour", "org_slug": "personal"})
        ).status_code == 201
        taken = await fly.post("/v1/apps", json={"name": "tour", "org_slug": "personal"})
        assert taken.status_code == 422 and taken.json()["status"] == "name_taken"
        assert (await fly.get("/v1/apps", params={"org_slug": "personal"})).json()["total_apps"] == 1
        assert (await fly.get("/v1/apps/tour")).status_code == 200
        volume = await fly.create_volume("tour")
        vpath = f"/v1/apps/tour/volumes/{volume['id']}"
        assert (await fly.get("/v1/apps/tour/volumes")).status_code == 200
        assert (await fly.get(vpath)).status_code == 200
        assert (await fly.post(vpath, json={"snapshot_retention": 10})).json()["snapshot_retention"] == 10
        assert (await fly.put(vpath + "/extend", json={"size_gb": 2})).status_code == 200
        assert (await fly.post(vpath + "/snapshots")).status_code == 200
        assert len((await fly.get(vpath + "/snapshots")).json()) == 1

        machine = await fly.create_machine(
            "tour", {"image": "x", "mounts": [{"volume": volume["id"], "path": "/d"}]}
        )
        m = f"/v1/apps/tour/machines/{machine['id']}"
        assert (await fly.get("/v1/apps/tour/machines", params={"region": "iad"})).status_code == 200
        assert (await fly.get(m + "/wait", params={"state": "started", "timeout": 5})).status_code == 200
        assert (await fly.get(m)).status_code == 200
        assert (await fly.get(m + "/events")).status_code == 200
        assert (await fly.get(m + "/versions")).status_code == 200
        assert (await fly.get(m + "/metadata")).status_code == 200
        assert (await fly.post(m + "/metadata/k", json={"value": "v"})).status_code == 204
        assert (await fly.delete(m + "/metadata/k")).status_code == 204
        lease = (await fly.post(m + "/lease", json={"ttl": 30})).json()["data"]
        nonce = {"fly-machine-lease-nonce": lease["nonce"]}
        assert (await fly.get(m + "/lease", headers=nonce)).json()["data"]["nonce"] == lease["nonce"]
        assert (await fly.post(m + "/cordon", headers=nonce)).status_code == 200
        assert (await fly.post(m + "/uncordon", headers=nonce)).status_code == 200
        assert (await fly.post(m + "/exec", json={"command": ["true"]}, headers=nonce)).json()[
            "exit_code"
        ] == 0
        assert (await fly.post(m + "/signal", json={"signal": "SIGHUP"})).status_code == 200
        await fly.reaches("tour", machine["id"], "started")
        assert (await fly.post(m + "/restart", params={"timeout": "5s"}, headers=nonce)).status_code == 200

        async def restarted() -> bool:
            states = [step["state"] for step in flysim.timeline(machine["id"])]
            return states[-2:] == ["restarting", "started"]

        await eventually(restarted)
        assert (await fly.post(m + "/suspend", headers=nonce)).status_code == 200
        await fly.reaches("tour", machine["id"], "suspended")
        assert (await fly.post(m + "/start", headers=nonce)).json()["previous_state"] == "suspended"
        await fly.reaches("tour", machine["id"], "started")
        stop = await fly.post(m + "/stop", json={"signal": "SIGTERM", "timeout": "30s"}, headers=nonce)
        assert stop.status_code == 200
        assert (await fly.post(m + "/stop", json={"timeout": "soon"}, headers=nonce)).status_code == 400
        await fly.reaches("tour", machine["id"], "stopped")
        updated = await fly.post(
            m,
            json={"config": {"image": "y", "mounts": [{"volume": volume["id"], "path": "/d"}]}},
            headers=nonce,
        )
        assert updated.status_code == 200
        assert (await fly.delete(m + "/lease", headers=nonce)).status_code == 200
        await fly.reaches("tour", machine["id"], "stopped")
        assert (await fly.delete(m)).status_code == 200
        await fly.reaches("tour", machine["id"], "destroyed")

        async def volume_deleted() -> bool:
            return (await fly.delete(vpath)).status_code == 200

        await eventually(volume_deleted)
        assert (await fly.get("/v1/platform/regions")).status_code == 200
        assert (await fly.delete("/v1/apps/tour", params={"force": "true"})).status_code == 202
        assert (await fly.get("/v1/apps", params={"org_slug": "personal"})).json()["total_apps"] == 0
    finally:
        await fly.aclose()

    spec = corrected_spec()
    operations = {
        (method.upper(), "/v1" + path)
        for path, item in spec["paths"].items()
        for method in item
        if path not in ("/apps/{app_name}/machines/{machine_id}/ps",)  # process listing: not simulated
    }
    validated_ops = set()
    for key in list(checker.validated) + list(checker.status_only):
        method, path, _status = key.split(" ")
        for op_method, template in operations:
            if op_method == method and _matches(template, path):
                validated_ops.add((op_method, template))
    assert operations - validated_ops == set(), "every spec operation validated at least once"
    assert checker.validated, "bodies were validated, not only statuses"
    assert SPEC_PATH.exists()


def _matches(template: str, path: str) -> bool:
    want, have = template.strip("/").split("/"), path.strip("/").split("/")
    return len(want) == len(have) and all(
        w.startswith("{") or w == h for w, h in zip(want, have, strict=True)
    )


async def test_control_api_timeline_of_a_volume(fly: FlyClient) -> None:
    volume = await fly.create_volume("ctl")
    timeline = (await fly.get("/_sim/timeline", params={"volume": volume["id"]})).json()
    assert [t["state"] for t in timeline] == ["created"]
    assert 0 <= timeline[0]["elapsed"] < 0.05 and timeline[0]["at"].endswith("Z")
    assert (await fly.delete(f"/v1/apps/ctl/volumes/{volume['id']}")).status_code == 200
    timeline = (await fly.get("/_sim/timeline", params={"volume": volume["id"]})).json()
    # The purge goes on by itself (pending_destroy follows soon, sooner on a busy machine).
    assert [t["state"] for t in timeline][:2] == ["created", "scheduling_destroy"]
    assert (await fly.get("/_sim/timeline", params={"volume": "vol_nope"})).status_code == 404


async def test_control_api_stats_timeline_capacity_and_reset(fly: FlyClient) -> None:
    machine = await fly.create_machine("ctl")
    await fly.reaches("ctl", machine["id"], "started")
    stats = (await fly.get("/_sim/stats")).json()
    assert stats["machines"] == {"started": 1} and stats["rate_limited"] == 0
    assert {"method": "POST", "route": "/v1/apps/{app}/machines", "status": 200, "count": 1} in stats[
        "requests"
    ]
    timeline = (await fly.get("/_sim/timeline", params={"machine": machine["id"]})).json()
    assert [t["state"] for t in timeline] == ["created", "starting", "started"]
    assert 0 <= timeline[0]["elapsed"] < 0.05 and timeline[-1]["at"].endswith("Z")
    assert (await fly.get("/_sim/timeline")).status_code == 400
    capacity = (await fly.post("/_sim/capacity", json={"region": "nrt", "max_machines": 3})).json()
    assert capacity["regions"]["nrt"]["max_machines"] == 3
    assert (await fly.post("/_sim/reset")).json() == {"ok": True}
    assert (await fly.get("/v1/apps/ctl/machines")).json() == []
    assert (await fly.get("/_sim/stats")).json()["machines"] == {}


def test_thread_runner_serves_from_its_own_loop() -> None:
    with run_in_thread(profile="fast", seed=3) as sim:
        assert isinstance(sim, FlySimThread)
        with httpx.Client(base_url=sim.base_url, headers={"Authorization": "Bearer t"}) as http:
            created = http.post("/v1/apps/thr/machines", json={"config": {"image": "x"}, "region": "iad"})
            assert created.status_code == 200
            machine_id = created.json()["id"]
            waited = http.get(
                f"/v1/apps/thr/machines/{machine_id}/wait", params={"state": "started", "timeout": 5}
            )
            assert waited.json()["state"] == "started"
            fault = sim.add_fault("/v1/apps/*", status=502)
            assert http.get("/v1/apps/thr").status_code == 502
            assert sim.remove_fault(fault) is False, "a count-1 fault is gone once spent"
            assert [m["id"] for m in sim.list_machines("thr")] == [machine_id]
            assert sim.get_machine(machine_id)["state"] == "started"  # type: ignore[index]
            assert sim.stats()["machines"] == {"started": 1}
            assert sim.timeline(machine_id)[-1]["state"] == "started"
            sim.reset()
            assert sim.list_machines() == []


def test_flysim_fixture_in_a_thread(flysim_thread: FlySimThread) -> None:
    with httpx.Client(base_url=flysim_thread.base_url, headers={"Authorization": "Bearer t"}) as http:
        assert http.get("/v1/apps/fx").status_code == 200


def test_cli_serves_prints_its_url_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "claw_operator.cli", "flysim", "--port", "0", "--profile", "fast",
               "--seed", "5", "--token", "secret", "--rate-limit", "--no-auto-apps"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "flysim serving the Fly Machines API at http://127.0.0.1:" in first
        base_url = process.stdout.readline().strip().split("=", 1)[1]
        with httpx.Client(base_url=base_url) as http:
            assert http.get("/v1/apps/x", headers={"Authorization": "Bearer other"}).status_code == 401
            assert http.get("/v1/apps/x", headers={"Authorization": "Bearer secret"}).status_code == 404
            created = http.post(
                "/v1/apps",
                json={"name": "x", "org_slug": "personal"},
                headers={"Authorization": "FlyV1 secret"},
            )
            assert created.status_code == 201
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
