"""Machines: create, update, start/stop/suspend/restart, destroy, leases, metadata, waits.

Every call is answered from the state at the moment it arrives; what follows (pull, boot,
stop, destroy, ...) runs on the clock as a chain of steps, through Fly's transient states [D].
Durations of steps a user asked for are drawn when the request is accepted, so a seed
reproduces the run; steps flyd takes on its own (exits, restarts by policy) use the profile's
mean, so they draw nothing.
"""

from __future__ import annotations

import asyncio
import copy
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from . import errors
from .appsecrets import AppSecrets
from .model import (
    SETTLED_STATES,
    WAITABLE_STATES,
    Host,
    Lease,
    Machine,
    MachineVersion,
    StateWaiter,
    Volume,
)
from .volumes import VolumeStore
from .world import FlyWorld, Step

SENTINEL_BOOT_FAIL = "sim-boot-fail"
SENTINEL_BOOT_STUCK = "sim-boot-stuck"
SENTINEL_EXIT = "sim-exit"
# `sim-exit-<seconds>` (`sim-exit-2`, `sim-exit-0.5`): exits that long after each start.
_SENTINEL_EXIT_AFTER = re.compile(r"^sim-exit-(\d+(\.\d+)?)$")

RUNNING_STATES = frozenset({"started", "starting", "restarting"})
MAX_WAIT_SECONDS = 60
INSUFFICIENT_MEMORY = (
    "could not reserve resource for machine: insufficient memory available to fulfill request"
)
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
# `autostop` accepts false|true|"off"|"stop"|"suspend"; Fly stores false, true or "suspend" [D].
_AUTOSTOP: dict[object, object] = {"off": False, "stop": True}
_SIGNALS = {"SIGINT": 2, "SIGKILL": 9, "SIGTERM": 15, "SIGQUIT": 3, "SIGHUP": 1, "SIGUSR1": 10, "SIGUSR2": 12}


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_tag(image: str) -> str:
    """The tag of an image reference (`registry:5000/repo:tag@sha` -> `tag`)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def image_ref(image: str, digest: str) -> dict[str, Any]:
    name = image.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker-hub-mirror.fly.io", name if "/" in name else f"library/{name}"
    repository = path.rsplit(":", 1)[0] if ":" in path.rsplit("/", 1)[-1] else path
    return {
        "registry": registry,
        "repository": repository,
        "tag": image_tag(image),
        "digest": digest,
        "labels": {},
    }


def exits_on_its_own(tag: str) -> bool:
    """The sentinel images whose process exits after each start."""
    return tag == SENTINEL_EXIT or _SENTINEL_EXIT_AFTER.match(tag) is not None


def host_reservation(config: dict[str, Any]) -> tuple[int, int]:
    """(dedicated cpus, memory_mb) a running machine holds on its host.

    The guest is the `size` preset or `guest`, default shared-cpu-1x [D]. Memory is what runs
    out on Fly hosts ("insufficient memory available") [O]; shared vCPUs are time-sliced and
    oversubscribed, so only `performance` cpus are held [I].
    """
    size, guest = config.get("size"), config.get("guest")
    if size and guest:
        raise errors.invalid_argument("cannot specify both config.size and config.guest")
    if size:
        match = re.fullmatch(r"(shared-cpu|performance)-(\d+)x", str(size))
        if not match:
            raise errors.invalid_argument(f"unknown machine size {size!r}")
        cpus = int(match.group(2))
        if match.group(1) == "shared-cpu":
            return 0, cpus * 256
        return cpus, cpus * 2048
    if isinstance(guest, dict):
        try:
            cpus = int(guest.get("cpus") or 1)
            memory_mb = int(guest.get("memory_mb") or 256 * cpus)
        except (TypeError, ValueError):
            raise errors.invalid_argument("guest.cpus and guest.memory_mb must be integers") from None
        if cpus < 1 or memory_mb < 1:
            raise errors.invalid_argument("guest.cpus and guest.memory_mb must be positive")
        return (cpus if guest.get("cpu_kind") == "performance" else 0), memory_mb
    return 0, 256


def normalize_config(config: Any) -> dict[str, Any]:
    """Validate a MachineConfig and add the server's defaults (`init: {}`, `dns: {}`) [D].

    Unknown fields round-trip unchanged: flysim keeps whatever the client sent.
    """
    if not isinstance(config, dict):
        raise errors.bad_request(
            "json: cannot unmarshal into Go struct field .config of type api.MachineConfig"
        )
    image = config.get("image")
    if not isinstance(image, str) or not image.strip():
        raise errors.invalid_argument("config.image is required")
    mounts = config.get("mounts") or []
    if not isinstance(mounts, list):
        raise errors.bad_request(
            "json: cannot unmarshal into Go struct field .mounts of type []api.MachineMount"
        )
    if len(mounts) > 1:
        # At most one mount per machine; more has produced 400 [D][O].
        raise errors.invalid_argument("machines can only have one mount")
    for mount in mounts:
        if not isinstance(mount, dict) or not mount.get("volume") or not mount.get("path"):
            raise errors.invalid_argument("each mount needs a volume and a path")
    normalized = copy.deepcopy(config)
    for service in normalized.get("services") or []:
        if isinstance(service, dict) and "autostop" in service:
            service["autostop"] = _AUTOSTOP.get(service["autostop"], service["autostop"])
    normalized.setdefault("init", {})
    normalized.setdefault("dns", {})
    host_reservation(normalized)
    return normalized


def mounted_volume_id(config: dict[str, Any]) -> str | None:
    mounts = config.get("mounts") or []
    return str(mounts[0]["volume"]) if mounts else None


class MachineLifecycle:
    def __init__(self, world: FlyWorld, volumes: VolumeStore, secrets: AppSecrets) -> None:
        self.world = world
        self.volumes = volumes
        self.secrets = secrets

    # -- lookups -------------------------------------------------------------------------------

    def _find(self, app: str, machine_id: str) -> Machine | None:
        machine = self.world.machines.get(machine_id)
        if machine is None or machine.app != app:
            return None
        return machine

    def get(self, app: str, machine_id: str) -> Machine:
        """What GET sees: `destroyed` during its window, 404 after; 404 right after create
        while the profile's `not_found_after_create` window lasts [O]."""
        self.world.app(app)
        machine = self._find(app, machine_id)
        if machine is None or self._invisible_after_create(machine):
            raise errors.machine_not_found()
        return machine

    def _invisible_after_create(self, machine: Machine) -> bool:
        window = self.world.profile.not_found_after_create
        return window > 0 and self.world.now() - machine.created_at < window

    def _mutable(self, app: str, machine_id: str, nonce: str | None, *, gated: bool = True) -> Machine:
        """A machine a mutation may act on: 404 once destroyed, 409 while someone else leases it."""
        machine = self.get(app, machine_id)
        if machine.state == "destroyed":
            raise errors.machine_not_found()
        if gated:
            self._check_lease(machine, nonce)
        return machine

    def _check_host(self, machine: Machine) -> None:
        if machine.host.status != "ok":
            raise errors.unavailable(f"host for machine {machine.id} is unreachable")

    def list_machines(
        self,
        app: str,
        *,
        region: str | None = None,
        states: set[str] | None = None,
        metadata: dict[str, str] | None = None,
        include_deleted: bool = False,
    ) -> list[Machine]:
        self.world.app(app)
        pools = [self.world.machines.values()]
        if include_deleted:
            pools.append(self.world.graveyard.values())
        found = []
        for pool in pools:
            for machine in pool:
                if machine.app != app:
                    continue
                if machine.state == "destroyed" and not include_deleted:
                    continue
                if region and machine.region != region:
                    continue
                if states and machine.state not in states:
                    continue
                if metadata:
                    tags = machine.config.get("metadata") or {}
                    if any(tags.get(key) != value for key, value in metadata.items()):
                        continue
                found.append(machine)
        return found

    # -- create --------------------------------------------------------------------------------

    def create(self, app: str, body: dict[str, Any], owner: str) -> Machine:
        world = self.world
        world.app(app)
        config = normalize_config(body.get("config"))
        cpus, memory_mb = host_reservation(config)
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise errors.bad_request("json: cannot unmarshal into Go struct field .name of type string")
        if name and any(m.app == app and m.name == name and m.alive for m in world.machines.values()):
            raise errors.FlyError(
                409, f"already_exists: a machine named {name!r} already exists", code="name_taken"
            )
        world.check_org_quota()
        self.secrets.require_version(app, body.get("min_secrets_version"))
        skip_launch = bool(body.get("skip_launch"))

        volume_id = mounted_volume_id(config)
        volume: Volume | None = None
        if volume_id is not None:
            volume = self.volumes.get(app, volume_id)
            region = str(body.get("region") or volume.region)
            self.volumes.check_mountable(volume, region, None)
            host = volume.host
            if not host.fits(cpus, memory_mb):
                raise errors.failed_precondition(
                    f"insufficient resources to create new machine with existing volume '{volume.id}'"
                )
        else:
            region, host = self._place(body.get("region"), cpus, memory_mb)

        now = world.now()
        ids = world.ids
        machine = Machine(
            id=ids.machine_id(),
            app=app,
            name=name or ids.machine_name(),
            region=region,
            host=host,
            config=config,
            instance_id=ids.version(now),
            state="created",
            created_at=now,
            updated_at=now,
            private_ip=ids.private_ip(),
            image_ref=image_ref(config["image"], ids.digest()),
            reserved_cpus=cpus,
            reserved_memory_mb=memory_mb,
            volume_id=volume.id if volume else None,
        )
        machine.versions.append(MachineVersion(machine.instance_id, config))
        world.machines[machine.id] = machine
        world.live_machines_per_region[region] += 1
        if volume is not None:
            self.volumes.claim(volume, machine.id, machine.instance_id)
        lease_ttl = body.get("lease_ttl")
        if lease_ttl:
            machine.lease = self._new_lease(machine, owner, errors.int_argument(lease_ttl, "lease_ttl"), "")
            machine.nonce = machine.lease.nonce
        world.set_state(machine, "created", "launch", "user")

        prepare = world.pacer.draw("prepare")
        if skip_launch:
            # Start is refused while the rootfs is still being prepared [O].
            machine.start_ready_at = now + prepare
        else:
            world.reserve(machine)
            machine.start_ready_at = math.inf
            self._launch(machine, first_delay=prepare, source="user")
        return machine

    def _place(self, requested: Any, cpus: int, memory_mb: int) -> tuple[str, Host]:
        world = self.world
        candidates = world.candidate_regions(str(requested) if requested else None)
        for region in candidates:
            capacity = world.region(region)
            if (
                capacity.max_machines is not None
                and world.live_machines_per_region[region] >= capacity.max_machines
            ):
                continue
            fitting = [h for h in capacity.hosts if h.status == "ok" and h.fits(cpus, memory_mb)]
            if fitting:
                return region, min(fitting, key=lambda h: (h.used_memory_mb, h.used_cpus))
        raise errors.FlyError(
            412, f"no capacity available in {','.join(candidates)}", code="insufficient_capacity"
        )

    def _launch(self, machine: Machine, *, first_delay: float, source: str) -> None:
        """created|stopped|... -> starting -> started (or failed/stuck per sentinel image)."""
        world = self.world
        tag = image_tag(machine.config["image"])
        boot = world.pacer.draw("boot") if source == "user" else world.pacer.exact("boot")
        if tag == SENTINEL_BOOT_FAIL:
            steps: list[Step] = [(first_delay, "starting", None, source), (boot, "failed", "exit", "flyd")]
            world.schedule(machine, steps)
            return
        steps = [(first_delay, "starting", None, source), (boot, "started", "start", "flyd")]
        then = self._after_started(machine) if exits_on_its_own(tag) else None
        if tag == SENTINEL_BOOT_STUCK:
            world.park(machine, steps, then)
        else:
            world.schedule(machine, steps, then)

    def _after_started(self, machine: Machine) -> Callable[[], None]:
        """For `sim-exit` (and `sim-exit-<seconds>`): once started, the process exits on its own
        after a moment (or after exactly that many seconds), at each start."""
        tag = image_tag(machine.config["image"])
        after = _SENTINEL_EXIT_AFTER.match(tag)
        delay = float(after.group(1)) if after else self.world.pacer.exact("sentinel_exit")

        def exit_soon() -> None:
            def exit_now() -> None:
                machine.pending = None
                if machine.state == "started":
                    self.exit_process(machine, exit_code=0)

            machine.pending = self.world.clock.call_later(delay, exit_now)

        return exit_soon

    # -- start, stop, suspend, restart -----------------------------------------------------------

    def start(self, app: str, machine_id: str, nonce: str | None) -> dict[str, Any]:
        world = self.world
        machine = self._mutable(app, machine_id, nonce)
        self._check_host(machine)
        previous = machine.state
        now = world.now()
        going_down = {"stopped": "stopping", "suspended": "suspending", "destroyed": "destroying"}
        if previous in RUNNING_STATES and machine.heading in going_down:
            # A stop was accepted and has not shown yet: flyd is already stopping it [I].
            raise errors.failed_precondition(
                f"unable to start machine from current state: '{going_down[machine.heading]}'"
            )
        if previous in RUNNING_STATES:
            # Already on its way up: Fly answers without doing anything [I].
            return {"previous_state": previous, "migrated": False, "new_host": ""}
        if previous == "replacing":
            raise errors.failed_precondition("machine getting replaced, refusing to start")
        if previous in ("stopping", "suspending", "destroying"):
            raise errors.failed_precondition(f"unable to start machine from current state: '{previous}'")
        if previous == "created" and (
            machine.pending is not None or machine.parked is not None or now < machine.start_ready_at
        ):
            # Still being prepared (image pull, rootfs) [O].
            raise errors.failed_precondition("unable to start machine from current state: 'created'")
        if previous == "stopped" and now < machine.still_active_until:
            raise errors.failed_precondition("machine still active, refusing to start")
        self._reserve_or_409(machine)
        if previous == "created":
            machine.start_ready_at = math.inf
        self._launch(machine, first_delay=world.pacer.draw("ack"), source="user")
        return {"previous_state": previous, "migrated": False, "new_host": ""}

    def _reserve_or_409(self, machine: Machine) -> None:
        if not machine.reserved and not machine.host.fits(machine.reserved_cpus, machine.reserved_memory_mb):
            raise errors.FlyError(
                409,
                INSUFFICIENT_MEMORY,
            )
        self.world.reserve(machine)

    def stop(self, app: str, machine_id: str, nonce: str | None, body: Any) -> None:
        if body is not None:
            if not isinstance(body, dict) or not isinstance(body.get("signal", ""), str | int):
                raise errors.bad_request("json: cannot unmarshal into Go value of type main.stopRequest")
            timeout = body.get("timeout")
            if timeout is not None and not (
                isinstance(timeout, int | float) or (isinstance(timeout, str) and _GO_DURATION.match(timeout))
            ):
                raise errors.bad_request(f"time: invalid duration {timeout!r}")
        world = self.world
        machine = self._mutable(app, machine_id, nonce)
        self._check_host(machine)
        state = machine.state
        if state in RUNNING_STATES or (state == "created" and machine.reserved):
            world.schedule(
                machine,
                [
                    (world.pacer.draw("ack"), "stopping", None, "user"),
                    (world.pacer.draw("stop"), "stopped", "stop", "user"),
                ],
            )
        elif state == "suspended":
            # Stopping a suspended machine throws its snapshot away [D].
            world.schedule(machine, [(world.pacer.draw("ack"), "stopped", "stop", "user")])
        elif state == "replacing":
            raise errors.failed_precondition("unable to stop machine from current state: 'replacing'")
        # stopped, stopping, failed, created-not-launched: nothing to stop [I].

    def suspend(self, app: str, machine_id: str, nonce: str | None) -> None:
        self._from_started(app, machine_id, nonce, "suspend", "suspending", "suspended")

    def restart(self, app: str, machine_id: str, nonce: str | None, timeout: str | None) -> None:
        if timeout is not None and not (timeout.isdigit() or _GO_DURATION.match(timeout)):
            raise errors.bad_request(f"time: invalid duration {timeout!r}")
        self._from_started(app, machine_id, nonce, "restart", "restarting", "started")

    def _from_started(
        self, app: str, machine_id: str, nonce: str | None, verb: str, passing: str, final: str
    ) -> None:
        """Suspend or restart: only a started machine, through `passing` to `final` (the event
        and the latency step are named `verb`)."""
        world = self.world
        machine = self._mutable(app, machine_id, nonce)
        self._check_host(machine)
        if machine.state != "started":
            raise errors.failed_precondition(
                f"unable to {verb} machine from current state: '{machine.state}'"
            )
        world.schedule(
            machine,
            [
                (world.pacer.draw("ack"), passing, None, "user"),
                (world.pacer.draw(verb), final, verb, "user"),
            ],
        )

    def signal(self, app: str, machine_id: str, body: Any) -> None:
        machine = self._mutable(app, machine_id, None, gated=False)
        signal = body.get("signal") if isinstance(body, dict) else None
        if isinstance(signal, str) and signal.upper() in _SIGNALS:
            number = _SIGNALS[signal.upper()]
        elif isinstance(signal, int) and not isinstance(signal, bool) and 0 < signal < 32:
            number = signal
        else:
            raise errors.invalid_argument(f"invalid signal {signal!r}")
        if machine.state == "started":
            self.exit_process(machine, exit_code=128 + number)

    def exec(self, app: str, machine_id: str, nonce: str | None, body: Any) -> dict[str, Any]:
        machine = self._mutable(app, machine_id, nonce)
        if not isinstance(body, dict) or not (body.get("command") or body.get("cmd")):
            raise errors.invalid_argument("command is required")
        if machine.state != "started":
            raise errors.failed_precondition(f"machine is not running (currently {machine.state})")
        return {"exit_code": 0, "exit_signal": 0, "stdout": "", "stderr": ""}

    def cordon(self, app: str, machine_id: str, nonce: str | None, cordoned: bool) -> None:
        machine = self._mutable(app, machine_id, nonce)
        machine.cordoned = cordoned

    # -- exits, restart policy, autostart/autostop (flyd's own changes) ------------------------------

    def exit_process(self, machine: Machine, exit_code: int) -> None:
        """The main process exited: stopped, then restart policy or auto_destroy [D]."""
        if machine.state != "started":
            raise errors.failed_precondition(f"machine is not running (currently {machine.state})")
        world = self.world
        world.cancel_pending(machine)
        world.set_state(machine, "stopped")
        world.record_event(
            machine, "exit", "stopped", "flyd",
            {"exit_event": {"exit_code": exit_code, "oom_killed": False, "requested_stop": False}},
        )  # fmt: skip
        restart = machine.config.get("restart") or {}
        policy = restart.get("policy") or "on-failure"
        retries = restart.get("max_retries")
        max_retries = retries if isinstance(retries, int) and retries > 0 else 10
        again = policy == "always" or (
            policy == "on-failure" and exit_code != 0 and machine.on_failure_restarts < max_retries
        )
        if again and machine.host.fits(machine.reserved_cpus, machine.reserved_memory_mb):
            machine.on_failure_restarts += 1
            world.reserve(machine)
            self._launch(machine, first_delay=world.pacer.exact("ack"), source="flyd")
        elif machine.config.get("auto_destroy"):
            self.begin_destroy(machine, source="flyd", jitter=False)

    def autostop(self, machine: Machine) -> None:
        services = machine.config.get("services") or []
        modes = [s.get("autostop") for s in services if isinstance(s, dict)]
        if not any(mode is True or mode == "suspend" for mode in modes):
            raise errors.failed_precondition("autostop is not enabled in this machine's services")
        if machine.state != "started":
            raise errors.failed_precondition(f"machine is not running (currently {machine.state})")
        pacer = self.world.pacer
        if "suspend" in modes:
            steps: list[Step] = [
                (pacer.exact("ack"), "suspending", None, "flyd"),
                (pacer.exact("suspend"), "suspended", "suspend", "flyd"),
            ]
        else:
            steps = [
                (pacer.exact("ack"), "stopping", None, "flyd"),
                (pacer.exact("stop"), "stopped", "stop", "flyd"),
            ]
        self.world.schedule(machine, steps)

    def autostart(self, machine: Machine) -> None:
        services = machine.config.get("services") or []
        if not any(isinstance(s, dict) and s.get("autostart") is True for s in services):
            raise errors.failed_precondition("autostart is not enabled in this machine's services")
        if machine.state not in ("stopped", "suspended"):
            raise errors.failed_precondition(f"machine is not stopped (currently {machine.state})")
        self._reserve_or_409(machine)
        self._launch(machine, first_delay=self.world.pacer.exact("ack"), source="flyd")

    def release_stuck(self, machine: Machine) -> bool:
        return self.world.unpark(machine)

    def set_host_status(self, machine: Machine, status: str) -> None:
        """Host failure: `host_status` unreachable, mutations 503, destroys hang in `destroying` [O]."""
        if status not in ("ok", "unreachable", "unknown"):
            raise errors.invalid_argument("host_status must be ok, unreachable or unknown")
        host = machine.host
        host.status = status
        if status == "ok":
            for other in list(self.world.machines.values()):
                if other.host is host and other.destroy_blocked:
                    other.destroy_blocked = False
                    self.begin_destroy(other, source="flyd", jitter=False, already_destroying=True)

    # -- update --------------------------------------------------------------------------------

    def update(
        self, app: str, machine_id: str, nonce: str | None, body: dict[str, Any], owner: str
    ) -> Machine:
        world = self.world
        machine = self._mutable(app, machine_id, nonce)
        self._check_host(machine)
        if machine.state in ("replacing", "updating"):
            raise errors.aborted("machine is replacing: concurrent update in progress")
        if machine.state == "destroying":
            raise errors.failed_precondition("machine is being destroyed")
        current_version = body.get("current_version")
        if current_version and current_version != machine.instance_id:
            raise errors.FlyError(
                409,
                f"current_version mismatch: machine is at version {machine.instance_id}, "
                f"not {current_version}",
            )
        for field in ("name", "region"):
            wanted = body.get(field)
            if wanted and wanted != getattr(machine, field):
                # `name` and `region` cannot change through update [D].
                raise errors.invalid_argument(f"machine {field} cannot be changed by update")
        config = normalize_config(body.get("config"))
        cpus, memory_mb = host_reservation(config)
        self.secrets.require_version(app, body.get("min_secrets_version"))
        running = machine.state in RUNNING_STATES or (machine.state == "created" and machine.reserved)

        new_volume_id = mounted_volume_id(config)
        new_volume: Volume | None = None
        if new_volume_id != machine.volume_id:
            if running:
                # Fly documents mounts as unchangeable; on a stopped machine a mount change by
                # update works in practice (KiloClaw's repair path; §11 item 24) [O].
                raise errors.invalid_argument("cannot change the mounts of a running machine; stop it first")
            if new_volume_id is not None:
                new_volume = self.volumes.get(app, new_volume_id)
                self.volumes.check_mountable(new_volume, machine.region, machine.id)
                if new_volume.host is not machine.host and not new_volume.host.fits(cpus, memory_mb):
                    raise errors.failed_precondition(
                        f"insufficient resources to create new machine with existing volume '{new_volume.id}'"
                    )
        grows = cpus > machine.reserved_cpus or memory_mb > machine.reserved_memory_mb
        extra_cpus, extra_memory = (
            max(0, cpus - machine.reserved_cpus),
            max(0, memory_mb - machine.reserved_memory_mb),
        )
        if running and grows and not machine.host.fits(extra_cpus, extra_memory):
            raise errors.FlyError(409, INSUFFICIENT_MEMORY)

        # Accepted: a new version replaces the old one wholesale (no partial update) [D].
        if new_volume_id != machine.volume_id:
            old_volume = world.volumes.get(machine.volume_id or "")
            if old_volume is not None:
                self.volumes.release_later(old_volume, machine.id)
            machine.volume_id = new_volume_id
            if new_volume is not None:
                if new_volume.host is not machine.host:
                    world.release(machine)
                    machine.host = new_volume.host
                self.volumes.claim(new_volume, machine.id, machine.instance_id)
        was_reserved = machine.reserved
        world.release(machine)
        machine.reserved_cpus, machine.reserved_memory_mb = cpus, memory_mb
        if was_reserved:
            world.reserve(machine)
        machine.config = config
        machine.instance_id = world.ids.version(world.now())
        machine.versions.append(MachineVersion(machine.instance_id, config))
        machine.image_ref = image_ref(config["image"], world.ids.digest())
        lease_ttl = body.get("lease_ttl")
        if lease_ttl and machine.lease is None:
            machine.lease = self._new_lease(machine, owner, errors.int_argument(lease_ttl, "lease_ttl"), "")
            machine.nonce = machine.lease.nonce

        previous = machine.state
        world.cancel_pending(machine)
        world.set_state(machine, "replacing", "update", "user")
        replace = world.pacer.draw("replace")
        skip_launch = bool(body.get("skip_launch"))
        launch = not skip_launch and (running or world.settings.update_starts_stopped_machine)
        if launch:
            self._reserve_or_409(machine)
            tag = image_tag(config["image"])
            boot = world.pacer.draw("boot")
            end = "failed" if tag == SENTINEL_BOOT_FAIL else "started"
            steps: list[Step] = [
                (replace, "starting", None, "flyd"),
                (boot, end, "start" if end == "started" else "exit", "flyd"),
            ]
            then = self._after_started(machine) if exits_on_its_own(tag) else None
            if tag == SENTINEL_BOOT_STUCK:
                world.park(machine, steps, then)
            else:
                world.schedule(machine, steps, then)
        else:
            # "machine was in a non-started state prior to the update so leaving the new
            # version stopped" [O]. A never-launched machine stays `created`.
            world.release(machine)
            resting = "created" if previous == "created" else "stopped"
            if resting == "created":
                machine.start_ready_at = world.now() + replace
            steps = [(replace, resting, None, "flyd")]
            if image_tag(config["image"]) == SENTINEL_BOOT_STUCK:
                world.park(machine, steps, None)
            else:
                world.schedule(machine, steps)
        return machine

    # -- destroy -------------------------------------------------------------------------------

    def destroy(self, app: str, machine_id: str, nonce: str | None, force: bool) -> None:
        machine = self._mutable(app, machine_id, nonce)
        if machine.state == "destroying":
            return
        if not force and machine.state not in ("stopped", "suspended", "failed", "created"):
            raise errors.failed_precondition(
                "unable to destroy machine, not currently stopped, suspended, failed or created"
            )
        self.begin_destroy(machine, source="user", jitter=True)

    def begin_destroy(
        self, machine: Machine, *, source: str, jitter: bool, already_destroying: bool = False
    ) -> None:
        world = self.world
        pacer = world.pacer
        ack = pacer.draw("ack") if jitter else pacer.exact("ack")
        destroy = pacer.draw("destroy") if jitter else pacer.exact("destroy")
        machine.lease = None
        if machine.host.status != "ok":
            # The host must come back before the destroy can finish [O].
            machine.destroy_blocked = True
            world.schedule(machine, [(ack, "destroying", None, source)])
            return
        steps: list[Step] = [(destroy, "destroyed", "destroy", source)]
        if not already_destroying:
            steps.insert(0, (ack, "destroying", None, source))
        world.schedule(machine, steps, lambda: self._after_destroyed(machine))

    def _after_destroyed(self, machine: Machine) -> None:
        world = self.world
        machine.destroyed_at = world.now()
        world.release(machine)
        world.live_machines_per_region[machine.region] -= 1
        volume = world.volumes.get(machine.volume_id or "")
        if volume is not None:
            self.volumes.release_later(volume, machine.id)

        def vanish() -> None:
            # After the `destroyed` window, GET answers 404; include_deleted still lists it.
            if world.machines.get(machine.id) is machine:
                del world.machines[machine.id]
                world.graveyard[machine.id] = machine

        world.clock.call_later(world.pacer.exact("destroyed_visible"), vanish)

    # -- leases --------------------------------------------------------------------------------

    def current_lease(self, machine: Machine) -> Lease | None:
        lease = machine.lease
        if lease is not None and lease.expires_at <= self.world.now():
            machine.lease = lease = None
        return lease

    def _check_lease(self, machine: Machine, nonce: str | None) -> None:
        lease = self.current_lease(machine)
        if lease is not None and nonce != lease.nonce:
            raise errors.FlyError(
                409,
                f"machine ID {machine.id} lease currently held by {lease.owner}, "
                f"expires at {rfc3339(lease.expires_at)}",
            )

    def _new_lease(self, machine: Machine, owner: str, ttl: int, description: str) -> Lease:
        return Lease(
            nonce=self.world.ids.nonce(),
            owner=owner,
            description=description,
            expires_at=self.world.now() + ttl,
            version=machine.instance_id,
        )

    def acquire_lease(
        self, app: str, machine_id: str, nonce: str | None, ttl: int | None, description: str, owner: str
    ) -> Lease:
        machine = self._mutable(app, machine_id, None, gated=False)
        ttl = ttl if ttl is not None else self.world.settings.default_lease_ttl
        if ttl <= 0:
            raise errors.FlyError(400, "invalid_argument: ttl must be positive", lease_shape=True)
        lease = self.current_lease(machine)
        if lease is not None:
            if nonce != lease.nonce:
                raise errors.FlyError(
                    409,
                    f"machine ID {machine.id} lease currently held by {lease.owner}, "
                    f"expires at {rfc3339(lease.expires_at)}",
                    lease_shape=True,
                    code="lease_held",
                    extra={"data": self.lease_data(lease, with_nonce=False)},
                )
            # Refresh keeps the nonce [C].
            lease.expires_at = self.world.now() + ttl
            if description:
                lease.description = description
            return lease
        machine.lease = self._new_lease(machine, owner, ttl, description)
        return machine.lease

    def show_lease(self, app: str, machine_id: str) -> Lease:
        machine = self._mutable(app, machine_id, None, gated=False)
        lease = self.current_lease(machine)
        if lease is None:
            raise errors.FlyError(404, "lease not found", lease_shape=True, code="not_found")
        return lease

    def release_lease(self, app: str, machine_id: str, nonce: str | None) -> None:
        machine = self._mutable(app, machine_id, None, gated=False)
        if not nonce:
            raise errors.FlyError(400, "fly-machine-lease-nonce header is required", lease_shape=True)
        lease = self.current_lease(machine)
        if lease is None:
            raise errors.FlyError(404, "lease not found", lease_shape=True, code="not_found")
        if nonce != lease.nonce:
            raise errors.FlyError(
                409, "lease nonce does not match the lease held", lease_shape=True, code="conflict"
            )
        machine.lease = None

    @staticmethod
    def lease_data(lease: Lease, *, with_nonce: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "expires_at": int(lease.expires_at),
            "owner": lease.owner,
            "description": lease.description,
            "version": lease.version,
        }
        if with_nonce:
            data["nonce"] = lease.nonce
        return data

    # -- metadata ------------------------------------------------------------------------------

    def metadata(self, app: str, machine_id: str) -> dict[str, str]:
        machine = self._mutable(app, machine_id, None, gated=False)
        tags: dict[str, str] = machine.config.get("metadata") or {}
        return tags

    def set_metadata(self, app: str, machine_id: str, key: str, body: Any) -> None:
        machine = self._mutable(app, machine_id, None, gated=False)
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise errors.bad_request("invalid_argument: value must be a string")
        # Metadata is not lease-gated and (as we model it) makes no new version [C][I].
        machine.config.setdefault("metadata", {})[key] = value

    def replace_metadata(self, app: str, machine_id: str, body: Any) -> None:
        """Bulk set/remove (null or "" removes); `machine_version` must still match [D][I]."""
        machine = self._mutable(app, machine_id, None, gated=False)
        if not isinstance(body, dict):
            raise errors.bad_request("json: cannot unmarshal into Go value of type an object")
        version = body.get("machine_version")
        if version and version != machine.instance_id:
            raise errors.failed_precondition(
                f"machine_version {version} does not match the machine's version {machine.instance_id}"
            )
        changes = body.get("metadata")
        if changes is None:
            changes = {key: value for key, value in body.items() if key != "machine_version"}
        if not isinstance(changes, dict) or any(
            v is not None and not isinstance(v, str) for v in changes.values()
        ):
            raise errors.invalid_argument("metadata must map keys to strings or null")
        tags = machine.config.setdefault("metadata", {})
        for key, value in changes.items():
            if value in (None, ""):
                tags.pop(key, None)
            else:
                tags[key] = value

    def delete_metadata(self, app: str, machine_id: str, key: str) -> None:
        machine = self._mutable(app, machine_id, None, gated=False)
        (machine.config.get("metadata") or {}).pop(key, None)

    # -- wait ----------------------------------------------------------------------------------

    async def wait(
        self, app: str, machine_id: str, states: list[str], version: str | None, timeout: int
    ) -> tuple[str, Machine | None]:
        """The long poll of §4: returns the state reached, or raises 400/404/408/412."""
        world = self.world
        want = set(states) or {"started"}
        unknown = want - WAITABLE_STATES
        if unknown:
            raise errors.invalid_argument(f"invalid state {sorted(unknown)[0]!r}")
        if not 1 <= timeout <= MAX_WAIT_SECONDS:
            raise errors.invalid_argument(f"timeout must be between 1 and {MAX_WAIT_SECONDS} seconds")
        if "stopped" in want and not version:
            raise errors.bad_request("instance_id required when waiting for stopped machine")
        world.app(app)
        machine = self._find(app, machine_id)
        if machine is None:
            gone = world.graveyard.get(machine_id)
            if gone is not None and gone.app == app and "destroyed" in want:
                return "destroyed", gone
            raise errors.machine_not_found()
        if self._invisible_after_create(machine):
            raise errors.machine_not_found()
        wanted_text = ",".join(sorted(want))
        if version and version != machine.instance_id:
            if machine.knows_version(version):
                raise errors.failed_precondition(
                    f"machine failed to reach desired state, {wanted_text}, "
                    f"currently replaced (version {version})"
                )
            raise errors.FlyError(404, f"not_found: machine version {version} not found")

        def reached() -> bool:
            return machine.state in want or ("settled" in want and machine.state in SETTLED_STATES)

        if reached():
            return machine.state, machine
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        waiter = StateWaiter(states=frozenset(want), version=version, future=future)
        machine.waiters.append(waiter)

        def on_deadline() -> None:
            if not future.done():
                future.set_result("timeout")

        deadline = world.clock.call_later(timeout, on_deadline)
        try:
            outcome = await future
        finally:
            deadline.cancel()
            if waiter in machine.waiters:
                machine.waiters.remove(waiter)
        if outcome == "timeout":
            raise errors.FlyError(
                408,
                f"deadline_exceeded: machine failed to reach desired state, {wanted_text}, "
                f"currently {machine.state}",
            )
        if outcome == "replaced":
            raise errors.failed_precondition(
                f"machine failed to reach desired state, {wanted_text}, currently replaced"
            )
        return outcome, machine
