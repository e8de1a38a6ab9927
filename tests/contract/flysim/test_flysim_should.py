"""§11 I (SHOULD) items flysim covers: secrets with versions, bulk metadata, app names."""

from __future__ import annotations

from .conftest import FlyClient


async def test_i31_secrets_bump_a_version_that_machines_can_require(fly: FlyClient) -> None:
    assert (await fly.get("/v1/apps/i31/secrets")).json() == []
    set_one = await fly.post("/v1/apps/i31/secrets/API_KEY", json={"value": "s3cret"})
    assert set_one.json() == {"version": 1}
    listed = (await fly.get("/v1/apps/i31/secrets")).json()
    assert [s["name"] for s in listed] == ["API_KEY"] and "value" not in listed[0]
    bulk = (await fly.post("/v1/apps/i31/secrets", json={"values": {"B": "2", "API_KEY": None}})).json()
    assert bulk["version"] == 2 and [s["name"] for s in bulk["secrets"]] == ["B"]

    too_new = await fly.post(
        "/v1/apps/i31/machines", json={"config": {"image": "x"}, "min_secrets_version": 3, "region": "iad"}
    )
    assert too_new.status_code == 412 and "min_secrets_version" in too_new.json()["error"]
    machine = await fly.create_machine("i31", min_secrets_version=2, skip_launch=True)
    update = await fly.post(
        f"/v1/apps/i31/machines/{machine['id']}", json={"config": {"image": "y"}, "min_secrets_version": 9}
    )
    assert update.status_code == 412
    assert (await fly.delete("/v1/apps/i31/secrets/B")).json() == {"version": 3}
    assert (await fly.delete("/v1/apps/i31/secrets/B")).status_code == 404


async def test_i30_bulk_metadata_with_machine_version(fly: FlyClient) -> None:
    machine = await fly.create_machine(
        "i30", {"image": "x", "metadata": {"a": "1", "b": "2"}}, skip_launch=True
    )
    base = f"/v1/apps/i30/machines/{machine['id']}/metadata"
    changed = await fly.put(
        base, json={"metadata": {"a": None, "b": "", "c": "3"}, "machine_version": machine["instance_id"]}
    )
    assert changed.status_code == 204
    assert (await fly.get(base)).json() == {"c": "3"}
    stale = await fly.request("PATCH", base, json={"metadata": {"d": "4"}, "machine_version": "01STALE"})
    assert stale.status_code == 412


async def test_i29_app_names_are_validated_and_unique(fly: FlyClient) -> None:
    assert (await fly.post("/v1/apps", json={"name": "claws", "org_slug": "personal"})).status_code == 201
    again = await fly.post("/v1/apps", json={"app_name": "claws", "org_slug": "personal"})
    assert again.status_code == 422
    assert again.json() == {"error": "Validation failed: Name has already been taken", "status": "name_taken"}
    assert (await fly.post("/v1/apps", json={"name": "-bad-", "org_slug": "personal"})).status_code == 400
    app = (await fly.get("/v1/apps/claws")).json()
    assert app["organization"]["slug"] == "personal" and app["status"] == "deployed"
