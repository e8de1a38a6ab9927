"""§11 D: leases."""

from __future__ import annotations

import re

from claw_operator.sim.flysim import FlySim, ManualClock

from .conftest import ContractChecker, FlyClient

NONCE = "fly-machine-lease-nonce"
HELD = re.compile(r"^machine ID [0-9a-f]{14} lease currently held by \S+@tokens\.fly\.io, expires at \S+Z$")


async def test_d14_lease_acquire_conflict_refresh_release(
    fly: FlyClient, flysim: FlySim, contract: ContractChecker
) -> None:
    machine = await fly.create_machine("d14", skip_launch=True)
    base = f"/v1/apps/d14/machines/{machine['id']}/lease"
    acquired = await fly.post(base, params={"ttl": 30})
    assert acquired.status_code == 200
    envelope = acquired.json()
    assert envelope["status"] == "success"
    lease = envelope["data"]
    assert re.fullmatch(r"[0-9a-f]{12}", lease["nonce"])
    assert isinstance(lease["expires_at"], int) and lease["owner"].endswith("@tokens.fly.io")
    assert lease["version"] == machine["instance_id"]

    rival = FlyClient(flysim.base_url, contract, token="someone-else")
    try:
        conflict = await rival.post(base, json={"ttl": 30, "description": "rival"})
        assert conflict.status_code == 409
        body = conflict.json()
        assert body["status"] == "error" and HELD.match(body["message"])
        assert body["data"]["owner"] == lease["owner"] and "nonce" not in body["data"]
        shown = (await rival.get(base)).json()["data"]
        assert shown["owner"] == lease["owner"] and "nonce" not in shown
    finally:
        await rival.aclose()

    refreshed = await fly.post(base, params={"ttl": 120}, headers={NONCE: lease["nonce"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["data"]["nonce"] == lease["nonce"]
    assert refreshed.json()["data"]["expires_at"] > lease["expires_at"]

    missing = await fly.delete(base)
    assert missing.status_code == 400
    wrong = await fly.delete(base, headers={NONCE: "000000000000"})
    assert wrong.status_code == 409
    released = await fly.delete(base, headers={NONCE: lease["nonce"]})
    assert released.status_code == 200
    again = await fly.delete(base, headers={NONCE: lease["nonce"]})
    assert again.status_code == 404 and "lease not found" in again.json()["message"]
    assert (await fly.get(base)).status_code == 404


async def test_d15_lease_gates_mutations_but_not_metadata_or_create(fly: FlyClient) -> None:
    created = await fly.create_machine("d15", lease_ttl=60)
    nonce = created["nonce"]
    assert re.fullmatch(r"[0-9a-f]{12}", nonce), "lease_ttl on create returns the nonce"
    machine_id = created["id"]
    await fly.reaches("d15", machine_id, "started")
    base = f"/v1/apps/d15/machines/{machine_id}"
    config = (await fly.machine("d15", machine_id))["config"]

    gated = [
        ("POST", base, {"json": {"config": config}}),
        ("POST", base + "/start", {}),
        ("POST", base + "/stop", {}),
        ("POST", base + "/restart", {}),
        ("POST", base + "/suspend", {}),
        ("POST", base + "/cordon", {}),
        ("POST", base + "/uncordon", {}),
        ("POST", base + "/exec", {"json": {"command": ["true"]}}),
        ("DELETE", base + "?force=true", {}),
    ]
    for method, path, extra in gated:
        for headers in ({}, {NONCE: "ffffffffffff"}):
            response = await fly.request(method, path, headers=headers, **extra)
            assert response.status_code == 409, (method, path, response.text)
            assert HELD.match(response.json()["error"]), response.text

    ungated = await fly.post(base + "/metadata/owner", json={"value": "me"})
    assert ungated.status_code == 204
    assert (await fly.get(base + "/metadata")).json() == {"owner": "me"}
    assert (await fly.create_machine("d15", skip_launch=True))["state"] == "created"

    with_nonce = await fly.post(base + "/cordon", headers={NONCE: nonce})
    assert with_nonce.status_code == 200
    stop = await fly.post(base + "/stop", headers={NONCE: nonce})
    assert stop.status_code == 200
    await fly.reaches("d15", machine_id, "stopped")
    destroy = await fly.delete(base, headers={NONCE: nonce})
    assert destroy.status_code == 200


async def test_d15_expired_lease_no_longer_gates(
    manual: tuple[FlySim, ManualClock], manual_fly: FlyClient
) -> None:
    _, clock = manual
    machine = await manual_fly.create_machine("d15b", skip_launch=True)
    base = f"/v1/apps/d15b/machines/{machine['id']}"
    await manual_fly.post(base + "/lease", params={"ttl": 1})
    assert (await manual_fly.post(base + "/cordon")).status_code == 409
    clock.advance(1.01)
    assert (await manual_fly.post(base + "/cordon")).status_code == 200
