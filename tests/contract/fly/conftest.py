"""Fixtures of the Fly client's contract tests: flysim in-process on the test's event loop,
reached over real HTTP (a TCP socket on 127.0.0.1), and clients pointed at it."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from claw_operator.fly import FlyClientConfig, FlyMachinesClient, OwnerTag, RateLimits, RetryPolicy
from claw_operator.sim.flysim import FlySim
from tests.fixtures.flysim import FlySimFactory, flysim_factory  # noqa: F401

from .fly_contract_support import TOKEN, ClientFactory


@pytest.fixture
async def flysim(flysim_factory: FlySimFactory) -> FlySim:  # noqa: F811
    """flysim's own fixture factory, with a required token (so a wrong one is a 401)."""
    return await flysim_factory(profile="fast", seed=7, token=TOKEN)


@pytest.fixture
async def make_client(flysim: FlySim) -> AsyncIterator[ClientFactory]:
    """`make_client(**config_overrides)`: a client of this flysim; closed after the test.
    Defaults: Fly's rate limits off (flysim's are off too unless a test turns them on), quick
    retries, quick ambiguous-create resolution."""
    clients: list[FlyMachinesClient] = []

    def factory(transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> FlyMachinesClient:
        settings: dict[str, Any] = {
            "token": TOKEN,
            "base_url": flysim.base_url,
            "rate_limits": RateLimits(enabled=False),
            "retry": RetryPolicy(attempts=4, wait_initial=0.02, wait_max=0.1, wait_jitter=0.02),
            "create_resolve_attempts": 3,
            "create_resolve_delay": 0.05,
        }
        settings.update(overrides)
        client = FlyMachinesClient(FlyClientConfig(**settings), transport=transport)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: ClientFactory) -> FlyMachinesClient:
    return make_client()


@pytest.fixture
def owner() -> OwnerTag:
    return OwnerTag(uid="0b6c1c8e-5f7e-4c8a-9d43-2f1e5a7b9c10", namespace="team-a", name="claw-1")
