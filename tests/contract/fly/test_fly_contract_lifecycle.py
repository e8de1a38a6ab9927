"""The helpers the lifecycle calls, end to end against flysim over real HTTP. The same scenarios
run against the real API in test_fly_real_api.py."""

import json
import logging

import pytest

from claw_operator.fly import (
    CapacityScope,
    FlyMachinesClient,
    InsufficientCapacity,
    NotFound,
    OwnerTag,
    Precondition,
    RateLimits,
    RetryPolicy,
    Unauthorized,
)
from claw_operator.sim.flysim import FlySim

from .fly_contract_support import (
    APP,
    TOKEN,
    ClientFactory,
    machine_config,
    scenario_instance_lifecycle,
    scenario_limiter_absorbs_a_read_burst,
    scenario_typed_errors_without_faults,
)


async def test_instance_lifecycle(client: FlyMachinesClient, owner: OwnerTag) -> None:
    await scenario_instance_lifecycle(client, APP, owner, ["iad", "ord"], "registry.fly.io/claw:1")


async def test_volume_region_fallback_skips_full_regions(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    flysim.set_capacity("iad", max_volumes=0)
    flysim.set_capacity("ord", max_volumes=0)
    volume = await client.create_volume(
        APP, name=owner.volume_name(), regions=["iad", "ord", "lhr"], size_gb=1
    )
    assert volume.region == "lhr"
    with pytest.raises(InsufficientCapacity) as raised:
        await client.create_volume(APP, name=owner.volume_name(), regions=["iad", "ord"], size_gb=1)
    assert raised.value.scope is CapacityScope.REGION
    assert [v["region"] for v in flysim.list_volumes(APP)] == ["lhr"]


async def test_listing_by_metadata_finds_only_the_owners_machines(client: FlyMachinesClient) -> None:
    mine, other = OwnerTag("uid-mine", "ns", "a"), OwnerTag("uid-other", "ns", "b")
    created = await client.create_machine(APP, machine_config(), owner=mine, region="iad")
    await client.create_machine(APP, machine_config(), owner=other, region="iad")
    assert [m.id for m in await client.list_machines(APP, metadata=mine.selector())] == [created.id]
    assert [m.id for m in await client.find_owned_machines(APP, mine)] == [created.id]
    assert len(await client.list_machines(APP)) == 2


async def test_destroyed_machine_is_not_found_by_its_owner(
    client: FlyMachinesClient, owner: OwnerTag
) -> None:
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    assert await client.destroy_machine(APP, machine.id, force=True) is True
    await client.wait_for_state(APP, machine.id, "destroyed", timeout=10)
    # Still visible with include_deleted (and by GET for a short window), but gone for recovery.
    listed = await client.list_machines(APP, metadata=owner.selector(), include_deleted=True)
    assert [m.state for m in listed] == ["destroyed"]
    assert await client.find_owned_machines(APP, owner) == []


async def test_waiting_on_a_replaced_version_fails(client: FlyMachinesClient, owner: OwnerTag) -> None:
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    await client.wait_for_state(APP, machine.id, "started", timeout=10)
    assert machine.config is not None
    await client.update_machine(APP, machine.id, machine.config.model_copy(update={"env": {"A": "1"}}))
    with pytest.raises(Precondition) as raised:
        await client.wait_for_state(
            APP, machine.id, "stopped", instance_id=machine.current_version, timeout=5
        )
    assert "replaced" in raised.value.message


async def test_typed_errors_without_faults(client: FlyMachinesClient) -> None:
    await scenario_typed_errors_without_faults(client, APP)


async def test_limiter_absorbs_a_read_burst(
    flysim: FlySim, make_client: ClientFactory, owner: OwnerTag
) -> None:
    machine = await make_client().create_machine(APP, machine_config(), owner=owner, region="iad")
    flysim.rate_limit = True
    client = make_client(rate_limits=RateLimits(), retry=RetryPolicy(attempts=1))
    await scenario_limiter_absorbs_a_read_burst(client, APP, machine.id)
    assert flysim.stats()["rate_limited"] == 0


async def test_not_found_flicker_after_create_is_absorbed_when_asked(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    flysim.add_fault("/v1/apps/*/machines/*", method="GET", mode="not_found_flicker", count=2, window=60)
    with pytest.raises(NotFound):
        await client.get_machine(APP, machine.id)  # without a grace, a 404 is a 404
    fetched = await client.get_machine(APP, machine.id, not_found_grace=5)
    assert fetched.id == machine.id
    flysim.add_fault("/v1/apps/*/machines/*/wait", method="GET", mode="not_found_flicker", count=1, window=60)
    result = await client.wait_for_state(APP, machine.id, "started", timeout=10, not_found_grace=5)
    assert result.state == "started"


async def test_token_is_never_logged_over_real_http(
    flysim: FlySim, make_client: ClientFactory, owner: OwnerTag, caplog: pytest.LogCaptureFixture
) -> None:
    # Every logger: ours, aiohttp (the pool: it logs nothing of a client's exchanges), stamina.
    caplog.set_level(logging.DEBUG)
    client = make_client()
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    flysim.add_fault("/v1/apps/*/machines/*", method="GET", mode="error", status=503, count=1)
    await client.get_machine(APP, machine.id)  # one failure, one retry
    with pytest.raises(Unauthorized):
        await make_client(token=f"{TOKEN}-wrong").list_machines(APP)
    assert any(r.name == "claw_operator.fly" for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + json.dumps(record.__dict__, default=str)
        assert TOKEN not in text


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
@pytest.mark.parametrize("legacy_update_starts", [False, True], ids=["fly-2026", "older-fly"])
async def test_update_and_start_runs_the_new_version(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag, running: bool, legacy_update_starts: bool
) -> None:
    flysim.world.settings.update_starts_stopped_machine = legacy_update_starts
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    await client.wait_for_state(APP, machine.id, "started", timeout=10)
    if not running:
        await client.stop_machine_and_wait(APP, machine.id, timeout=10)
    assert machine.config is not None
    updated = await client.update_and_start(
        APP, machine.id, machine.config.model_copy(update={"image": "registry.fly.io/claw:2"}), timeout=20
    )
    now = await client.get_machine(APP, machine.id)
    assert now.state == "started"
    assert now.current_version == updated.current_version != machine.current_version
    assert now.config is not None and now.config.image == "registry.fly.io/claw:2"


async def test_start_and_wait_leaves_a_started_machine_alone(
    client: FlyMachinesClient, owner: OwnerTag
) -> None:
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    await client.wait_for_state(APP, machine.id, "started", timeout=10)
    result = await client.start_machine_and_wait(APP, machine.id, timeout=2)
    assert result.state == "started" and result.version == machine.current_version
