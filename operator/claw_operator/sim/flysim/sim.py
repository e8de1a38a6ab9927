"""`FlySim`: the simulator as an object — its aiohttp server, the `/v1` API, the `/_sim/`
control API, and the same controls as Python methods for tests in the same event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from . import errors
from .appsecrets import AppSecrets
from .auth import bare_token
from .clock import Clock, LoopClock
from .control import ControlRoutes
from .faults import REQUEST_MODES, Fault, FaultBook
from .machines import MachineLifecycle
from .model import Machine
from .profiles import LatencyProfile, resolve_profile
from .ratelimit import ACTION_RULE as _ACTION_RULE
from .ratelimit import APP_DELETE_RULE, GET_MACHINE_RULE, RateLimiter
from .render import machine_json, volume_json
from .routes import FlyRoutes
from .volumes import VolumeStore
from .world import FlyWorld, WorldSettings

log = logging.getLogger(__name__)

# A `hang` fault holds the request this long at most, then drops the connection.
MAX_HANG_SECONDS = 600.0
# The route of GET machine, as aiohttp names it (`machine_reads` counts those requests).
MACHINE_ROUTE = "/v1/apps/{app}/machines/{id}"


class FlySim:
    """A Fly Machines API simulator.

    `profile` is `"fast"` (milliseconds; tests) or `"realistic"` (seconds with jitter; demo and
    benchmarks), or a `LatencyProfile`. `seed` fixes ids, durations and fault draws. `token`
    makes every other token a 401 (None: any token, but one must be sent). `rate_limit` turns
    on Fly's documented limits. `clock` defaults to the event loop's (use `ManualClock` to
    drive time by hand).
    """

    def __init__(
        self,
        *,
        profile: str | LatencyProfile = "fast",
        seed: int = 0,
        token: str | None = None,
        rate_limit: bool = False,
        auto_apps: bool = True,
        clock: Clock | None = None,
        settings: WorldSettings | None = None,
    ) -> None:
        self.profile = resolve_profile(profile)
        self.seed = seed
        self.token = bare_token(token)
        self.rate_limit = rate_limit
        self.clock: Clock = clock if clock is not None else LoopClock()
        self._settings = replace(settings or WorldSettings(), auto_apps=auto_apps)
        self.faults = FaultBook(seed)
        self.limiter = RateLimiter(self.clock)
        self.requests: Counter[tuple[str, str, int]] = Counter()
        # GET machine requests per machine id (`/_sim/reads`): a benchmark tells from it that every
        # instance was checked again after an operator restart.
        self.machine_reads: Counter[str] = Counter()
        self._hangs: set[asyncio.Future[None]] = set()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._new_world()

    def _new_world(self) -> None:
        self.world = FlyWorld(clock=self.clock, profile=self.profile, seed=self.seed, settings=self._settings)
        self.volumes = VolumeStore(self.world)
        self.secrets = AppSecrets(self.world)
        self.machines = MachineLifecycle(self.world, self.volumes, self.secrets)

    # -- server --------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        FlyRoutes(self).register(app)
        ControlRoutes(self).register(app)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port); returns the base URL (no `/v1`)."""
        if isinstance(self.clock, LoopClock):
            self.clock.bind(asyncio.get_running_loop())
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._base_url = f"http://{shown_host}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        self._release_hangs()
        for machine in list(self.world.machines.values()):
            for waiter in machine.waiters:
                if not waiter.future.done():
                    waiter.future.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("flysim is not started")
        return self._base_url

    async def __aenter__(self) -> FlySim:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- the middleware: request ids, auth, faults, rate limits, errors, stats --------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.path
        if request.match_info.route.resource is not None:
            route = request.match_info.route.resource.canonical
        status = 0
        try:
            response = await self._handle(request, handler, route)
            status = response.status
        except errors.FlyError as error:
            response = web.json_response(error.body(), status=error.status, headers=error.headers)
            status = error.status
        except web.HTTPException as http_error:
            # aiohttp's own 404/405 (no such route), as JSON like Fly's.
            response = web.json_response({"error": http_error.reason.lower()}, status=http_error.status)
            status = http_error.status
        except Exception as bug:
            # A simulator bug must still look like an API answer (JSON, request id), and be loud.
            log.exception("flysim: unhandled error on %s %s", request.method, request.path)
            response = web.json_response({"error": f"internal: {type(bug).__name__}: {bug}"}, status=500)
            status = 500
        finally:
            self.requests[(request.method, route, status)] += 1
            if route == MACHINE_ROUTE and request.method == "GET":
                self.machine_reads[request.match_info.get("id", "")] += 1
        now = self.world.now()
        response.headers["fly-request-id"] = self.world.ids.request_id(now, self._settings.default_region)
        response.headers["fly-trace-id"] = self.world.ids.trace_id()
        return response

    async def _handle(self, request: web.Request, handler: Any, route: str) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            response: web.StreamResponse = await handler(request)
            return response
        self._authenticate(request)
        fault = self.faults.pick(request.method, request.path, REQUEST_MODES) if self.faults else None
        if fault is not None and fault.mode != "silent_success":
            return await self._misbehave(request, fault)
        if self.rate_limit:
            self._check_rate_limit(request, route)
        if fault is None:
            response = await handler(request)
            return response
        # silent_success: the change is committed, then the answer says it failed [C].
        with contextlib.suppress(errors.FlyError):
            await handler(request)
        return self._fault_response(fault)

    def _authenticate(self, request: web.Request) -> None:
        token = bare_token(request.headers.get("Authorization"))
        if token is None or (self.token is not None and token != self.token):
            raise errors.unauthorized()

    def _check_rate_limit(self, request: web.Request, route: str) -> None:
        info = request.match_info
        identifier = info.get("id") or info.get("vol") or info.get("app") or "-"
        rule = _ACTION_RULE
        if request.method == "GET" and route == "/v1/apps/{app}/machines/{id}":
            rule = GET_MACHINE_RULE
        elif request.method == "DELETE" and route == "/v1/apps/{app}":
            rule, identifier = APP_DELETE_RULE, "org"
        wait = self.limiter.take(f"{request.method} {route}", identifier, rule)
        if wait is not None:
            raise errors.FlyError(
                429, "rate limit exceeded", headers={"Retry-After": RateLimiter.retry_after_header(wait)}
            )

    def _fault_response(self, fault: Fault) -> web.StreamResponse:
        answer = fault.answer()
        if fault.body == "html":
            return web.Response(
                text=fault.html_body(), status=answer.status, content_type="text/html", headers=answer.headers
            )
        return web.json_response(answer.body(), status=answer.status, headers=answer.headers)

    async def _misbehave(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.mode == "error":
            return self._fault_response(fault)
        if fault.mode == "hang":
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._hangs.add(future)
            try:
                await asyncio.wait_for(future, MAX_HANG_SECONDS)
            except (TimeoutError, asyncio.CancelledError):
                pass
            finally:
                self._hangs.discard(future)
        self._drop_connection(request)
        # Nothing reaches the client; the response object only satisfies aiohttp.
        return web.Response(status=499)

    @staticmethod
    def _drop_connection(request: web.Request) -> None:
        transport = request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0 turns the close into a TCP RST: the client sees "connection reset".
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                log.debug("could not set SO_LINGER; the drop will be a plain close")
        transport.abort()

    def _release_hangs(self) -> None:
        for future in list(self._hangs):
            if not future.done():
                future.set_result(None)

    # -- control API (also served under /_sim/) ------------------------------------------------

    def add_fault(
        self,
        path: str,
        *,
        method: str = "*",
        mode: str = "error",
        status: int | None = None,
        count: int | None = 1,
        probability: float = 1.0,
        retry_after: float | None = None,
        body: str = "json",
        message: str | None = None,
        window: float = 5.0,
    ) -> str:
        """Queue a fault (see `faults.py`); returns its id."""
        fault = self.faults.add(
            {
                "method": method,
                "path": path,
                "mode": mode,
                "status": status,
                "count": count,
                "probability": probability,
                "retry_after": retry_after,
                "body": body,
                "message": message,
                "window": window,
            }
        )
        return fault.id

    def remove_fault(self, fault_id: str) -> bool:
        return self.faults.remove(fault_id)

    def clear_faults(self) -> None:
        self.faults.clear()
        self._release_hangs()

    def set_capacity(
        self,
        region: str,
        *,
        max_machines: int | None = None,
        max_volumes: int | None = None,
        hosts: int | None = None,
        host_cpus: int | None = None,
        host_memory_mb: int | None = None,
    ) -> None:
        self.world.set_capacity(
            region,
            max_machines=max_machines,
            max_volumes=max_volumes,
            hosts=hosts,
            host_cpus=host_cpus,
            host_memory_mb=host_memory_mb,
        )

    def fill_host(
        self, host_id: str | None = None, *, volume_id: str | None = None, full: bool = True
    ) -> str:
        """Mark a host full (other tenants took it: nothing more fits) or free again; the host
        by its id, or the host `volume_id` lives on. Returns the host's id."""
        return self.world.fill_host(host_id, volume_id=volume_id, full=full)

    def write_volume(self, volume_id: str, path: str, content: str) -> None:
        """Write a file on a volume (what a machine would do): forks copy it."""
        volume = self.world.volumes.get(volume_id)
        if volume is None:
            raise errors.FlyError(404, "not_found: volume not found")
        volume.contents[path] = content

    def volume_contents(self, volume_id: str) -> dict[str, str] | None:
        volume = self.world.volumes.get(volume_id)
        return dict(volume.contents) if volume is not None else None

    def set_org_quota(self, max_machines: int | None) -> None:
        self.world.settings.org_max_machines = max_machines

    def capacity(self) -> dict[str, Any]:
        return {
            "org_max_machines": self.world.settings.org_max_machines,
            "regions": {
                name: {
                    "max_machines": cap.max_machines,
                    "max_volumes": cap.max_volumes,
                    "live_machines": self.world.live_machines_per_region[name],
                    "hosts": [
                        {
                            "id": h.id,
                            "zone": h.zone,
                            "cpus": h.cpus,
                            "memory_mb": h.memory_mb,
                            "used_cpus": h.used_cpus,
                            "used_memory_mb": h.used_memory_mb,
                            "status": h.status,
                            "full": h.full,
                        }
                        for h in cap.hosts
                    ],
                }
                for name, cap in sorted(self.world.regions.items())
            },
        }

    def stats(self) -> dict[str, Any]:
        machine_states = Counter(m.state for m in self.world.machines.values())
        volume_states = Counter(v.state for v in self.world.volumes.values())
        return {
            "requests": [
                {"method": method, "route": route, "status": status, "count": count}
                for (method, route, status), count in sorted(self.requests.items())
            ],
            "machines": dict(sorted(machine_states.items())),
            "volumes": dict(sorted(volume_states.items())),
            "rate_limited": self.limiter.rejected,
        }

    def world_snapshot(self) -> dict[str, Any]:
        """Every machine (destroyed ones too, while remembered) and volume, compactly, as flysim
        holds them: what a harness checks invariants against without going through `/v1`,
        where its own reads would meet the faults it injected."""
        pools = (self.world.machines.values(), self.world.graveyard.values())
        return {
            "time": self.world.now(),
            "machines": [
                {
                    "id": m.id,
                    "app": m.app,
                    "name": m.name,
                    "state": m.state,
                    "region": m.region,
                    "instance_id": m.instance_id,
                    "image": (m.config or {}).get("image"),
                    "metadata": dict((m.config or {}).get("metadata") or {}),
                    "volume_id": m.volume_id,
                    "created_at": m.created_at,
                    "updated_at": m.updated_at,
                }
                for pool in pools
                for m in pool
            ],
            "volumes": [
                {
                    "id": v.id,
                    "app": v.app,
                    "name": v.name,
                    "state": v.state,
                    "region": v.region,
                    "size_gb": v.size_gb,
                    "attached_machine_id": v.attached_machine_id,
                    "claimed_by": v.claimed_by,
                    "created_at": v.created_at,
                    "deleted_at": v.deleted_at,
                }
                for v in self.world.volumes.values()
            ],
        }

    def volume_timeline(self, volume_id: str) -> list[dict[str, Any]]:
        """The volume's recorded states; `elapsed` counts from the create request."""
        volume = self.world.volumes.get(volume_id)
        if volume is None:
            raise errors.FlyError(404, "not_found: volume not found")
        return [_timeline_entry(change.state, change.at, volume.created_at) for change in volume.timeline]

    def timeline(self, machine_id: str) -> list[dict[str, Any]]:
        machine = self._machine(machine_id)
        return [
            {
                **_timeline_entry(change.state, change.at, machine.created_at),
                "instance_id": change.instance_id,
            }
            for change in machine.timeline
        ]

    def reset(self) -> None:
        """Forget everything: apps, machines, volumes, faults, stats, rate-limit buckets."""
        self.clear_faults()
        self.requests.clear()
        self.machine_reads.clear()
        self.limiter.clear()
        self.faults = FaultBook(self.seed)
        self._new_world()

    # -- what flyd does on its own -------------------------------------------------------------

    def _machine(self, machine_id: str) -> Machine:
        machine = self.world.machines.get(machine_id) or self.world.graveyard.get(machine_id)
        if machine is None:
            raise errors.machine_not_found()
        return machine

    def exit_machine(self, machine_id: str, exit_code: int = 0) -> None:
        """The machine's main process exits (restart policy and auto_destroy apply)."""
        self.machines.exit_process(self._machine(machine_id), exit_code)

    def release_stuck(self, machine_id: str) -> bool:
        """Let a machine stuck in `created`/`replacing` (`sim-boot-stuck`) carry on booting."""
        return self.machines.release_stuck(self._machine(machine_id))

    def autostop(self, machine_id: str) -> None:
        self.machines.autostop(self._machine(machine_id))

    def autostart(self, machine_id: str) -> None:
        self.machines.autostart(self._machine(machine_id))

    def set_host_status(self, machine_id: str, status: str) -> None:
        self.machines.set_host_status(self._machine(machine_id), status)

    # -- direct inspection (tests) -------------------------------------------------------------

    def list_machines(self, app: str | None = None, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        pools = [self.world.machines.values()] + ([self.world.graveyard.values()] if include_deleted else [])
        return [machine_json(m) for pool in pools for m in pool if app is None or m.app == app]

    def get_machine(self, machine_id: str) -> dict[str, Any] | None:
        machine = self.world.machines.get(machine_id)
        return machine_json(machine) if machine else None

    def list_volumes(self, app: str | None = None) -> list[dict[str, Any]]:
        return [volume_json(v) for v in self.world.volumes.values() if app is None or v.app == app]

    def get_volume(self, volume_id: str) -> dict[str, Any] | None:
        volume = self.world.volumes.get(volume_id)
        return volume_json(volume) if volume else None


def _timeline_entry(state: str, at: float, created_at: float) -> dict[str, Any]:
    """One recorded state of a machine or volume; `elapsed` counts from its create request."""
    return {
        "state": state,
        "at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "time": at,
        "elapsed": round(at - created_at, 6),
    }
