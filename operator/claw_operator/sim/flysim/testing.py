"""pytest fixtures for flysim. Register them in a conftest with
`from claw_operator.sim.flysim.testing import flysim, flysim_factory, flysim_thread  # noqa: F401`.

- `flysim`: a started `FlySim` (profile `fast`, seed 0, any token) in the test's event loop;
  `flysim.base_url` is where it listens.
- `flysim_factory`: `await flysim_factory(token="t", rate_limit=True, ...)` for other options;
  every simulator it makes is stopped after the test.
- `flysim_thread`: a started `FlySimThread` (its own loop in a background thread), for tests
  whose code under test runs its own loop (kopf).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from .runner import FlySimThread
from .sim import FlySim

FlySimFactory = Callable[..., Awaitable[FlySim]]


@pytest_asyncio.fixture
async def flysim_factory() -> AsyncIterator[FlySimFactory]:
    started: list[FlySim] = []

    async def make(**options: Any) -> FlySim:
        options.setdefault("profile", "fast")
        sim = FlySim(**options)
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest_asyncio.fixture
async def flysim(flysim_factory: FlySimFactory) -> FlySim:
    return await flysim_factory()


@pytest.fixture
def flysim_thread() -> Iterator[FlySimThread]:
    runner = FlySimThread(profile="fast")
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
