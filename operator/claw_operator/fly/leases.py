"""Machine leases: Fly's per-machine lock for read-modify-write sequences
(`docs/reference/fly-machines-api.md` §5).

The operator does not take leases: one pass at a time per ClawInstance (a lock per object, and
the status write conditional on its resourceVersion) already keeps its own changes apart, and
every mutation it sends either carries no state to lose (start, stop, destroy) or is a full
config derived from the spec. This module is for callers that share machines with other
writers (a person with flyctl, another tool): take the lease, send the nonce.

    leases = MachineLeases(client)
    async with leases.hold(app, machine_id) as lease:
        await client.update_machine(app, machine_id, config, lease_nonce=lease.nonce)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from claw_operator.fly.client import FlyMachinesClient
from claw_operator.fly.errors import FlyError, NotFound
from claw_operator.fly.models import Lease, Machine, MachineConfig
from claw_operator.fly.transport import R_LEASE, Retry, read_as

__all__ = ["MachineLeases"]

log = logging.getLogger("claw_operator.fly")


class MachineLeases:
    """The lease calls of the Fly Machines API, sent through `client`'s transport (its pool, rate
    limits and retries)."""

    def __init__(self, client: FlyMachinesClient) -> None:
        self._client = client
        self._transport = client.transport

    async def acquire(
        self, app: str, machine_id: str, *, ttl: int = 30, description: str | None = None
    ) -> Lease:
        """Take the machine's lease (`Conflict(LEASE_HELD)` if someone else holds it)."""
        body: dict[str, Any] = {"ttl": ttl}
        if description:
            body["description"] = description
        return await self._post(Retry.UNSENT, app, machine_id, body, ttl=ttl)

    async def refresh(self, app: str, machine_id: str, nonce: str, *, ttl: int = 30) -> Lease:
        """Extend a held lease; Fly keeps the nonce."""
        return await self._post(Retry.SAFE, app, machine_id, {"ttl": ttl}, ttl=ttl, nonce=nonce)

    async def _post(
        self,
        mode: Retry,
        app: str,
        machine_id: str,
        body: dict[str, Any],
        *,
        ttl: int,
        nonce: str | None = None,
    ) -> Lease:
        response = await self._transport.call(
            mode,
            "POST",
            R_LEASE,
            action="lease",
            app=app,
            object_id=machine_id,
            # fly-go sends the TTL as a query parameter, the docs in the body: send both.
            params={"ttl": str(ttl)},
            json=body,
            lease_nonce=nonce,
        )
        return read_as(Lease.from_response, response, route=R_LEASE)

    async def release(self, app: str, machine_id: str, nonce: str) -> None:
        """Release the lease. An expired or already released lease (`lease not found`) is fine."""
        try:
            await self._transport.call(
                Retry.SAFE,
                "DELETE",
                R_LEASE,
                action="lease",
                app=app,
                object_id=machine_id,
                lease_nonce=nonce,
            )
        except NotFound:
            return

    @asynccontextmanager
    async def hold(
        self, app: str, machine_id: str, *, ttl: int = 30, description: str | None = None
    ) -> AsyncIterator[Lease]:
        """`async with leases.hold(app, id) as lease:` … use `lease.nonce` … released on exit.
        A failed release is logged, not raised: the lease expires on its own after `ttl`."""
        held = await self.acquire(app, machine_id, ttl=ttl, description=description)
        try:
            yield held
        finally:
            try:
                await self.release(app, machine_id, held.nonce)
            except FlyError as exc:
                log.warning(
                    "could not release lease (it expires in %ss): %s",
                    ttl,
                    exc,
                    extra={"fly_app": app, "fly_machine_id": machine_id},
                )

    async def update_machine(
        self,
        app: str,
        machine_id: str,
        change: Callable[[Machine], MachineConfig],
        *,
        ttl: int = 30,
        description: str = "claw-operator update",
        skip_launch: bool | None = None,
        min_secrets_version: int | None = None,
    ) -> Machine:
        """Read-modify-write under a lease: acquire, GET, `change(machine)` → full config, update
        with the nonce (retried safely), release. A held lease raises `Conflict(LEASE_HELD)`."""
        async with self.hold(app, machine_id, ttl=ttl, description=description) as lease:
            machine = await self._client.get_machine(app, machine_id)
            return await self._client.update_machine(
                app,
                machine_id,
                change(machine),
                lease_nonce=lease.nonce,
                skip_launch=skip_launch,
                min_secrets_version=min_secrets_version,
            )
