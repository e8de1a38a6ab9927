"""Creates are never duplicated: ambiguous failures are resolved by looking (over real HTTP
against flysim's silent-success, stale-list and empty-list faults)."""

import pytest

from claw_operator.fly import AmbiguousCreate, FlyMachinesClient, OwnerTag, Timeout
from claw_operator.fly.tags import METADATA_UID_KEY
from claw_operator.sim.flysim import FlySim

from .fly_contract_support import APP, ClientFactory, RecordingTransport, machine_config

CREATE_GLOB = "/v1/apps/*/machines"


def live_machines(flysim: FlySim, owner: OwnerTag) -> list[dict[str, object]]:
    return [
        m
        for m in flysim.list_machines(APP)
        if m["config"]["metadata"].get(METADATA_UID_KEY) == owner.uid  # type: ignore[index]
    ]


def create_posts(flysim: FlySim) -> int:
    return sum(
        r["count"]
        for r in flysim.stats()["requests"]
        if r["method"] == "POST" and r["route"] == "/v1/apps/{app}/machines"
    )


@pytest.mark.parametrize(("status", "body"), [(408, "json"), (502, "html"), (503, "json")])
async def test_silent_success_create_returns_the_one_machine(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag, status: int, body: str
) -> None:
    flysim.add_fault(CREATE_GLOB, method="POST", mode="silent_success", status=status, body=body)
    machine = await client.create_machine(
        APP, machine_config(), owner=owner, name=owner.machine_name(), region="iad"
    )
    existing = live_machines(flysim, owner)
    assert [m["id"] for m in existing] == [machine.id], "exactly one machine, and the client returns it"
    assert create_posts(flysim) == 1
    assert machine.metadata[METADATA_UID_KEY] == owner.uid


@pytest.mark.parametrize("list_mode", ["stale_list", "empty_list"])
async def test_stale_or_empty_list_after_an_ambiguous_create_never_creates_again(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag, list_mode: str
) -> None:
    flysim.add_fault(CREATE_GLOB, method="POST", mode="silent_success")
    # Every list of the resolution is stale (hides what was created in the last minute) or empty.
    list_fault = flysim.add_fault(CREATE_GLOB, method="GET", mode=list_mode, count=None, window=60)
    with pytest.raises(AmbiguousCreate) as raised:
        await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    assert raised.value.retryable and raised.value.ambiguous
    assert isinstance(raised.value.cause, Timeout)
    assert create_posts(flysim) == 1, "no second create"
    assert len(live_machines(flysim, owner)) == 1
    # Once the list catches up, the owner's machine is found instead of being created again.
    flysim.remove_fault(list_fault)
    found = await client.find_owned_machines(APP, owner)
    assert [m.id for m in found] == [m["id"] for m in live_machines(flysim, owner)]


async def test_list_that_catches_up_during_resolution_returns_the_machine(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    flysim.add_fault(CREATE_GLOB, method="POST", mode="silent_success")
    flysim.add_fault(CREATE_GLOB, method="GET", mode="empty_list", count=2)
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    assert [m["id"] for m in live_machines(flysim, owner)] == [machine.id]
    assert create_posts(flysim) == 1


async def test_uncommitted_failure_raises_ambiguous_and_creates_nothing(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    flysim.add_fault(CREATE_GLOB, method="POST", mode="error", status=503)
    with pytest.raises(AmbiguousCreate):
        await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    assert live_machines(flysim, owner) == []
    assert create_posts(flysim) == 1
    # The caller's next attempt (after looking) creates it.
    assert await client.find_owned_machines(APP, owner) == []
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    assert [m["id"] for m in live_machines(flysim, owner)] == [machine.id]


async def test_connection_reset_on_create_is_never_resent(
    flysim: FlySim, make_client: ClientFactory, owner: OwnerTag
) -> None:
    # The connection drops after the request was sent: the client cannot know whether Fly acted,
    # so it looks instead of guessing by sending the create again.
    transport = RecordingTransport()
    client = make_client(transport=transport)
    flysim.add_fault(CREATE_GLOB, method="POST", mode="reset")
    with pytest.raises(AmbiguousCreate):
        await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    assert transport.count("POST", "/machines") == 1
    assert transport.count("GET", "/machines") == client.config.create_resolve_attempts
    assert live_machines(flysim, owner) == []


async def test_a_name_taken_create_adopts_the_owners_machine(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    first = await client.create_machine(
        APP, machine_config(), owner=owner, name=owner.machine_name(), region="iad"
    )
    again = await client.create_machine(
        APP, machine_config(), owner=owner, name=owner.machine_name(), region="iad"
    )
    assert again.id == first.id
    assert len(live_machines(flysim, owner)) == 1


async def test_create_after_429_is_sent_again_once_allowed(
    flysim: FlySim, make_client: ClientFactory, owner: OwnerTag
) -> None:
    transport = RecordingTransport()
    client = make_client(transport=transport)
    flysim.add_fault(CREATE_GLOB, method="POST", mode="error", status=429, retry_after=0)
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    assert [m["id"] for m in live_machines(flysim, owner)] == [machine.id]
    assert transport.count("POST", "/machines") == 2


async def test_silent_success_volume_create_returns_the_one_volume(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    flysim.add_fault("/v1/apps/*/volumes", method="POST", mode="silent_success")
    volume = await client.create_volume(APP, name=owner.volume_name(), regions=["iad", "ord"], size_gb=1)
    volumes = flysim.list_volumes(APP)
    assert [v["id"] for v in volumes] == [volume.id]
    assert volume.region == "iad", "no other region is tried after an ambiguous failure"


async def test_create_again_on_a_stale_list_after_a_clean_create_makes_no_second_machine(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    # The create succeeded; the caller's next look is stale/empty and it creates again. The
    # default name (from the UID) is unique per app on Fly, so the second create is refused and
    # resolved by looking: no second machine, whatever the list says.
    first = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    flysim.add_fault(CREATE_GLOB, method="GET", mode="empty_list", count=1)
    assert await client.find_owned_machines(APP, owner) == []  # the misleading look
    again = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    assert again.id == first.id
    assert [m["id"] for m in live_machines(flysim, owner)] == [first.id]
