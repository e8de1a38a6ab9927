"""The `/_sim/` control API (architecture.md): faults, stats, timeline, capacity, reset, and
the per-machine levers for what flyd does on its own (exits, stuck boots, autostop, hosts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import errors

if TYPE_CHECKING:
    from .sim import FlySim


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not (await request.read()).strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise errors.bad_request("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise errors.bad_request("request body must be a JSON object")
    return body


class ControlRoutes:
    def __init__(self, sim: FlySim) -> None:
        self.sim = sim

    def register(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/_sim/faults", self.add_fault)
        r.add_get("/_sim/faults", self.list_faults)
        r.add_delete("/_sim/faults", self.clear_faults)
        r.add_delete("/_sim/faults/{fault}", self.remove_fault)
        r.add_get("/_sim/stats", self.stats)
        r.add_get("/_sim/reads", self.reads)
        r.add_get("/_sim/timeline", self.timeline)
        r.add_get("/_sim/world", self.world)
        r.add_post("/_sim/capacity", self.capacity)
        r.add_post("/_sim/hosts/fill", self.fill_host)
        r.add_post("/_sim/volumes/{id}/contents", self.write_volume)
        r.add_get("/_sim/volumes/{id}/contents", self.volume_contents)
        r.add_post("/_sim/reset", self.reset)
        r.add_post("/_sim/machines/{id}/exit", self.exit_machine)
        r.add_post("/_sim/machines/{id}/release", self.release_machine)
        r.add_post("/_sim/machines/{id}/autostop", self.autostop)
        r.add_post("/_sim/machines/{id}/autostart", self.autostart)
        r.add_post("/_sim/machines/{id}/host", self.host_status)

    async def add_fault(self, request: web.Request) -> web.Response:
        fault = self.sim.faults.add(await _json_body(request))
        return web.json_response(fault.to_json(), status=201)

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([fault.to_json() for fault in self.sim.faults.list()])

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.sim.clear_faults()
        return web.json_response({"ok": True})

    async def remove_fault(self, request: web.Request) -> web.Response:
        if not self.sim.remove_fault(request.match_info["fault"]):
            raise errors.FlyError(404, "fault not found")
        return web.json_response({"ok": True})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.stats())

    async def reads(self, request: web.Request) -> web.Response:
        """GET machine requests so far, per machine id."""
        return web.json_response({"machines": dict(self.sim.machine_reads)})

    async def world(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.world_snapshot())

    async def timeline(self, request: web.Request) -> web.Response:
        machine_id = request.query.get("machine")
        volume_id = request.query.get("volume")
        if volume_id and not machine_id:
            return web.json_response(self.sim.volume_timeline(volume_id))
        if not machine_id:
            raise errors.bad_request("machine (or volume) query parameter is required")
        return web.json_response(self.sim.timeline(machine_id))

    async def capacity(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if "org_max_machines" in body:
            self.sim.set_org_quota(body["org_max_machines"])
        region = body.get("region")
        if region is not None:
            self.sim.set_capacity(
                str(region),
                max_machines=body.get("max_machines"),
                max_volumes=body.get("max_volumes"),
                hosts=body.get("hosts"),
                host_cpus=body.get("host_cpus"),
                host_memory_mb=body.get("host_memory_mb"),
            )
        return web.json_response(self.sim.capacity())

    async def fill_host(self, request: web.Request) -> web.Response:
        """`{"host": id}` or `{"volume": id}` (its host), with `"full": true|false` (default true)."""
        body = await _json_body(request)
        volume = body.get("volume")
        host = self.sim.fill_host(
            str(body["host"]) if body.get("host") else None,
            volume_id=str(volume) if volume else None,
            full=body.get("full", True) is not False,
        )
        return web.json_response({"host": host, "full": body.get("full", True) is not False})

    async def write_volume(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        path, content = body.get("path"), body.get("content", "")
        if not isinstance(path, str) or not path:
            raise errors.bad_request("path is required")
        self.sim.write_volume(request.match_info["id"], path, str(content))
        return web.json_response({"ok": True})

    async def volume_contents(self, request: web.Request) -> web.Response:
        contents = self.sim.volume_contents(request.match_info["id"])
        if contents is None:
            raise errors.FlyError(404, "not_found: volume not found")
        return web.json_response(contents)

    async def reset(self, request: web.Request) -> web.Response:
        self.sim.reset()
        return web.json_response({"ok": True})

    async def exit_machine(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        self.sim.exit_machine(
            request.match_info["id"], errors.int_argument(body.get("exit_code", 0), "exit_code")
        )
        return web.json_response({"ok": True})

    async def release_machine(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "released": self.sim.release_stuck(request.match_info["id"])})

    async def autostop(self, request: web.Request) -> web.Response:
        self.sim.autostop(request.match_info["id"])
        return web.json_response({"ok": True})

    async def autostart(self, request: web.Request) -> web.Response:
        self.sim.autostart(request.match_info["id"])
        return web.json_response({"ok": True})

    async def host_status(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        self.sim.set_host_status(request.match_info["id"], str(body.get("status", "ok")))
        return web.json_response({"ok": True})
