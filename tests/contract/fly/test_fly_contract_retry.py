"""Retries against flysim over real HTTP: Retry-After honoured, safe calls repeated on
transient failures, unsafe ones not, and the client-side limiter keeping flysim's rate limiter
from ever answering 429."""

import asyncio

import pytest

from claw_operator.fly import (
    FlyError,
    FlyMachinesClient,
    Machine,
    MachineConfig,
    OwnerTag,
    RateLimited,
    RateLimits,
    RetryPolicy,
    Unavailable,
)
from claw_operator.fly.leases import MachineLeases
from claw_operator.sim.flysim import FlySim

from .fly_contract_support import APP, ClientFactory, RecordingTransport, machine_config

MACHINE_GLOB = "/v1/apps/*/machines/*"


async def test_429_retry_waits_at_least_retry_after(
    flysim: FlySim, make_client: ClientFactory, owner: OwnerTag
) -> None:
    transport = RecordingTransport()
    client = make_client(transport=transport)
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    flysim.add_fault(MACHINE_GLOB, method="GET", mode="error", status=429, retry_after=1)
    transport.sent.clear()
    fetched = await client.get_machine(APP, machine.id)
    assert fetched.id == machine.id
    gets = [s for s in transport.sent if s.method == "GET"]
    assert len(gets) == 2
    # A lower bound only: a sleep never returns early, so this cannot flake on a slow machine.
    assert gets[1].at - gets[0].at >= 1.0


async def test_safe_reads_are_retried_through_5xx_and_resets(
    flysim: FlySim, make_client: ClientFactory, owner: OwnerTag
) -> None:
    transport = RecordingTransport()
    client = make_client(transport=transport)
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    flysim.add_fault(MACHINE_GLOB, method="GET", mode="error", status=503, count=1)
    flysim.add_fault(MACHINE_GLOB, method="GET", mode="error", status=502, body="html", count=1)
    flysim.add_fault(MACHINE_GLOB, method="GET", mode="reset", count=1)
    transport.sent.clear()
    assert (await client.get_machine(APP, machine.id)).id == machine.id
    assert transport.count("GET", f"/machines/{machine.id}") == 4


async def test_retries_are_bounded(flysim: FlySim, make_client: ClientFactory) -> None:
    transport = RecordingTransport()
    client = make_client(transport=transport, retry=RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02))
    flysim.add_fault("/v1/apps/*/machines", method="GET", mode="error", status=500, count=None)
    with pytest.raises(Unavailable):
        await client.list_machines(APP)
    assert transport.count("GET", "/machines") == 3


async def test_leased_update_after_silent_success_is_resent_with_the_same_nonce(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    await client.wait_for_state(APP, machine.id, "started", timeout=10)
    flysim.add_fault(f"/v1/apps/*/machines/{machine.id}", method="POST", mode="silent_success")

    def add_env(current: Machine) -> MachineConfig:
        assert current.config is not None
        return current.config.model_copy(update={"env": {"CLAW_MODE": "repaired"}})

    updated = await MachineLeases(client).update_machine(APP, machine.id, add_env)
    assert updated.config is not None and updated.config.env == {"CLAW_MODE": "repaired"}
    assert updated.metadata == owner.metadata(), "the full config (metadata included) was sent back"
    assert updated.instance_id != machine.instance_id
    lease_released = [
        r for r in flysim.stats()["requests"] if r["method"] == "DELETE" and r["route"].endswith("/lease")
    ]
    assert lease_released and lease_released[0]["status"] == 200


async def test_destroy_after_silent_success_is_resent_and_reports_done(
    flysim: FlySim, client: FlyMachinesClient, owner: OwnerTag
) -> None:
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad")
    flysim.add_fault(f"/v1/apps/*/machines/{machine.id}", method="DELETE", mode="silent_success")
    await client.destroy_machine(APP, machine.id, force=True)
    result = await client.wait_for_state(APP, machine.id, "destroyed", timeout=10)
    assert result.state == "destroyed"


async def test_limiter_keeps_flysim_from_rate_limiting_200_parallel_starts(
    flysim: FlySim, make_client: ClientFactory
) -> None:
    setup = make_client()
    owners = [OwnerTag(uid=f"uid-{i:02d}", namespace="ns", name=f"claw-{i}") for i in range(20)]
    machines = await asyncio.gather(
        *(
            setup.create_machine(APP, machine_config(), owner=o, region="iad", skip_launch=True)
            for o in owners
        )
    )
    flysim.rate_limit = True  # Fly's documented limits from here on

    client = make_client(rate_limits=RateLimits(), retry=RetryPolicy(attempts=1))
    outcomes = await asyncio.gather(
        *(client.start_machine(APP, m.id) for m in machines for _ in range(10)), return_exceptions=True
    )
    assert len(outcomes) == 200
    unexpected = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, FlyError)]
    assert unexpected == []
    assert not any(isinstance(o, RateLimited) for o in outcomes)
    assert flysim.stats()["rate_limited"] == 0
    starts = [r for r in flysim.stats()["requests"] if r["route"] == "/v1/apps/{app}/machines/{id}/start"]
    assert sum(r["count"] for r in starts) == 200, "every start reached flysim"
    assert all(r["status"] != 429 for r in starts)


async def test_without_the_limiter_flysim_does_rate_limit(flysim: FlySim, make_client: ClientFactory) -> None:
    # The control for the test above: the same burst with the limiter off is refused.
    setup = make_client()
    machine = await setup.create_machine(
        APP, machine_config(), owner=OwnerTag("uid-x", "ns", "x"), region="iad", skip_launch=True
    )
    flysim.rate_limit = True
    client = make_client(rate_limits=RateLimits(enabled=False), retry=RetryPolicy(attempts=1))
    outcomes = await asyncio.gather(
        *(client.start_machine(APP, machine.id) for _ in range(10)), return_exceptions=True
    )
    limited = [o for o in outcomes if isinstance(o, RateLimited)]
    assert limited, "flysim enforces Fly's limits"
    assert all(o.retry_after is not None and o.retry_after >= 1 for o in limited)
