"""Opt-in: the flysim contract scenarios against the REAL Fly Machines API.

Set FLY_API_TOKEN, FLY_API_URL (e.g. https://api.machines.dev) and FLY_TEST_APP (an existing
app the token may create and destroy machines and volumes in). Optional: FLY_TEST_REGIONS
(comma list, default `iad,ord`), FLY_TEST_IMAGE (default `flyio/hellofly:latest`). Every
machine and volume created here is destroyed before the test ends. Fault-injection scenarios
(silent success, stale lists, resets) exist only in flysim and stay in the flysim suite.
"""

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from claw_operator.fly import FlyClientConfig, FlyMachinesClient, OwnerTag, Unauthorized

from .fly_contract_support import (
    machine_config,
    scenario_instance_lifecycle,
    scenario_limiter_absorbs_a_read_burst,
    scenario_typed_errors_without_faults,
)

REQUIRED = ("FLY_API_TOKEN", "FLY_API_URL", "FLY_TEST_APP")
MISSING = [name for name in REQUIRED if not os.environ.get(name)]

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=(
        f"opt-in suite against the real Fly API: set {', '.join(MISSING)} "
        "(it creates and destroys real machines and volumes in FLY_TEST_APP)"
    ),
)


@pytest.fixture
async def real_client() -> AsyncIterator[FlyMachinesClient]:
    async with FlyMachinesClient(FlyClientConfig.from_env()) as client:
        yield client


@pytest.fixture
def app() -> str:
    return os.environ["FLY_TEST_APP"]


@pytest.fixture
def regions() -> list[str]:
    return [r.strip() for r in os.environ.get("FLY_TEST_REGIONS", "iad,ord").split(",") if r.strip()]


@pytest.fixture
def image() -> str:
    return os.environ.get("FLY_TEST_IMAGE", "flyio/hellofly:latest")


def fresh_owner() -> OwnerTag:
    return OwnerTag(uid=str(uuid.uuid4()), namespace="claw-operator-contract", name="real-api")


async def test_real_instance_lifecycle(
    real_client: FlyMachinesClient, app: str, regions: list[str], image: str
) -> None:
    await scenario_instance_lifecycle(real_client, app, fresh_owner(), regions, image)


async def test_real_typed_errors(real_client: FlyMachinesClient, app: str) -> None:
    await scenario_typed_errors_without_faults(real_client, app)


async def test_real_unauthorized(app: str) -> None:
    config = FlyClientConfig.from_env(token="not-a-valid-fly-token")
    async with FlyMachinesClient(config) as client:
        with pytest.raises(Unauthorized):
            await client.list_machines(app)


async def test_real_limiter_absorbs_a_read_burst(
    real_client: FlyMachinesClient, app: str, regions: list[str], image: str
) -> None:
    owner = fresh_owner()
    machine = await real_client.create_machine(
        app, machine_config(image), owner=owner, region=regions[0], skip_launch=True
    )
    try:
        await scenario_limiter_absorbs_a_read_burst(real_client, app, machine.id)
    finally:
        await real_client.destroy_machine(app, machine.id, force=True)
