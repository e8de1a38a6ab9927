"""Each typed error, produced by flysim over real HTTP (by an injected fault or by flysim's own
behaviour), with the right retryable/ambiguous flags and Fly's request id attached."""

from dataclasses import dataclass

import pytest

from claw_operator.fly import (
    CapacityScope,
    Conflict,
    ConflictReason,
    FlyClientConfig,
    FlyError,
    FlyMachinesClient,
    Forbidden,
    InsufficientCapacity,
    InvalidConfig,
    MachineConfig,
    Mount,
    NotFound,
    OwnerTag,
    Precondition,
    PreconditionReason,
    QuotaExceeded,
    RateLimited,
    RateLimits,
    RetryPolicy,
    Timeout,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from claw_operator.fly.leases import MachineLeases
from claw_operator.sim.flysim import FAST, FlySim
from tests.fixtures.flysim import FlySimFactory

from .fly_contract_support import APP, TOKEN, ClientFactory, started_machine

MACHINE_GLOB = "/v1/apps/*/machines/*"


def no_retries(make_client: ClientFactory, **overrides: object) -> FlyMachinesClient:
    return make_client(retry=RetryPolicy(attempts=1), **overrides)


def assert_from_fly(error: FlyError) -> None:
    assert error.request_id, "every error answered by Fly carries the fly-request-id"
    assert error.route is not None and "{app}" in error.route


@dataclass(frozen=True)
class FaultCase:
    reason: str
    status: int
    message: str | None
    kind: type[FlyError]
    retryable: bool
    body: str = "json"
    retry_after: float | None = None


FAULT_CASES = [
    FaultCase("unauthorized", 401, "Authenticate: token validation error", Unauthorized, False),
    FaultCase("not found", 404, "not_found: machine not found", NotFound, False),
    FaultCase("request timeout on a read", 408, None, Timeout, True),
    FaultCase(
        "volume claimed", 412, "failed_precondition: volume already claimed by machine x", Precondition, True
    ),
    FaultCase("region full", 412, "no capacity available in iad", InsufficientCapacity, False),
    FaultCase("invalid", 400, "invalid_argument: bad request", InvalidConfig, False),
    FaultCase("forbidden", 403, "app belongs to another organization", Forbidden, False),
    FaultCase(
        "concurrent update",
        409,
        "aborted: machine is replacing: concurrent update in progress",
        Conflict,
        True,
    ),
    FaultCase(
        "host full", 503, "unavailable: deploys to this host are temporarily disabled", Unavailable, True
    ),
    FaultCase("html proxy page", 502, None, Unavailable, True, body="html"),
    FaultCase("gateway timeout", 504, None, Timeout, True),
    FaultCase("rate limited", 429, None, RateLimited, True, retry_after=2),
    FaultCase("org quota", 422, "your organization has reached its machine limit", QuotaExceeded, False),
]


@pytest.mark.parametrize("case", FAULT_CASES, ids=[c.reason for c in FAULT_CASES])
async def test_injected_fault_becomes_its_typed_error(
    flysim: FlySim, make_client: ClientFactory, owner: OwnerTag, case: FaultCase
) -> None:
    client = no_retries(make_client)
    machine = await started_machine(client, owner)
    flysim.add_fault(
        MACHINE_GLOB,
        method="GET",
        mode="error",
        status=case.status,
        message=case.message,
        body=case.body,
        retry_after=case.retry_after,
    )
    with pytest.raises(FlyError) as raised:
        await client.get_machine(APP, machine.id)
    error = raised.value
    assert type(error) is case.kind
    assert error.retryable is case.retryable
    assert error.ambiguous is False  # a GET changes nothing
    assert error.status == case.status
    assert_from_fly(error)
    if isinstance(error, RateLimited):
        assert error.retry_after == 2.0


async def test_unauthorized_for_a_wrong_token(make_client: ClientFactory) -> None:
    with pytest.raises(Unauthorized) as raised:
        await no_retries(make_client, token="not-the-token").list_machines(APP)
    assert not raised.value.retryable
    assert "token validation error" in raised.value.message


@pytest.mark.parametrize("token", ["FlyV1 contract-token", "Bearer contract-token", "contract-token"])
async def test_token_forms_of_the_auth_rule_are_accepted(make_client: ClientFactory, token: str) -> None:
    assert await make_client(token=token).list_machines(APP) == []


async def test_not_found_for_an_unknown_machine(make_client: ClientFactory) -> None:
    with pytest.raises(NotFound) as raised:
        await no_retries(make_client).get_machine(APP, "0123456789abcd")
    assert not raised.value.retryable
    assert_from_fly(raised.value)


async def test_lease_held_is_a_retryable_conflict(client: FlyMachinesClient, owner: OwnerTag) -> None:
    machine = await started_machine(client, owner)
    async with MachineLeases(client).hold(APP, machine.id, ttl=30):
        with pytest.raises(Conflict) as raised:
            await client.stop_machine(APP, machine.id)  # no nonce while someone holds the lease
        assert raised.value.reason is ConflictReason.LEASE_HELD and raised.value.retryable
        with pytest.raises(Conflict) as second:
            await MachineLeases(client).acquire(APP, machine.id)
        assert second.value.reason is ConflictReason.LEASE_HELD
    await client.stop_machine(APP, machine.id)  # released on exit


async def test_version_mismatch_is_a_terminal_conflict(client: FlyMachinesClient, owner: OwnerTag) -> None:
    machine = await started_machine(client, owner)
    assert machine.config is not None
    with pytest.raises(Conflict) as raised:
        await client.update_machine(
            APP, machine.id, machine.config, current_version="01HEPA330HZ37A78TK080NAK1M"
        )
    assert raised.value.reason is ConflictReason.VERSION_MISMATCH and not raised.value.retryable


async def test_destroy_of_a_running_machine_is_a_terminal_precondition(
    client: FlyMachinesClient, owner: OwnerTag
) -> None:
    machine = await started_machine(client, owner)
    with pytest.raises(Precondition) as raised:
        await client.destroy_machine(APP, machine.id)
    assert raised.value.reason is PreconditionReason.DESTROY_RUNNING and not raised.value.retryable


async def test_start_while_settling_is_a_retryable_precondition(
    flysim_factory: FlySimFactory, owner: OwnerTag
) -> None:
    # A "still active" tail long enough that the refusal does not depend on how fast this
    # machine runs the test.
    sim = await flysim_factory(profile=FAST.with_overrides(still_active_tail=1.0), token=TOKEN)
    config = FlyClientConfig(token=TOKEN, base_url=sim.base_url, rate_limits=RateLimits(enabled=False))
    async with FlyMachinesClient(config) as client:
        machine = await started_machine(client, owner)
        await client.stop_machine_and_wait(APP, machine.id, timeout=10)
        # Right after `stopped`, Fly still refuses a start for a moment ("machine still active").
        with pytest.raises(Precondition) as raised:
            await client.start_machine(APP, machine.id)
        assert raised.value.reason is PreconditionReason.START_NOT_READY and raised.value.retryable
        result = await client.start_machine_and_wait(APP, machine.id, timeout=10)
        assert result.state == "started"


async def test_claimed_volume_is_a_retryable_precondition(client: FlyMachinesClient) -> None:
    first, second = OwnerTag("uid-a", "ns", "a"), OwnerTag("uid-b", "ns", "b")
    volume = await client.create_volume(APP, name="claw_shared", regions=["iad"], size_gb=1)
    mounted = MachineConfig(image="img", mounts=[Mount(volume=volume.id, path="/root")])
    await client.create_machine(APP, mounted, owner=first, region="iad")
    with pytest.raises(Precondition) as raised:
        await client.create_machine(APP, mounted, owner=second, region="iad")
    assert raised.value.reason is PreconditionReason.VOLUME_CLAIMED and raised.value.retryable
    with pytest.raises(Precondition) as bound:
        await client.delete_volume(APP, volume.id)
    assert bound.value.reason is PreconditionReason.VOLUME_BOUND and bound.value.retryable


async def test_full_region_is_insufficient_capacity(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    flysim.set_capacity("iad", max_machines=0)
    with pytest.raises(InsufficientCapacity) as raised:
        await client.create_machine(APP, MachineConfig(image="img"), owner=owner, region="iad")
    assert raised.value.scope is CapacityScope.REGION and not raised.value.retryable
    assert raised.value.code == "insufficient_capacity"


async def test_org_limit_is_quota_exceeded(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    flysim.set_org_quota(0)
    with pytest.raises(QuotaExceeded) as raised:
        await client.create_machine(APP, MachineConfig(image="img"), owner=owner, region="iad")
    assert not raised.value.retryable


async def test_wait_deadline_is_a_wait_timeout(client: FlyMachinesClient, owner: OwnerTag) -> None:
    machine = await client.create_machine(
        APP, MachineConfig(image="registry.fly.io/claw:sim-boot-stuck"), owner=owner, region="iad"
    )
    with pytest.raises(WaitTimeout) as raised:
        await client.wait_for_state(APP, machine.id, "started", timeout=1)
    assert raised.value.current_state == "created"
    assert raised.value.retryable and not raised.value.ambiguous


async def test_silent_success_on_a_mutation_is_an_ambiguous_timeout(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    machine = await started_machine(client, owner)
    flysim.add_fault(f"/v1/apps/*/machines/{machine.id}/stop", method="POST", mode="silent_success")
    with pytest.raises(Timeout) as raised:
        await client.stop_machine(APP, machine.id)
    assert raised.value.ambiguous and raised.value.retryable and raised.value.status == 408
    # It did happen: the machine stops although the answer said it failed.
    fresh = await client.get_machine(APP, machine.id)
    await client.wait_for_state(APP, machine.id, "stopped", instance_id=fresh.current_version, timeout=10)


async def test_connection_reset_on_a_mutation_is_ambiguous_unavailable(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    machine = await started_machine(client, owner)
    flysim.add_fault(f"/v1/apps/*/machines/{machine.id}/stop", method="POST", mode="reset")
    with pytest.raises(Unavailable) as raised:
        await client.stop_machine(APP, machine.id)
    assert raised.value.ambiguous and raised.value.retryable
    assert raised.value.status is None  # no answer at all


async def test_hang_past_the_client_timeout_is_an_ambiguous_timeout(
    flysim: FlySim, make_client: ClientFactory, owner: OwnerTag
) -> None:
    client = make_client(timeout=0.5)
    machine = await started_machine(client, owner)
    flysim.add_fault(f"/v1/apps/*/machines/{machine.id}/start", method="POST", mode="hang")
    with pytest.raises(Timeout) as raised:
        await client.start_machine(APP, machine.id)
    assert raised.value.ambiguous and raised.value.status is None


async def test_full_volume_host_is_insufficient_capacity_of_the_volume_host(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    flysim.set_capacity("iad", host_cpus=2, host_memory_mb=1024)
    volume = await client.create_volume(APP, name=owner.volume_name(), regions=["iad"], size_gb=1)
    big = MachineConfig.model_validate(
        {
            "image": "img",
            "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 2048},
            "mounts": [{"volume": volume.id, "path": "/root"}],
        }
    )
    with pytest.raises(InsufficientCapacity) as raised:
        await client.create_machine(APP, big, owner=owner, region="iad")
    # The lifecycle's cue to fork or recreate the volume rather than try another region.
    assert raised.value.scope is CapacityScope.VOLUME_HOST and not raised.value.retryable


async def test_growing_on_a_full_host_is_insufficient_capacity_of_the_host(
    flysim: FlySim, client: FlyMachinesClient
) -> None:
    flysim.set_capacity("iad", hosts=1, host_cpus=2, host_memory_mb=512)
    small = MachineConfig.model_validate(
        {"image": "img", "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}}
    )
    first = await client.create_machine(APP, small, owner=OwnerTag("uid-1", "ns", "a"), region="iad")
    second = await client.create_machine(APP, small, owner=OwnerTag("uid-2", "ns", "b"), region="iad")
    for machine in (first, second):
        await client.wait_for_state(APP, machine.id, "started", timeout=10)
    assert first.config is not None and first.config.guest is not None
    bigger = first.config.model_copy(
        update={"guest": first.config.guest.model_copy(update={"memory_mb": 512})}
    )
    with pytest.raises(InsufficientCapacity) as raised:
        await client.update_machine(APP, first.id, bigger)
    assert raised.value.scope is CapacityScope.HOST and raised.value.status == 409
