"""Helpers and scenarios shared by the Fly client's contract tests (flysim and real API)."""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from claw_operator.fly import (
    FlyMachinesClient,
    Machine,
    MachineConfig,
    Mount,
    NotFound,
    OwnerTag,
    Precondition,
)
from claw_operator.fly.leases import MachineLeases
from claw_operator.fly.tags import METADATA_UID_KEY

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


# --- scenarios that run unchanged against flysim and (opt-in) the real Fly API ------------------


async def scenario_instance_lifecycle(
    client: FlyMachinesClient, app: str, owner: OwnerTag, regions: list[str], image: str
) -> None:
    """What the operator does to one ClawInstance (kiloclaw-lifecycle.md §3, §4): volume with a
    region fallback, a tagged machine mounting it, stop/start, a mount repair under a lease,
    extend, and the two-phase destroy (machine, then volume once Fly lets go of it)."""
    volume = await client.create_volume(
        app, name=owner.volume_name(), regions=regions, size_gb=1, compute=machine_config(image).guest
    )
    spare = None
    machine = None
    try:
        config = machine_config(image).model_copy(update={"mounts": [Mount(volume=volume.id, path="/root")]})
        machine = await client.create_machine(
            app, config, owner=owner, name=owner.machine_name(), region=volume.region
        )
        assert machine.metadata[METADATA_UID_KEY] == owner.uid
        await client.wait_for_state(app, machine.id, "started", timeout=60)
        found = await client.find_owned_machines(app, owner)
        assert [m.id for m in found] == [machine.id]

        # Stop (waiting with the instance_id), then start again through the settling window.
        before_stop = await client.stop_machine_and_wait(app, machine.id, timeout=60)
        assert (await client.get_machine(app, machine.id)).state == "stopped"
        started = await client.start_machine_and_wait(app, machine.id, timeout=60)
        assert started.state == "started"

        # Mount repair: stop, update the full config with the right mount under a lease, start.
        spare = await client.create_volume(app, name=owner.volume_name(), regions=[volume.region], size_gb=1)
        await client.stop_machine_and_wait(app, machine.id, timeout=60)

        def remount(current: Machine) -> MachineConfig:
            assert current.config is not None
            return current.config.model_copy(update={"mounts": [Mount(volume=spare.id, path="/root")]})

        repaired = await MachineLeases(client).update_machine(app, machine.id, remount)
        assert repaired.instance_id != before_stop.instance_id
        assert repaired.config is not None and repaired.config.mounts is not None
        assert [m.volume for m in repaired.config.mounts] == [spare.id]
        assert repaired.metadata[METADATA_UID_KEY] == owner.uid, "the full config was sent back"
        await client.wait_for_state(
            app, machine.id, ["started", "stopped"], instance_id=repaired.current_version
        )
        if (await client.get_machine(app, machine.id)).state != "started":
            await client.start_machine_and_wait(app, machine.id, timeout=60)

        extended = await client.extend_volume(app, spare.id, 2)
        assert extended.volume.id == spare.id
    finally:
        # Two-phase destroy: the machine, then each volume once Fly has released it.
        if machine is not None:
            await client.destroy_machine(app, machine.id, force=True)
            await client.wait_for_state(app, machine.id, "destroyed", timeout=60)
            assert await client.destroy_machine(app, machine.id, force=True) in (True, False)
        for vol in (volume, spare):
            if vol is not None:
                await delete_volume_when_released(client, app, vol.id)
    assert await client.find_owned_machines(app, owner) == []


async def delete_volume_when_released(client: FlyMachinesClient, app: str, volume_id: str) -> None:
    """Retry a volume delete while Fly still has it bound to the destroyed machine."""
    for _ in range(120):
        try:
            await client.delete_volume(app, volume_id)
            return
        except Precondition as error:
            if not error.retryable:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError(f"volume {volume_id} stayed bound")


async def scenario_typed_errors_without_faults(client: FlyMachinesClient, app: str) -> None:
    with pytest.raises(NotFound):
        await client.get_machine(app, "0123456789abcd")
    with pytest.raises(NotFound):
        await client.get_volume(app, "vol_0123456789abcdef")
    assert await client.destroy_machine(app, "0123456789abcd", force=True) is False


async def scenario_limiter_absorbs_a_read_burst(client: FlyMachinesClient, app: str, machine_id: str) -> None:
    """15 parallel reads of one machine: over Fly's burst of 10, paced by the client."""
    outcomes = await asyncio.gather(
        *(client.get_machine(app, machine_id) for _ in range(15)), return_exceptions=True
    )
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
