"""The `/v1` Fly Machines API: HTTP in, `MachineLifecycle`/`VolumeStore` calls, JSON out."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import errors
from .appsecrets import secret_json
from .auth import bare_token
from .faults import FLICKER_MODES, LIST_MODES, Fault
from .ids import IdFactory
from .machines import MachineLifecycle
from .model import REGIONS, Machine
from .render import app_json, events_json, lease_envelope, machine_json, snapshot_json, volume_json
from .volumes import VolumeStore

if TYPE_CHECKING:
    from .sim import FlySim

LEASE_NONCE_HEADER = "fly-machine-lease-nonce"
MAX_EVENTS = 50


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _ok() -> web.Response:
    return _json({"ok": True})


async def _body(request: web.Request, *, required: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise errors.bad_request("invalid_argument: request body is required")
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise errors.bad_request("invalid character in request body: not valid JSON") from None


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    if not isinstance(body, dict):
        raise errors.bad_request("json: cannot unmarshal into Go value of type an object")
    return body


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _owner(request: web.Request) -> str:
    return IdFactory.token_owner(bare_token(request.headers.get("Authorization")))


def _int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    text = raw[:-1] if raw.endswith("s") else raw
    try:
        return int(float(text))
    except ValueError:
        raise errors.invalid_argument(f"{name} must be a number of seconds") from None


class FlyRoutes:
    """Handlers of the `/v1` routes; all state lives in the simulator's world."""

    def __init__(self, sim: FlySim) -> None:
        self.sim = sim

    @property
    def machines(self) -> MachineLifecycle:
        return self.sim.machines

    @property
    def volumes(self) -> VolumeStore:
        return self.sim.volumes

    def register(self, app: web.Application) -> None:
        r = app.router
        m = "/v1/apps/{app}/machines/{id}"
        v = "/v1/apps/{app}/volumes/{vol}"
        r.add_get("/v1/apps", self.list_apps)
        r.add_post("/v1/apps", self.create_app)
        r.add_get("/v1/apps/{app}", self.show_app)
        r.add_delete("/v1/apps/{app}", self.delete_app)
        r.add_get("/v1/platform/regions", self.list_regions)
        r.add_get("/v1/apps/{app}/machines", self.list_machines)
        r.add_post("/v1/apps/{app}/machines", self.create_machine)
        r.add_get(m, self.show_machine)
        r.add_post(m, self.update_machine)
        r.add_delete(m, self.destroy_machine)
        r.add_post(m + "/start", self.start_machine)
        r.add_post(m + "/stop", self.stop_machine)
        r.add_post(m + "/restart", self.restart_machine)
        r.add_post(m + "/suspend", self.suspend_machine)
        r.add_post(m + "/signal", self.signal_machine)
        r.add_post(m + "/exec", self.exec_machine)
        r.add_post(m + "/cordon", self.cordon_machine)
        r.add_post(m + "/uncordon", self.uncordon_machine)
        r.add_get(m + "/wait", self.wait_machine)
        r.add_post(m + "/lease", self.acquire_lease)
        r.add_get(m + "/lease", self.show_lease)
        r.add_delete(m + "/lease", self.release_lease)
        r.add_get(m + "/metadata", self.show_metadata)
        r.add_put(m + "/metadata", self.replace_metadata)
        r.add_patch(m + "/metadata", self.replace_metadata)
        r.add_post(m + "/metadata/{key}", self.set_metadata)
        r.add_delete(m + "/metadata/{key}", self.delete_metadata)
        r.add_get(m + "/events", self.list_events)
        r.add_get(m + "/versions", self.list_versions)
        r.add_get("/v1/apps/{app}/secrets", self.list_secrets)
        r.add_post("/v1/apps/{app}/secrets", self.update_secrets)
        r.add_get("/v1/apps/{app}/secrets/{name}", self.show_secret)
        r.add_post("/v1/apps/{app}/secrets/{name}", self.set_secret)
        r.add_delete("/v1/apps/{app}/secrets/{name}", self.unset_secret)
        r.add_get("/v1/apps/{app}/volumes", self.list_volumes)
        r.add_post("/v1/apps/{app}/volumes", self.create_volume)
        r.add_get(v, self.show_volume)
        r.add_put(v, self.update_volume)
        r.add_post(v, self.update_volume)
        r.add_delete(v, self.delete_volume)
        r.add_put(v + "/extend", self.extend_volume)
        r.add_get(v + "/snapshots", self.list_snapshots)
        r.add_post(v + "/snapshots", self.create_snapshot)

    # -- faults that shape answers ---------------------------------------------------------------

    def _list_fault(self, request: web.Request) -> Fault | None:
        return self.sim.faults.pick(request.method, request.path, LIST_MODES)

    def _flicker(self, request: web.Request) -> None:
        """A 404 for a machine created in the fault's window (eventual consistency) [O]."""
        machine = self.sim.world.machines.get(request.match_info.get("id", ""))
        if machine is None or not self.sim.faults:
            return
        now = self.sim.world.now()

        def applies(fault: Fault) -> bool:
            return now - machine.created_at <= fault.window

        if self.sim.faults.pick(request.method, request.path, FLICKER_MODES, applies):
            raise errors.machine_not_found()

    def _volume_flicker(self, request: web.Request) -> None:
        """The same for a volume: one 404 while Fly's API settles (issue 18: "Fly's API does
        answer those"); `window` large makes it hit any volume, not only a new one [O]."""
        volume = self.sim.world.volumes.get(request.match_info.get("vol", ""))
        if volume is None or not self.sim.faults:
            return
        now = self.sim.world.now()

        def applies(fault: Fault) -> bool:
            return now - volume.created_at <= fault.window

        if self.sim.faults.pick(request.method, request.path, FLICKER_MODES, applies):
            raise errors.FlyError(404, "not_found: volume not found")

    def _recent_cutoff(self, fault: Fault | None) -> float | None:
        if fault is None or fault.mode != "stale_list":
            return None
        return self.sim.world.now() - fault.window

    # -- apps ----------------------------------------------------------------------------------

    async def list_apps(self, request: web.Request) -> web.Response:
        org = request.query.get("org_slug")
        world = self.sim.world
        apps = [a for a in world.apps.values() if not org or a.org_slug == org]
        listed = [
            {
                "id": a.id,
                "name": a.name,
                "machine_count": sum(1 for m in world.machines.values() if m.app == a.name and m.alive),
                "volume_count": sum(1 for vol in world.volumes.values() if vol.app == a.name),
                "network": a.network,
            }
            for a in apps
        ]
        return _json({"total_apps": len(listed), "apps": listed})

    async def create_app(self, request: web.Request) -> web.Response:
        body = await _object_body(request)
        name = body.get("name") or body.get("app_name")
        if not isinstance(name, str):
            raise errors.invalid_argument("app name is required")
        app = self.sim.world.create_app(name, body.get("org_slug"), body.get("network"))
        return _json({"id": app.id, "created_at": int(app.created_at * 1000)}, status=201)

    async def show_app(self, request: web.Request) -> web.Response:
        world = self.sim.world
        app = world.app(request.match_info["app"])
        machines = sum(1 for m in world.machines.values() if m.app == app.name and m.alive)
        volumes = sum(1 for vol in world.volumes.values() if vol.app == app.name and not vol.soft_deleted)
        return _json(app_json(app, machines, volumes))

    async def delete_app(self, request: web.Request) -> web.Response:
        world = self.sim.world
        name = request.match_info["app"]
        if name not in world.apps:
            raise errors.FlyError(404, "app not found")
        live = [m for m in world.machines.values() if m.app == name and m.alive]
        if not _flag(request, "force") and any(
            m.state not in ("stopped", "suspended", "failed", "created") for m in live
        ):
            raise errors.failed_precondition("app has running machines; stop them first or pass force=true")
        for machine in live:
            self.machines.begin_destroy(machine, source="user", jitter=True)
        del world.apps[name]
        return web.Response(status=202)

    async def list_regions(self, request: web.Request) -> web.Response:
        return _json({"Regions": [{"code": code, "name": code} for code in REGIONS]})

    # -- machines ------------------------------------------------------------------------------

    async def list_machines(self, request: web.Request) -> web.Response:
        query = request.query
        states = {s for part in query.getall("state", []) for s in part.split(",") if s}
        metadata = {
            key[len("metadata.") :]: value for key, value in query.items() if key.startswith("metadata.")
        }
        found = self.machines.list_machines(
            request.match_info["app"],
            region=query.get("region") or None,
            states=states or None,
            metadata=metadata or None,
            include_deleted=_flag(request, "include_deleted"),
        )
        fault = self._list_fault(request)
        if fault is not None and fault.mode == "empty_list":
            found = []
        cutoff = self._recent_cutoff(fault)
        if cutoff is not None:
            found = [machine for machine in found if machine.created_at < cutoff]
        summary = _flag(request, "summary")
        embedded = self.sim.world.settings.embedded_events
        now = self.sim.world.now()
        return _json([machine_json(mm, summary=summary, embedded_events=embedded, now=now) for mm in found])

    async def create_machine(self, request: web.Request) -> web.Response:
        body = await _object_body(request)
        machine = self.machines.create(request.match_info["app"], body, _owner(request))
        return self._with_nonce(machine)

    async def show_machine(self, request: web.Request) -> web.Response:
        self._flicker(request)
        machine = self.machines.get(request.match_info["app"], request.match_info["id"])
        embedded = self.sim.world.settings.embedded_events
        return _json(machine_json(machine, embedded_events=embedded, now=self.sim.world.now()))

    async def update_machine(self, request: web.Request) -> web.Response:
        self._flicker(request)
        body = await _object_body(request)
        machine = self.machines.update(
            request.match_info["app"],
            request.match_info["id"],
            request.headers.get(LEASE_NONCE_HEADER),
            body,
            _owner(request),
        )
        return self._with_nonce(machine)

    def _with_nonce(self, machine: Machine) -> web.Response:
        nonce, machine.nonce = machine.nonce, None
        embedded = self.sim.world.settings.embedded_events
        return _json(machine_json(machine, embedded_events=embedded, nonce=nonce, now=self.sim.world.now()))

    async def destroy_machine(self, request: web.Request) -> web.Response:
        self._flicker(request)
        force = _flag(request, "force") or _flag(request, "kill")
        self.machines.destroy(
            request.match_info["app"],
            request.match_info["id"],
            request.headers.get(LEASE_NONCE_HEADER),
            force,
        )
        return _ok()

    async def start_machine(self, request: web.Request) -> web.Response:
        self._flicker(request)
        result = self.machines.start(
            request.match_info["app"], request.match_info["id"], request.headers.get(LEASE_NONCE_HEADER)
        )
        return _json(result)

    async def stop_machine(self, request: web.Request) -> web.Response:
        self._flicker(request)
        body = await _body(request, required=False)
        self.machines.stop(
            request.match_info["app"], request.match_info["id"], request.headers.get(LEASE_NONCE_HEADER), body
        )
        return _ok()

    async def restart_machine(self, request: web.Request) -> web.Response:
        self._flicker(request)
        self.machines.restart(
            request.match_info["app"],
            request.match_info["id"],
            request.headers.get(LEASE_NONCE_HEADER),
            request.query.get("timeout"),
        )
        return _ok()

    async def suspend_machine(self, request: web.Request) -> web.Response:
        self._flicker(request)
        self.machines.suspend(
            request.match_info["app"], request.match_info["id"], request.headers.get(LEASE_NONCE_HEADER)
        )
        return _ok()

    async def signal_machine(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.machines.signal(request.match_info["app"], request.match_info["id"], body)
        return _ok()

    async def exec_machine(self, request: web.Request) -> web.Response:
        body = await _body(request)
        result = self.machines.exec(
            request.match_info["app"], request.match_info["id"], request.headers.get(LEASE_NONCE_HEADER), body
        )
        return _json(result)

    async def cordon_machine(self, request: web.Request) -> web.Response:
        self.machines.cordon(
            request.match_info["app"], request.match_info["id"], request.headers.get(LEASE_NONCE_HEADER), True
        )
        return _ok()

    async def uncordon_machine(self, request: web.Request) -> web.Response:
        self.machines.cordon(
            request.match_info["app"],
            request.match_info["id"],
            request.headers.get(LEASE_NONCE_HEADER),
            False,
        )
        return _ok()

    async def wait_machine(self, request: web.Request) -> web.Response:
        self._flicker(request)
        query = request.query
        states = [s for part in query.getall("state", []) for s in part.split(",") if s]
        version = query.get("version") or query.get("instance_id") or None
        timeout = _int_query(request, "timeout", 60)
        state, machine = await self.machines.wait(
            request.match_info["app"], request.match_info["id"], states, version, timeout
        )
        body: dict[str, Any] = {"ok": True, "state": state}
        if machine is not None:
            body["version"] = machine.instance_id
            if machine.events:
                body["event_id"] = machine.events[-1].id
        return _json(body)

    async def acquire_lease(self, request: web.Request) -> web.Response:
        body = await _body(request, required=False)
        body = body if isinstance(body, dict) else {}
        ttl: int | None = None
        if "ttl" in request.query:
            ttl = _int_query(request, "ttl", 0)
        elif body.get("ttl") is not None:
            ttl = errors.int_argument(body["ttl"], "ttl")
        lease = self.machines.acquire_lease(
            request.match_info["app"],
            request.match_info["id"],
            request.headers.get(LEASE_NONCE_HEADER),
            ttl,
            str(body.get("description") or ""),
            _owner(request),
        )
        return _json(lease_envelope(lease))

    async def show_lease(self, request: web.Request) -> web.Response:
        lease = self.machines.show_lease(request.match_info["app"], request.match_info["id"])
        # Only the holder sees the nonce: showing it to anyone would make the lock pointless [I].
        holder = request.headers.get(LEASE_NONCE_HEADER) == lease.nonce
        return _json(lease_envelope(lease, with_nonce=holder))

    async def release_lease(self, request: web.Request) -> web.Response:
        self.machines.release_lease(
            request.match_info["app"], request.match_info["id"], request.headers.get(LEASE_NONCE_HEADER)
        )
        return _json({"status": "success"})

    async def show_metadata(self, request: web.Request) -> web.Response:
        return _json(self.machines.metadata(request.match_info["app"], request.match_info["id"]))

    async def set_metadata(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.machines.set_metadata(
            request.match_info["app"], request.match_info["id"], request.match_info["key"], body
        )
        return web.Response(status=204)

    async def replace_metadata(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.machines.replace_metadata(request.match_info["app"], request.match_info["id"], body)
        return web.Response(status=204)

    async def delete_metadata(self, request: web.Request) -> web.Response:
        self.machines.delete_metadata(
            request.match_info["app"], request.match_info["id"], request.match_info["key"]
        )
        return web.Response(status=204)

    async def list_events(self, request: web.Request) -> web.Response:
        machine = self.machines.get(request.match_info["app"], request.match_info["id"])
        limit = min(max(_int_query(request, "limit", 20), 1), MAX_EVENTS)
        return _json(events_json(machine, limit))

    async def list_versions(self, request: web.Request) -> web.Response:
        machine = self.machines.get(request.match_info["app"], request.match_info["id"])
        return _json([{"version": v.version, "user_config": v.config} for v in reversed(machine.versions)])

    # -- secrets -------------------------------------------------------------------------------

    async def list_secrets(self, request: web.Request) -> web.Response:
        return _json([secret_json(s) for s in self.sim.secrets.list_secrets(request.match_info["app"])])

    async def show_secret(self, request: web.Request) -> web.Response:
        secret = self.sim.secrets.show(request.match_info["app"], request.match_info["name"])
        return _json(secret_json(secret))

    async def set_secret(self, request: web.Request) -> web.Response:
        body = await _object_body(request)
        version = self.sim.secrets.set_secret(
            request.match_info["app"], request.match_info["name"], body.get("value")
        )
        return _json({"version": version})

    async def unset_secret(self, request: web.Request) -> web.Response:
        version = self.sim.secrets.unset(request.match_info["app"], request.match_info["name"])
        return _json({"version": version})

    async def update_secrets(self, request: web.Request) -> web.Response:
        body = await _object_body(request)
        secrets, version = self.sim.secrets.update_many(request.match_info["app"], body.get("values"))
        return _json({"secrets": [secret_json(s) for s in secrets], "version": version})

    # -- volumes -------------------------------------------------------------------------------

    async def list_volumes(self, request: web.Request) -> web.Response:
        found = self.volumes.list_volumes(request.match_info["app"])
        fault = self._list_fault(request)
        if fault is not None and fault.mode == "empty_list":
            found = []
        cutoff = self._recent_cutoff(fault)
        if cutoff is not None:
            found = [volume for volume in found if volume.created_at < cutoff]
        return _json([volume_json(volume) for volume in found])

    async def create_volume(self, request: web.Request) -> web.Response:
        body = await _object_body(request)
        return _json(volume_json(self.volumes.create(request.match_info["app"], body)))

    async def show_volume(self, request: web.Request) -> web.Response:
        self._volume_flicker(request)
        return _json(volume_json(self.volumes.get(request.match_info["app"], request.match_info["vol"])))

    async def update_volume(self, request: web.Request) -> web.Response:
        self._volume_flicker(request)
        body = await _object_body(request)
        volume = self.volumes.update(request.match_info["app"], request.match_info["vol"], body)
        return _json(volume_json(volume))

    async def extend_volume(self, request: web.Request) -> web.Response:
        self._volume_flicker(request)
        body = await _object_body(request)
        volume, needs_restart = self.volumes.extend(
            request.match_info["app"], request.match_info["vol"], body
        )
        return _json({"volume": volume_json(volume), "needs_restart": needs_restart})

    async def delete_volume(self, request: web.Request) -> web.Response:
        self._volume_flicker(request)
        return _json(volume_json(self.volumes.delete(request.match_info["app"], request.match_info["vol"])))

    async def list_snapshots(self, request: web.Request) -> web.Response:
        volume = self.volumes.get(request.match_info["app"], request.match_info["vol"])
        return _json([snapshot_json(s) for s in volume.snapshots])

    async def create_snapshot(self, request: web.Request) -> web.Response:
        self.volumes.snapshot(request.match_info["app"], request.match_info["vol"])
        return web.Response(status=200)
