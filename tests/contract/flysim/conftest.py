"""Fixtures for the flysim contract tests: simulators, and an HTTP client that validates every
`/v1` response it gets against Fly's OpenAPI spec (a copy kept beside these tests)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from openapi_core import OpenAPI
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import DataValidationError, MissingData

from claw_operator.sim.flysim import FlySim, ManualClock
from tests.fixtures.flysim import flysim, flysim_factory, flysim_thread  # noqa: F401

SPEC_PATH = (Path(__file__).parent / "fly-machines-openapi.yaml").resolve()
FLY_HOST = "https://api.machines.dev"
TOKEN = "test-token"

# Where the Dec 2023 spec is wrong about the live API, flysim follows the API and the spec is
# corrected here before validating; docs/flysim.md lists each correction with its evidence.
SPEC_CORRECTIONS: list[tuple[str, str, dict[str, Any], str]] = [
    # (schema, property, corrected property schema, why)
    (
        "Volume",
        "attached_machine_id",
        {"type": "string", "nullable": True},
        "null when the volume is free [D][C]",
    ),
    (
        "Volume",
        "attached_alloc_id",
        {"type": "string", "nullable": True},
        "null when the volume is free [D][C]",
    ),
    # Go `interface{}` rendered as `type: object` by the generator; flysim sends the network
    # name, a string [I].
    ("ListApp", "network", {}, "Go interface{} in the spec generator; a network name [I]"),
    (
        "api.MachineService",
        "autostop",
        {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["suspend"]}]},
        'false, true or "suspend" since suspend support [D]',
    ),
]


# (spec path, method, status, corrected JSON schema of the body, why)
RESPONSE_CORRECTIONS: list[tuple[str, str, str, dict[str, Any], str]] = [
    (
        "/apps/{app_name}/machines/{machine_id}/exec",
        "post",
        "200",
        {
            "type": "object",
            "properties": {
                "exit_code": {"type": "integer"},
                "stdout": {"type": "string"},
                "stderr": {"type": "string"},
            },
        },
        "the API answers {exit_code, stdout, stderr}, not raw bytes [O]",
    ),
]


def corrected_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    schemas = spec["components"]["schemas"]
    for schema, prop, corrected, _why in SPEC_CORRECTIONS:
        schemas[schema]["properties"][prop] = corrected
    for path, method, status, body, _why in RESPONSE_CORRECTIONS:
        spec["paths"][path][method]["responses"][status]["content"] = {"application/json": {"schema": body}}
    return spec


class ContractChecker:
    """Validates responses with openapi-core; counts what was validated and what the spec
    does not describe (statuses or bodies it leaves out)."""

    def __init__(self) -> None:
        self.openapi = OpenAPI.from_dict(corrected_spec())
        self.validated: Counter[str] = Counter()
        self.undocumented: Counter[str] = Counter()
        self.status_only: Counter[str] = Counter()

    def check(self, response: httpx.Response) -> None:
        url = response.request.url
        if not url.path.startswith("/v1/"):
            return
        request = MockRequest(
            FLY_HOST,
            response.request.method,
            url.path,
            args=dict(url.params),
        )
        content_type = response.headers.get("content-type", "application/json").split(";")[0]
        mock = MockResponse(
            response.content, status_code=response.status_code, headers=dict(response.headers),
            content_type=content_type,
        )  # fmt: skip
        key = f"{response.request.method} {url.path} {response.status_code}"
        try:
            self.openapi.validate_response(request, mock)
        except (PathNotFound, OperationNotFound, ResponseNotFound, MediaTypeNotFound):
            self.undocumented[key] += 1
            return
        except MissingData:
            # An empty body where the spec says `content: {}` (204s, 202 app delete): fine.
            self.validated[key] += 1
            return
        except DataValidationError as error:
            # The spec documents the status but gives no body (`content: {}` on 200 where Fly
            # sends `{"ok": true}` [D][C]): the status is checked, the body cannot be.
            if isinstance(error.__cause__, MediaTypeNotFound):
                self.status_only[key] += 1
                return
            raise
        self.validated[key] += 1


@pytest.fixture(scope="session")
def contract() -> ContractChecker:
    return ContractChecker()


class FlyClient:
    """httpx against a flysim, with contract validation and polling helpers."""

    def __init__(self, base_url: str, contract: ContractChecker, token: str | None = TOKEN) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10)
        self.contract = contract

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, path, **kwargs)
        self.contract.check(response)
        return response

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def create_machine(
        self, app: str = "app", config: dict[str, Any] | None = None, **body: Any
    ) -> dict[str, Any]:
        body.setdefault("region", "iad")
        response = await self.post(
            f"/v1/apps/{app}/machines", json={"config": config or {"image": "nginx:1.27"}, **body}
        )
        assert response.status_code == 200, response.text
        machine: dict[str, Any] = response.json()
        return machine

    async def create_volume(self, app: str = "app", **body: Any) -> dict[str, Any]:
        body.setdefault("name", "data")
        body.setdefault("region", "iad")
        body.setdefault("size_gb", 1)
        response = await self.post(f"/v1/apps/{app}/volumes", json=body)
        assert response.status_code == 200, response.text
        volume: dict[str, Any] = response.json()
        return volume

    async def machine(self, app: str, machine_id: str) -> dict[str, Any]:
        response = await self.get(f"/v1/apps/{app}/machines/{machine_id}")
        assert response.status_code == 200, response.text
        machine: dict[str, Any] = response.json()
        return machine

    async def reaches(self, app: str, machine_id: str, state: str, timeout: float = 5.0) -> dict[str, Any]:
        """Poll GET until the machine is in `state` (for the fast profile's milliseconds)."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.get(f"/v1/apps/{app}/machines/{machine_id}")
            if response.status_code == 200 and response.json()["state"] == state:
                machine: dict[str, Any] = response.json()
                return machine
            if time.monotonic() > deadline:
                raise AssertionError(f"machine {machine_id} never reached {state}: last {response.text}")
            await asyncio.sleep(0.005)

    async def aclose(self) -> None:
        await self.http.aclose()


async def eventually(check: Any, timeout: float = 5.0) -> Any:
    """Await `check()` until it returns something truthy (polling every 5 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.005)


@pytest_asyncio.fixture
async def fly(flysim: FlySim, contract: ContractChecker) -> AsyncIterator[FlyClient]:  # noqa: F811
    client = FlyClient(flysim.base_url, contract)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def manual() -> AsyncIterator[tuple[FlySim, ManualClock]]:
    """A simulator whose time only moves when the test calls `clock.advance()`."""
    clock = ManualClock()
    sim = FlySim(profile="fast", seed=7, clock=clock)
    await sim.start()
    yield sim, clock
    await sim.stop()


@pytest_asyncio.fixture
async def manual_fly(
    manual: tuple[FlySim, ManualClock], contract: ContractChecker
) -> AsyncIterator[FlyClient]:
    client = FlyClient(manual[0].base_url, contract)
    yield client
    await client.aclose()
