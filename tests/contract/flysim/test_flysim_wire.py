"""§11 A: wire shapes and basics."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx

from claw_operator.sim.flysim import FlySim

from .conftest import ContractChecker, FlyClient

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
SERVER_EMPTIES = ({}, None, "")


def semantically(config: dict[str, Any]) -> dict[str, Any]:
    """A config without the empties the server adds (how a reconciler should compare)."""
    return {key: value for key, value in config.items() if value not in SERVER_EMPTIES}


async def test_a1_server_adds_defaults_and_unknown_config_fields_round_trip(fly: FlyClient) -> None:
    posted = {
        "image": "nginx:1.27",
        "env": {"A": "1"},
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
        "metadata": {"claw.dev/uid": "u-1"},
        "x_future_field": {"nested": [1, 2, {"k": "v"}]},
    }
    machine = await fly.create_machine("a1", posted, skip_launch=True)
    got = (await fly.machine("a1", machine["id"]))["config"]
    assert got != posted, "the server adds defaults: GET differs from POST byte-for-byte"
    assert got["init"] == {} and got["dns"] == {}
    assert got["x_future_field"] == posted["x_future_field"]
    assert semantically(got) == semantically(posted)
    # Updating with exactly what GET returned changes nothing but the version.
    updated = (await fly.post(f"/v1/apps/a1/machines/{machine['id']}", json={"config": got})).json()
    assert updated["config"] == got


async def test_a2_ids_timestamps_and_events_use_fly_formats(fly: FlyClient) -> None:
    volume = await fly.create_volume("a2")
    assert re.fullmatch(r"vol_[0-9a-z]{16}", volume["id"])
    machine = await fly.create_machine(
        "a2", {"image": "nginx", "mounts": [{"volume": volume["id"], "path": "/data"}]}, lease_ttl=30
    )
    assert re.fullmatch(r"[0-9a-f]{14}", machine["id"])
    assert ULID.match(machine["instance_id"]) and machine["version"] == machine["instance_id"]
    assert re.fullmatch(r"[0-9a-f]{12}", machine["nonce"])
    assert "nonce" not in await fly.machine("a2", machine["id"]), "only the create answer carries it"
    assert machine["private_ip"].startswith("fdaa:")
    for stamp in (machine["created_at"], machine["updated_at"], volume["created_at"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    await fly.reaches("a2", machine["id"], "started")
    events = (await fly.get(f"/v1/apps/a2/machines/{machine['id']}/events")).json()
    assert [(e["type"], e["status"], e["source"]) for e in events] == [
        ("start", "started", "flyd"),
        ("launch", "created", "user"),
    ]
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    assert all(isinstance(s, int) and s > 10**12 for s in stamps), "milliseconds"
    lease = (await fly.post(f"/v1/apps/a2/machines/{machine['id']}/lease", params={"ttl": 30},
                            headers={"fly-machine-lease-nonce": machine["nonce"]})).json()  # fmt: skip
    assert re.fullmatch(r"[0-9a-f]{12}", lease["data"]["nonce"])


async def test_a3_auth_accepts_bearer_flyv1_and_both_and_rejects_others(
    flysim_factory: Any, contract: ContractChecker
) -> None:
    sim: FlySim = await flysim_factory(token="fm2_secret")
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "FlyV1 fm2_other"}):
            response = await http.get("/v1/apps/a3", headers=header)
            assert response.status_code == 401
            assert response.json() == {"error": "Authenticate: token validation error"}
        for value in ("Bearer fm2_secret", "FlyV1 fm2_secret", "Bearer FlyV1 fm2_secret"):
            response = await http.get("/v1/apps/a3", headers={"Authorization": value})
            assert response.status_code == 200, value
    # The default (no --token) accepts any token but still wants one.
    open_sim: FlySim = await flysim_factory()
    async with httpx.AsyncClient(base_url=open_sim.base_url) as http:
        assert (await http.get("/v1/apps/a3")).status_code == 401
        assert (
            await http.get("/v1/apps/a3", headers={"Authorization": "Bearer anything"})
        ).status_code == 200


async def test_a4_error_bodies_come_in_all_three_shapes(fly: FlyClient, flysim: FlySim) -> None:
    plain = await fly.get("/v1/apps/a4/machines/0123456789abcd")
    assert plain.status_code == 404
    assert plain.json() == {"error": "not_found: machine not found"}

    flysim.set_capacity("syd", max_machines=0)
    coded = await fly.post("/v1/apps/a4/machines", json={"region": "syd", "config": {"image": "nginx"}})
    assert coded.status_code == 412
    assert coded.json() == {"error": "no capacity available in syd", "status": "insufficient_capacity"}

    machine = await fly.create_machine("a4", skip_launch=True)
    lease = await fly.get(f"/v1/apps/a4/machines/{machine['id']}/lease")
    assert lease.status_code == 404
    assert lease.json() == {"status": "error", "message": "lease not found", "code": "not_found"}

    prefixed = await fly.post(f"/v1/apps/a4/machines/{machine['id']}/suspend")
    assert prefixed.json()["error"].startswith("failed_precondition: ")

    flysim.add_fault("/v1/apps/*/machines", method="GET", status=502, body="html")
    html = await fly.get("/v1/apps/a4/machines")
    assert html.status_code == 502 and html.headers["content-type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in html.text


async def test_a5_every_response_has_a_fly_request_id(fly: FlyClient, flysim: FlySim) -> None:
    flysim.add_fault("/v1/apps/a5/volumes", status=503)
    responses = [
        await fly.get("/v1/apps/a5"),
        await fly.get("/v1/apps/a5/machines/00000000000000"),
        await fly.post("/v1/apps/a5/machines", json={"config": {}}),
        await fly.get("/v1/apps/a5/volumes"),
        await fly.get("/v1/nothing/here"),
        await fly.get("/_sim/stats"),
    ]
    async with httpx.AsyncClient(base_url=flysim.base_url) as anonymous:
        responses.append(await anonymous.get("/v1/apps/a5"))
    assert [r.status_code for r in responses] == [200, 404, 400, 503, 404, 200, 401]
    ids = [r.headers["fly-request-id"] for r in responses]
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}-[a-z]{3}", i) for i in ids)
    assert len(set(ids)) == len(ids)


async def test_a4_malformed_requests_get_400s_not_crashes(fly: FlyClient) -> None:
    machine = await fly.create_machine("bad", skip_launch=True)
    base = f"/v1/apps/bad/machines/{machine['id']}"
    cases = [
        ("POST", "/v1/apps/bad/machines", {"content": b"{not json"}),
        ("POST", "/v1/apps/bad/machines", {"json": ["a", "list"]}),
        ("POST", "/v1/apps/bad/machines", {"json": {"config": "nginx"}}),
        ("POST", "/v1/apps/bad/machines", {"json": {"config": {"image": "x"}, "lease_ttl": "soon"}}),
        ("POST", "/v1/apps/bad/machines", {"json": {"config": {"image": "x", "guest": {"cpus": "many"}}}}),
        ("POST", "/v1/apps/bad/machines", {"json": {"config": {"image": "x", "size": "huge-cpu-9x"}}}),
        ("POST", "/v1/apps/bad/machines", {"json": {"config": {"image": "x", "mounts": "vol"}}}),
        ("POST", "/v1/apps/bad/machines", {"json": {"config": {"image": "x"}, "region": "mars"}}),
        ("POST", base + "/lease", {"json": {"ttl": "long"}}),
        ("POST", base + "/lease", {"params": {"ttl": "forever"}}),
        ("POST", base + "/stop", {"json": {"signal": ["SIGTERM"]}}),
        ("POST", base + "/signal", {"json": {"signal": "SIGNOPE"}}),
        ("POST", base + "/metadata/k", {"json": {"value": 5}}),
        ("GET", base + "/wait", {"params": {"timeout": "abc"}}),
        ("GET", base + "/wait", {"params": {"state": "exploded"}}),
        ("POST", "/v1/apps/bad/volumes", {"json": {"name": "v", "region": "iad", "size_gb": "big"}}),
        (
            "POST",
            "/v1/apps/bad/volumes",
            {"json": {"name": "v", "region": "iad", "compute": {"memory_mb": "x"}}},
        ),
        ("POST", "/v1/apps", {"json": {"name": "Not_Valid!"}}),
        ("POST", "/_sim/faults", {"json": {"path": "/v1/**", "count": "twice"}}),
        ("POST", "/_sim/faults", {"json": {"path": "/v1/**", "probability": "often"}}),
    ]
    for method, path, options in cases:
        response = await fly.request(method, path, **options)
        assert response.status_code == 400, (method, path, options, response.text)
        assert "error" in response.json() or "message" in response.json()
