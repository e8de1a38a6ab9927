"""`FlyMachinesClient`: the only code that talks to the Fly Machines API.

What each call sends, and how an ambiguous create is resolved. How a request is sent, retried
(per call: `Retry.SAFE` or `Retry.UNSENT`) and read is `fly/transport.py`; the machine leases,
which the operator does not use, are `fly/leases.py`. "§N" is a section of
`docs/reference/fly-machines-api.md`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx

from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.fly.config import FlyClientConfig
from claw_operator.fly.errors import (
    AmbiguousCreate,
    Conflict,
    ConflictReason,
    FlyError,
    InsufficientCapacity,
    NotFound,
    Precondition,
    PreconditionReason,
    RateLimited,
    Timeout,
    Unavailable,
    UnexpectedResponse,
    WaitTimeout,
)
from claw_operator.fly.models import (
    ExtendVolumeResult,
    GuestConfig,
    Machine,
    MachineConfig,
    StartResult,
    Volume,
    WaitResult,
)
from claw_operator.fly.ratelimit import GET_ACTION, FlyRateLimiter
from claw_operator.fly.tags import OwnerTag
from claw_operator.fly.transport import (
    R_APP,
    R_MACHINE,
    R_MACHINES,
    R_START,
    R_STOP,
    R_VOLUME,
    R_VOLUME_EXTEND,
    R_VOLUMES,
    R_WAIT,
    Backoff,
    FlyTransport,
    decode_json,
    parse_as,
    read_model,
    retrying,
)
from claw_operator.fly.transport import Retry as _Retry

__all__ = [
    "FlyMachinesClient",
    "close_shared_client",
    "get_shared_client",
]

log = logging.getLogger("claw_operator.fly")

# Waits loop with a short backoff between server long polls that ended without the state (§4 of
# docs/reference/fly-machines-api.md: flyctl backs off 0.5-2 s between attempts); a start refused
# while the machine settles is sent again at the same pace.
_WAIT_BACKOFF: Final = Backoff(initial=0.5, max=2.0, jitter=0.5)
# A machine Fly briefly denies right after its create is read again at a quicker pace.
_NOT_FOUND_BACKOFF: Final = Backoff(initial=0.2, max=1.0, jitter=0.1)
# How far back a volume's created_at may be (clock skew plus request time) and still be taken as
# the product of an ambiguous create we just sent.
_VOLUME_RESOLVE_SKEW: Final = timedelta(minutes=2)


def _go_duration(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:g}s"


_parse_time = parse_rfc3339


def _matches(metadata: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(metadata.get(k) == v for k, v in selector.items())


class FlyMachinesClient:
    """Async client of the Fly Machines API (`https://api.machines.dev/v1`, or flysim).

    One instance per process (see `get_shared_client`): it owns the connection pool and the
    rate-limit buckets, which only work if every caller shares them. It is bound to the event
    loop it is first used on. Close it with `aclose()` or use it as an async context manager.
    `transport`: an httpx transport to send through instead of the aiohttp pool (the tests'
    `httpx.MockTransport`).
    """

    def __init__(
        self,
        config: FlyClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._transport = FlyTransport(config, transport=transport)
        self._send = self._transport.send
        self._call = self._transport.call

    # Fly's answers, read as `fly/transport.py` reads them.
    _json = staticmethod(decode_json)
    _parse = staticmethod(parse_as)
    _read = staticmethod(read_model)

    @property
    def config(self) -> FlyClientConfig:
        return self._config

    @property
    def transport(self) -> FlyTransport:
        return self._transport

    @property
    def rate_limiter(self) -> FlyRateLimiter:
        return self._transport.limiter

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> FlyMachinesClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"FlyMachinesClient(base_url={self._config.base_url!r})"

    # --- apps --------------------------------------------------------------------------------

    async def get_app(self, app: str) -> dict[str, Any]:
        """GET one app (`NotFound` when the token sees no such app, `Unauthorized` when Fly refuses
        the token): the cheapest question that tells whether Fly takes the token."""
        response = await self._call(_Retry.SAFE, "GET", R_APP, action="get_app", app=app)
        body = self._json(response, route=R_APP)
        if not isinstance(body, dict):
            raise UnexpectedResponse("app is not a JSON object", method="GET", route=R_APP)
        return body

    # --- machines: reads ---------------------------------------------------------------------

    async def get_machine(self, app: str, machine_id: str, *, not_found_grace: float = 0.0) -> Machine:
        """GET one machine. A destroyed machine comes back with `state == "destroyed"` for a
        short while, then as `NotFound`; treat both as gone (`Machine.is_gone`).

        `not_found_grace`: seconds during which a 404 is retried. Use it right after your own
        create: Fly's store is eventually consistent and can briefly deny a machine it just
        made (§7), which must not be mistaken for "gone, recreate it"."""
        if not_found_grace <= 0:
            return await self._get_machine_once(app, machine_id)
        return await retrying(
            lambda: self._get_machine_once(app, machine_id),
            on=lambda exc: isinstance(exc, NotFound),
            backoff=_NOT_FOUND_BACKOFF,
            deadline=asyncio.get_running_loop().time() + not_found_grace,
        )

    async def _get_machine_once(self, app: str, machine_id: str) -> Machine:
        response = await self._call(
            _Retry.SAFE, "GET", R_MACHINE, action=GET_ACTION, app=app, object_id=machine_id
        )
        return self._read(Machine, response, route=R_MACHINE)

    async def list_machines(
        self,
        app: str,
        *,
        metadata: Mapping[str, str] | None = None,
        include_deleted: bool = False,
        region: str | None = None,
        states: Sequence[str] | None = None,
    ) -> list[Machine]:
        """List the app's machines, filtered by metadata (`metadata.{key}=value`).

        The filter is applied again on the client, because the metadata filter is documented
        but missing from Fly's spec. The list is eventually consistent: an empty answer never
        proves that a machine does not exist.
        """
        params: list[tuple[str, str]] = [(f"metadata.{k}", v) for k, v in (metadata or {}).items()]
        if include_deleted:
            params.append(("include_deleted", "true"))
        if region:
            params.append(("region", region))
        if states:
            params.append(("state", ",".join(states)))
        response = await self._call(
            _Retry.SAFE, "GET", R_MACHINES, action="list_machines", app=app, params=params
        )
        body = self._json(response, route=R_MACHINES)
        if not isinstance(body, list):
            raise UnexpectedResponse("machine list is not a JSON array", method="GET", route=R_MACHINES)
        machines = [self._parse(Machine.model_validate, item, response, route=R_MACHINES) for item in body]
        if metadata:
            machines = [m for m in machines if _matches(m.metadata, metadata)]
        return machines

    async def find_owned_machines(self, app: str, owner: OwnerTag) -> list[Machine]:
        """The live (not destroyed/destroying) machines tagged with this owner's UID, oldest first."""
        machines = await self.list_machines(app, metadata=owner.selector())
        live = [m for m in machines if not m.is_gone]
        return sorted(live, key=lambda m: (m.created_at or "", m.id))

    # --- machines: create --------------------------------------------------------------------

    async def create_machine(
        self,
        app: str,
        config: MachineConfig,
        *,
        owner: OwnerTag,
        name: str | None = None,
        region: str | None = None,
        skip_launch: bool = False,
        lease_ttl: int | None = None,
        min_secrets_version: int | None = None,
    ) -> Machine:
        """Create a machine tagged with `owner` (its metadata is merged into `config.metadata`)
        and named `name` (default `owner.machine_name()`, unique per app on Fly).

        Never sends the create twice after a failure that may hide a success. Instead it lists
        the app's machines by the owner's UID: found → that machine is returned (the "silent
        success" 408 of flyctl; an owner has one machine, so an older live one of the same
        owner is adopted the same way); not found → `AmbiguousCreate` (retryable). A 409
        "name taken" is resolved the same way, so a create with `owner.machine_name()` that
        already happened returns the existing machine. The caller retries
        later, and must look for the owner's machines (`find_owned_machines`) before creating
        again: Fly's list is eventually consistent, so an empty list right after a create proves
        nothing, and sending the create again on it is exactly how flyctl made duplicates.

        Raises `InsufficientCapacity` (region full, or the volume's host full:
        `scope == VOLUME_HOST`), `Precondition` (e.g. volume claimed), `QuotaExceeded`, …
        """
        tagged = config.model_copy(update={"metadata": {**(config.metadata or {}), **owner.metadata()}})
        # The name defaults to one derived from the UID: Fly keeps machine names unique within
        # an app, so even a caller misled by a stale list into creating again gets a 409 (then
        # resolved by looking) instead of a second machine.
        body: dict[str, Any] = {"config": tagged.to_wire(), "name": name or owner.machine_name()}
        if region is not None:
            body["region"] = region
        if skip_launch:
            body["skip_launch"] = True
        if lease_ttl is not None:
            body["lease_ttl"] = lease_ttl
        if min_secrets_version is not None:
            body["min_secrets_version"] = min_secrets_version
        try:
            # UNSENT: the only automatic resend is after a 429 or a refused connection, which
            # prove the create was never processed.
            response = await self._call(
                _Retry.UNSENT, "POST", R_MACHINES, action="create_machine", app=app, json=body
            )
        except FlyError as exc:
            name_taken = isinstance(exc, Conflict) and exc.reason is ConflictReason.NAME_TAKEN
            if not (exc.ambiguous or name_taken):
                raise
            return await self._resolve_ambiguous_machine_create(app, owner, exc)
        return self._read(Machine, response, route=R_MACHINES)

    async def _resolve_ambiguous_machine_create(self, app: str, owner: OwnerTag, cause: FlyError) -> Machine:
        # Hand-written rather than a stamina retry: what is repeated is not the failed request
        # but a different one (a list), the loop ends on a *found* result rather than on a
        # success, and its outcome when nothing is found is a decision (AmbiguousCreate, never a
        # resend), which no retry library expresses.
        log.warning(
            "ambiguous machine create (%s); looking for it by tag",
            type(cause).__name__,
            extra={"fly_app": app, "fly_owner_uid": owner.uid, "fly_request_id": cause.request_id},
        )
        delay = self._config.create_resolve_delay
        for attempt in range(self._config.create_resolve_attempts):
            if attempt:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.retry.wait_max)
            try:
                found = await self.find_owned_machines(app, owner)
            except FlyError as exc:
                if not exc.retryable:
                    raise
                continue
            if found:
                machine = found[0]
                if len(found) > 1:
                    log.warning(
                        "owner has %d machines; returning the oldest",
                        len(found),
                        extra={"fly_app": app, "fly_owner_uid": owner.uid},
                    )
                log.info(
                    "ambiguous machine create resolved: machine exists",
                    extra={"fly_app": app, "fly_owner_uid": owner.uid, "fly_machine_id": machine.id},
                )
                return machine
        raise AmbiguousCreate(
            f"machine create may or may not have happened ({cause.message}); no machine tagged "
            f"{owner.uid} is visible yet. Look for it again before creating.",
            cause=cause,
            status=cause.status,
            request_id=cause.request_id,
            method="POST",
            route=R_MACHINES,
        )

    # --- machines: changes -------------------------------------------------------------------

    async def update_machine(
        self,
        app: str,
        machine_id: str,
        config: MachineConfig,
        *,
        lease_nonce: str | None = None,
        current_version: str | None = None,
        skip_launch: bool | None = None,
        min_secrets_version: int | None = None,
    ) -> Machine:
        """Replace the machine's config. Send the FULL config (read it with `get_machine` and
        change it; unknown fields are kept): Fly has no partial update. The result carries a new
        `instance_id`. Retried automatically only when `lease_nonce` is given (safe with the same
        nonce); `current_version` turns a concurrent change into `Conflict(VERSION_MISMATCH)`."""
        body: dict[str, Any] = {"config": config.to_wire()}
        if current_version is not None:
            body["current_version"] = current_version
        if skip_launch is not None:
            body["skip_launch"] = skip_launch
        if min_secrets_version is not None:
            body["min_secrets_version"] = min_secrets_version
        response = await self._call(
            _Retry.SAFE if lease_nonce else _Retry.UNSENT,
            "POST",
            R_MACHINE,
            action="update",
            app=app,
            object_id=machine_id,
            json=body,
            lease_nonce=lease_nonce,
        )
        return self._read(Machine, response, route=R_MACHINE)

    async def update_and_start(
        self,
        app: str,
        machine_id: str,
        config: MachineConfig,
        *,
        lease_nonce: str | None = None,
        min_secrets_version: int | None = None,
        timeout: float = 60.0,
    ) -> Machine:
        """Update with the full `config`, then make sure the NEW version runs, within `timeout`.

        Whether an update launches a machine that was not running has changed over time (Fly
        leaves it stopped since 2026, §4), so this waits for the new version to settle (started
        or stopped, by its instance_id) and starts it when it did not start by itself. Waiting
        on the new instance_id also catches the update that silently fell back to the old
        version (§8.4): Fly then answers that the version was replaced. Returns the machine as
        the update answered (its `instance_id` is the new version).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        updated = await self.update_machine(
            app, machine_id, config, lease_nonce=lease_nonce, min_secrets_version=min_secrets_version
        )
        settled = await self.wait_for_state(
            app,
            machine_id,
            ["started", "stopped", "failed"],
            instance_id=updated.current_version,
            timeout=max(1.0, deadline - loop.time()),
        )
        if settled.state != "started":
            await self.start_machine_and_wait(
                app, machine_id, timeout=max(1.0, deadline - loop.time()), lease_nonce=lease_nonce
            )
        return updated

    async def start_machine(
        self, app: str, machine_id: str, *, lease_nonce: str | None = None
    ) -> StartResult:
        """Start a stopped/suspended/failed/created machine. A machine still settling answers
        `Precondition(START_NOT_READY)` (retryable): wait and start again."""
        response = await self._call(
            _Retry.UNSENT,
            "POST",
            R_START,
            action="start",
            app=app,
            object_id=machine_id,
            lease_nonce=lease_nonce,
        )
        body = self._json(response, route=R_START) if response.content else {}
        return self._parse(
            StartResult.model_validate, body if isinstance(body, dict) else {}, response, route=R_START
        )

    async def stop_machine(
        self,
        app: str,
        machine_id: str,
        *,
        signal: str | None = None,
        timeout: float | str | None = None,
        lease_nonce: str | None = None,
    ) -> None:
        """Ask the machine to stop (asynchronous; wait for `stopped` with its instance_id)."""
        body: dict[str, Any] = {}
        if signal is not None:
            body["signal"] = signal
        if timeout is not None:
            body["timeout"] = _go_duration(timeout)
        await self._call(
            _Retry.UNSENT,
            "POST",
            R_STOP,
            action="stop",
            app=app,
            object_id=machine_id,
            json=body or None,
            lease_nonce=lease_nonce,
        )

    async def destroy_machine(
        self, app: str, machine_id: str, *, force: bool = False, lease_nonce: str | None = None
    ) -> bool:
        """Destroy the machine. True if this call destroyed it, False if it was already gone
        (404). Without `force` a running machine answers `Precondition(DESTROY_RUNNING)`. The
        volume it mounted stays claimed for a while after this returns."""
        try:
            await self._call(
                _Retry.SAFE,
                "DELETE",
                R_MACHINE,
                action="destroy",
                app=app,
                object_id=machine_id,
                params={"force": "true"} if force else None,
                lease_nonce=lease_nonce,
            )
        except NotFound:
            log.info("machine already gone", extra={"fly_app": app, "fly_machine_id": machine_id})
            return False
        return True

    # --- machines: waits ---------------------------------------------------------------------

    async def wait_for_state(
        self,
        app: str,
        machine_id: str,
        states: str | Sequence[str],
        *,
        instance_id: str | None = None,
        timeout: float = 60.0,
        not_found_grace: float = 0.0,
    ) -> WaitResult:
        """Block until the machine reaches any of `states` (`started`, `stopped`, `suspended`,
        `destroyed`, `failed`, `settled`), or raise `WaitTimeout` after `timeout` seconds overall.

        Long polls of at most `wait_server_timeout` seconds each, the HTTP timeout being that
        plus `wait_margin`; 408s, 429s and 5xx between them are absorbed with a 0.5-2 s backoff.
        `stopped` needs the `instance_id` (Fly answers 400 otherwise): read it with
        `get_machine` after the stop. Waiting for `destroyed` on a machine that is already gone
        (404) succeeds. `not_found_grace`: as in `get_machine`, for a wait right after a create.
        """
        wanted = [states] if isinstance(states, str) else list(states)
        if not wanted:
            raise ValueError("wait_for_state needs at least one state")
        if "stopped" in wanted and not instance_id:
            raise ValueError("waiting for 'stopped' needs the machine's instance_id (Fly answers 400)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        not_found_deadline = loop.time() + not_found_grace

        def keep_waiting(exc: Exception) -> bool:
            # WaitTimeout is a Timeout: the server's "not yet" and transient trouble alike are
            # absorbed until the overall deadline; anything else (400, 404 …) ends the wait.
            if isinstance(exc, NotFound):
                return loop.time() < not_found_deadline
            return isinstance(exc, Timeout | RateLimited | Unavailable)

        return await retrying(
            lambda: self._wait_once(app, machine_id, wanted, instance_id, deadline - loop.time()),
            on=keep_waiting,
            backoff=_WAIT_BACKOFF,
            deadline=deadline,
        )

    async def _wait_once(
        self, app: str, machine_id: str, wanted: list[str], instance_id: str | None, remaining: float
    ) -> WaitResult:
        server_timeout = max(1, min(self._config.wait_server_timeout, math.ceil(remaining)))
        params = [("state", ",".join(wanted)), ("timeout", str(server_timeout))]
        if instance_id:
            params.append(("instance_id", instance_id))
        try:
            response = await self._send(
                "GET",
                R_WAIT,
                action="wait",
                app=app,
                object_id=machine_id,
                params=params,
                timeout=server_timeout + self._config.wait_margin,
            )
        except NotFound:
            if "destroyed" in wanted:
                return WaitResult(ok=True, state="destroyed")
            raise
        except WaitTimeout as exc:
            if remaining <= server_timeout:
                # Out of overall time: say so with the state Fly reported.
                raise WaitTimeout(
                    f"machine {machine_id} did not reach {'/'.join(wanted)} in time: {exc.message}",
                    current_state=exc.current_state,
                    status=exc.status,
                    request_id=exc.request_id,
                    method="GET",
                    route=R_WAIT,
                ) from exc
            raise
        body = self._json(response, route=R_WAIT) if response.content else {}
        return self._parse(
            WaitResult.model_validate, body if isinstance(body, dict) else {}, response, route=R_WAIT
        )

    async def stop_machine_and_wait(
        self,
        app: str,
        machine_id: str,
        *,
        timeout: float = 60.0,
        signal: str | None = None,
        lease_nonce: str | None = None,
    ) -> Machine:
        """Stop and wait for `stopped` with the machine's instance_id (KiloClaw's
        `stopMachineAndWait`). Returns the machine as read before the stop (its config, for a
        mount repair). Already resting (stopped/created/failed/suspended) → no stop is sent."""
        machine = await self.get_machine(app, machine_id)
        if machine.state in ("stopped", "created", "failed", "suspended"):
            return machine
        if machine.state != "stopping":  # a stop already under way is only waited for
            await self.stop_machine(app, machine_id, signal=signal, lease_nonce=lease_nonce)
        await self.wait_for_state(
            app, machine_id, "stopped", instance_id=machine.current_version, timeout=timeout
        )
        return machine

    async def start_machine_and_wait(
        self, app: str, machine_id: str, *, timeout: float = 60.0, lease_nonce: str | None = None
    ) -> WaitResult:
        """Start, then wait for `started`, all within `timeout` seconds. A start refused because
        the machine is still settling (`Precondition(START_NOT_READY)`: created, replacing, or
        the "still active" tail after a stop) is sent again with backoff until the deadline.
        A machine already started is left alone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        current = await self.get_machine(app, machine_id)
        if current.state == "started":
            return WaitResult(ok=True, state="started", version=current.current_version)

        await retrying(
            lambda: self.start_machine(app, machine_id, lease_nonce=lease_nonce),
            on=lambda exc: isinstance(exc, Precondition) and exc.reason is PreconditionReason.START_NOT_READY,
            backoff=_WAIT_BACKOFF,
            deadline=deadline,
        )
        remaining = max(1.0, deadline - loop.time())
        return await self.wait_for_state(app, machine_id, "started", timeout=remaining)

    # --- volumes -----------------------------------------------------------------------------

    async def get_volume(self, app: str, volume_id: str) -> Volume:
        response = await self._call(
            # Fly's generous get limit is documented for machines only; a volume read is an action.
            _Retry.SAFE,
            "GET",
            R_VOLUME,
            action="get_volume",
            app=app,
            object_id=volume_id,
        )
        return self._read(Volume, response, route=R_VOLUME)

    async def list_volumes(
        self, app: str, *, name: str | None = None, include_destroyed: bool = False
    ) -> list[Volume]:
        """The app's volumes; soft-deleted ones (still listed by Fly) are left out unless asked."""
        response = await self._call(_Retry.SAFE, "GET", R_VOLUMES, action="list_volumes", app=app)
        body = self._json(response, route=R_VOLUMES)
        if not isinstance(body, list):
            raise UnexpectedResponse("volume list is not a JSON array", method="GET", route=R_VOLUMES)
        volumes = [self._parse(Volume.model_validate, item, response, route=R_VOLUMES) for item in body]
        if not include_destroyed:
            volumes = [v for v in volumes if not v.is_gone]
        if name is not None:
            volumes = [v for v in volumes if v.name == name]
        return volumes

    async def create_volume(
        self,
        app: str,
        *,
        name: str,
        regions: Sequence[str],
        size_gb: int | None = None,
        compute: GuestConfig | None = None,
        encrypted: bool | None = None,
        require_unique_zone: bool | None = None,
        source_volume_id: str | None = None,
        snapshot_id: str | None = None,
        snapshot_retention: int | None = None,
    ) -> Volume:
        """Create a volume in the first region of `regions` that has room.

        Volumes need a concrete region (no meta-regions). An `InsufficientCapacity` moves on to
        the next region; any other error is raised at once; when every region is full the last
        capacity error is raised. Pass `compute` (the machine's guest) so Fly places the volume
        on a host that can also run the machine. `source_volume_id` forks (no `size_gb` then).

        An ambiguous failure is resolved by listing volumes by `name` in that region (volumes
        have no metadata): found → returned; not found → `AmbiguousCreate`, and no other region
        is tried (that could leave two volumes).
        """
        if not regions:
            raise ValueError("create_volume needs at least one region")
        base: dict[str, Any] = {"name": name}
        if size_gb is not None:
            base["size_gb"] = size_gb
        if compute is not None:
            base["compute"] = compute.to_wire()
        for key, value in (
            ("encrypted", encrypted),
            ("require_unique_zone", require_unique_zone),
            ("source_volume_id", source_volume_id),
            ("snapshot_id", snapshot_id),
            ("snapshot_retention", snapshot_retention),
        ):
            if value is not None:
                base[key] = value
        last_capacity: InsufficientCapacity | None = None
        for region in regions:
            sent_at = datetime.now(UTC)
            try:
                response = await self._call(
                    _Retry.UNSENT,
                    "POST",
                    R_VOLUMES,
                    action="create_volume",
                    app=app,
                    json={**base, "region": region},
                )
            except InsufficientCapacity as exc:
                log.info(
                    "no capacity for volume in %s; trying the next region",
                    region,
                    extra={"fly_app": app, "fly_region": region, "fly_request_id": exc.request_id},
                )
                last_capacity = exc
                continue
            except FlyError as exc:
                if not exc.ambiguous:
                    raise
                return await self._resolve_ambiguous_volume_create(app, name, region, sent_at, exc)
            return self._read(Volume, response, route=R_VOLUMES)
        assert last_capacity is not None
        raise InsufficientCapacity(
            f"no capacity for volume in any of {', '.join(regions)}: {last_capacity.message}",
            scope=last_capacity.scope,
            status=last_capacity.status,
            request_id=last_capacity.request_id,
            code=last_capacity.code,
            method="POST",
            route=R_VOLUMES,
        ) from last_capacity

    async def _resolve_ambiguous_volume_create(
        self, app: str, name: str, region: str, sent_at: datetime, cause: FlyError
    ) -> Volume:
        # Hand-written for the same reason as the machine case: the repeated request is a list,
        # the loop ends when the object is *found*, and "not found" ends in a decision.
        # Volume names are not unique on Fly, so only a free volume of that name and region
        # created around the time of our request counts.
        log.warning(
            "ambiguous volume create (%s); looking for it by name",
            type(cause).__name__,
            extra={"fly_app": app, "fly_region": region, "fly_request_id": cause.request_id},
        )
        not_before = sent_at - _VOLUME_RESOLVE_SKEW
        delay = self._config.create_resolve_delay
        deadline = time.monotonic() + self._config.volume_resolve_timeout
        looks = 0
        while looks == 0 or time.monotonic() < deadline:
            if looks:
                await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
                delay = min(delay * 2, self._config.retry.wait_max)
            looks += 1
            try:
                volumes = await self.list_volumes(app, name=name)
            except FlyError as exc:
                if not exc.retryable:
                    raise
                continue
            candidates = [
                v
                for v in volumes
                if v.region == region
                and not v.attached_machine_id
                and ((created := _parse_time(v.created_at)) is None or created >= not_before)
            ]
            if candidates:
                volume = max(candidates, key=lambda v: v.created_at or "")
                log.info(
                    "ambiguous volume create resolved: volume exists",
                    extra={"fly_app": app, "fly_volume_id": volume.id},
                )
                return volume
        raise AmbiguousCreate(
            f"volume create may or may not have happened ({cause.message}); no volume {name!r} "
            f"is visible in {region} after {looks} looks in {self._config.volume_resolve_timeout:g}s. "
            "Look for it again before creating.",
            cause=cause,
            status=cause.status,
            request_id=cause.request_id,
            method="POST",
            route=R_VOLUMES,
        )

    async def delete_volume(self, app: str, volume_id: str) -> bool:
        """Delete (soft-delete) the volume. True if this call deleted it, False if it was already
        gone. A volume still bound to a (recently destroyed) machine raises
        `Precondition(VOLUME_BOUND)`, retryable: try again later."""
        try:
            await self._call(
                _Retry.SAFE, "DELETE", R_VOLUME, action="delete_volume", app=app, object_id=volume_id
            )
        except NotFound:
            log.info("volume already gone", extra={"fly_app": app, "fly_volume_id": volume_id})
            return False
        return True

    async def extend_volume(self, app: str, volume_id: str, size_gb: int) -> ExtendVolumeResult:
        """Grow the volume to `size_gb` (Fly never shrinks). `needs_restart` says whether the
        machine must restart to see the space."""
        response = await self._call(
            _Retry.SAFE,
            "PUT",
            R_VOLUME_EXTEND,
            action="extend_volume",
            app=app,
            object_id=volume_id,
            json={"size_gb": size_gb},
        )
        return self._read(ExtendVolumeResult, response, route=R_VOLUME_EXTEND)


# --- one client per process ----------------------------------------------------------------------

_shared: FlyMachinesClient | None = None


def get_shared_client(config: FlyClientConfig) -> FlyMachinesClient:
    """The process-wide client (created on first use): every caller shares its connection pool
    and, more importantly, its rate-limit buckets. Asking with a different config is a bug."""
    global _shared
    if _shared is None:
        _shared = FlyMachinesClient(config)
    elif _shared.config != config:
        raise RuntimeError("the shared Fly client already exists with a different config")
    return _shared


async def close_shared_client() -> None:
    global _shared
    if _shared is not None:
        client, _shared = _shared, None
        await client.aclose()
