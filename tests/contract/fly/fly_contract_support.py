"""Helpers shared by the Fly client's contract tests (imported by module name: pytest puts
this directory on sys.path)."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from claw_operator.fly import FlyMachinesClient, Machine, MachineConfig, OwnerTag

TOKEN = "contract-token"
ClientFactory = Callable[..., FlyMachinesClient]
APP = "claw-contract"


@dataclass
class Sent:
    at: float  # time.monotonic() when the request left the client
    method: str
    path: str


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, plus a log of when each request was sent."""

    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)
    sent: list[Sent] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(Sent(time.monotonic(), request.method, request.url.path))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, method: str, path_suffix: str) -> int:
        return sum(1 for s in self.sent if s.method == method and s.path.endswith(path_suffix))


def machine_config(image: str = "registry.fly.io/claw:1") -> MachineConfig:
    return MachineConfig.model_validate(
        {
            "image": image,
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
            "services": [
                {
                    "protocol": "tcp",
                    "internal_port": 18789,
                    "autostart": False,
                    "autostop": "off",
                    "ports": [{"port": 443, "handlers": ["tls", "http"]}],
                }
            ],
        }
    )


async def started_machine(client: FlyMachinesClient, owner: OwnerTag, **create: Any) -> Machine:
    machine = await client.create_machine(APP, machine_config(), owner=owner, region="iad", **create)
    await client.wait_for_state(APP, machine.id, "started", timeout=10)
    return machine
