"""The simulated Fly world: apps, regions and hosts, and the machinery every object shares
(the clock, id factory, durations, state changes with their waiters and timeline)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import errors
from .clock import Clock
from .ids import IdFactory
from .model import (
    REGION_ALIASES,
    REGIONS,
    SETTLED_STATES,
    App,
    Host,
    Machine,
    MachineEvent,
    RegionCapacity,
    StateChange,
    Volume,
)
from .profiles import LatencyProfile, Pacer

# One step of a transition chain: after `delay` seconds, enter `state`, and record an event
# of `event_type` (None = no event) from `source` (`user` or `flyd`).
Step = tuple[float, str, str | None, str]

# Entering these states gives the machine's cpu/memory back to its host.
_RELEASING_STATES = frozenset({"stopped", "failed", "suspended", "destroyed"})

APP_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"


@dataclass
class WorldSettings:
    """Knobs of the simulated world that are not latencies."""

    auto_apps: bool = True
    org_slug: str = "personal"
    # Where a machine lands when create names no region (Fly uses the app's primary region).
    default_region: str = "iad"
    hosts_per_region: int = 16
    host_cpus: int = 128
    host_memory_mb: int = 512 * 1024
    # Machines (not destroyed) allowed per organization; None = no quota. Exceeding it -> 422.
    org_max_machines: int | None = None
    # Fly's 2026 behaviour leaves a non-started machine stopped after update [O]; True gives
    # the older reports' "update starts it anyway".
    update_starts_stopped_machine: bool = False
    # The undocumented default lease TTL, when neither query nor body gives one [I].
    default_lease_ttl: int = 30
    # How many events GET machine embeds (the events endpoint has its own limit).
    embedded_events: int = 10


class FlyWorld:
    def __init__(self, *, clock: Clock, profile: LatencyProfile, seed: int, settings: WorldSettings) -> None:
        self.clock = clock
        self.seed = seed
        self.settings = settings
        self.ids = IdFactory(seed)
        self.pacer = Pacer(profile, seed)
        self.apps: dict[str, App] = {}
        self.machines: dict[str, Machine] = {}
        # Machines past their `destroyed` window: gone for GET, kept for include_deleted.
        self.graveyard: dict[str, Machine] = {}
        self.volumes: dict[str, Volume] = {}
        self.regions: dict[str, RegionCapacity] = {}
        self.live_machines_per_region: Counter[str] = Counter()
        # What a parked (stuck) machine runs after its parked steps.
        self._parked_then: dict[str, Callable[[], None] | None] = {}

    @property
    def profile(self) -> LatencyProfile:
        return self.pacer.profile

    def now(self) -> float:
        return self.clock.now()

    # -- apps ---------------------------------------------------------------------------------

    def create_app(self, name: str, org_slug: str | None = None, network: str | None = None) -> App:
        if not name or len(name) > 63 or not re.match(APP_NAME_PATTERN, name):
            raise errors.bad_request(f"invalid_argument: invalid app name {name!r}")
        if name in self.apps:
            raise errors.FlyError(422, "Validation failed: Name has already been taken", code="name_taken")
        app = App(
            id=self.ids.app_id(),
            name=name,
            org_slug=org_slug or self.settings.org_slug,
            created_at=self.now(),
            network=network or "default",
        )
        self.apps[name] = app
        return app

    def app(self, name: str) -> App:
        """The named app; with auto-apps on, an unknown app springs into being on first use."""
        app = self.apps.get(name)
        if app is None:
            if not self.settings.auto_apps:
                raise errors.FlyError(404, "app not found")
            app = self.create_app(name)
        return app

    # -- regions, hosts and capacity ------------------------------------------------------------

    def region(self, name: str) -> RegionCapacity:
        capacity = self.regions.get(name)
        if capacity is None:
            if name not in REGIONS:
                raise errors.invalid_argument(f"unknown region {name!r}")
            hosts = [self._new_host(name, index) for index in range(self.settings.hosts_per_region)]
            capacity = RegionCapacity(hosts=hosts)
            self.regions[name] = capacity
        return capacity

    def _new_host(self, region: str, index: int) -> Host:
        return Host(
            id=f"{region}-host-{index:03d}",
            region=region,
            zone=self.ids.zone(),
            cpus=self.settings.host_cpus,
            memory_mb=self.settings.host_memory_mb,
        )

    def set_capacity(
        self,
        region: str,
        *,
        max_machines: int | None = None,
        max_volumes: int | None = None,
        hosts: int | None = None,
        host_cpus: int | None = None,
        host_memory_mb: int | None = None,
    ) -> RegionCapacity:
        capacity = self.region(region)
        capacity.max_machines = max_machines
        capacity.max_volumes = max_volumes
        if hosts is not None:
            while len(capacity.hosts) < hosts:
                capacity.hosts.append(self._new_host(region, len(capacity.hosts)))
            # Hosts holding objects stay; only empty trailing hosts are removed.
            while len(capacity.hosts) > hosts and self._host_is_empty(capacity.hosts[-1]):
                capacity.hosts.pop()
        for host in capacity.hosts:
            if host_cpus is not None:
                host.cpus = host_cpus
            if host_memory_mb is not None:
                host.memory_mb = host_memory_mb
        return capacity

    def fill_host(
        self, host_id: str | None = None, *, volume_id: str | None = None, full: bool = True
    ) -> str:
        if volume_id is not None:
            volume = self.volumes.get(volume_id)
            if volume is None:
                raise errors.FlyError(404, "not_found: volume not found")
            host = volume.host
        else:
            found = next(
                (h for capacity in self.regions.values() for h in capacity.hosts if h.id == host_id), None
            )
            if found is None:
                raise errors.FlyError(404, f"no host {host_id!r}")
            host = found
        host.full = full
        return host.id

    def _host_is_empty(self, host: Host) -> bool:
        return (
            host.used_cpus == 0
            and not any(v.host is host for v in self.volumes.values())
            and not any(m.host is host for m in self.machines.values())
        )

    def candidate_regions(self, requested: str | None) -> list[str]:
        """Machine create's region: one region, a priority list, an alias, or `any` [D]."""
        if not requested:
            return [self.settings.default_region]
        names: list[str] = []
        for part in (p.strip() for p in requested.split(",")):
            if not part:
                continue
            expanded = REGION_ALIASES.get(part, (part,))
            for name in expanded:
                if name not in REGIONS:
                    raise errors.invalid_argument(f"unknown region {name!r}")
                if name not in names:
                    names.append(name)
        return names or [self.settings.default_region]

    def reserve(self, machine: Machine) -> None:
        if not machine.reserved:
            machine.host.used_cpus += machine.reserved_cpus
            machine.host.used_memory_mb += machine.reserved_memory_mb
            machine.reserved = True

    def release(self, machine: Machine) -> None:
        if machine.reserved:
            machine.host.used_cpus -= machine.reserved_cpus
            machine.host.used_memory_mb -= machine.reserved_memory_mb
            machine.reserved = False

    def check_org_quota(self) -> None:
        limit = self.settings.org_max_machines
        if limit is not None and sum(self.live_machines_per_region.values()) >= limit:
            raise errors.FlyError(
                422,
                f"invalid_argument: your organization has reached its machine limit ({limit})",
                code="machine_limit",
            )

    # -- state changes -------------------------------------------------------------------------

    def record_event(
        self,
        machine: Machine,
        event_type: str,
        status: str,
        source: str,
        request: dict[str, Any] | None = None,
    ) -> None:
        now = self.now()
        machine.events.append(
            MachineEvent(
                id=self.ids.event_id(now),
                type=event_type,
                status=status,
                source=source,
                timestamp_ms=int(now * 1000),
                request=request or {},
            )
        )
        if len(machine.events) > 200:
            del machine.events[:-200]

    def set_state(
        self, machine: Machine, state: str, event_type: str | None = None, source: str = "flyd"
    ) -> None:
        machine.state = state
        machine.updated_at = self.now()
        if state in _RELEASING_STATES:
            self.release(machine)
        if state == "stopped":
            # A just-stopped machine still refuses start for a moment ("still active") [O].
            machine.still_active_until = machine.updated_at + self.pacer.exact("still_active_tail")
        machine.timeline.append(
            StateChange(at=machine.updated_at, state=state, instance_id=machine.instance_id)
        )
        if event_type:
            self.record_event(machine, event_type, state, source)
        self.notify_waiters(machine)

    def notify_waiters(self, machine: Machine) -> None:
        if not machine.waiters:
            return
        still_waiting = []
        for waiter in machine.waiters:
            if waiter.future.done():
                continue
            if waiter.version is not None and waiter.version != machine.instance_id:
                waiter.future.set_result("replaced")
            elif machine.state in waiter.states or (
                "settled" in waiter.states and machine.state in SETTLED_STATES
            ):
                waiter.future.set_result(machine.state)
            else:
                still_waiting.append(waiter)
        machine.waiters = still_waiting

    def schedule(self, machine: Machine, steps: list[Step], then: Callable[[], None] | None = None) -> None:
        """Run a chain of state steps on the clock, replacing any chain in progress."""
        self.cancel_pending(machine)
        machine.heading = steps[-1][1] if steps else None
        self._run_next(machine, list(steps), then)

    def cancel_pending(self, machine: Machine) -> None:
        if machine.pending is not None:
            machine.pending.cancel()
            machine.pending = None
        machine.parked = None
        machine.heading = None
        self._parked_then.pop(machine.id, None)

    def _run_next(self, machine: Machine, steps: list[Step], then: Callable[[], None] | None) -> None:
        if not steps:
            machine.pending = None
            machine.heading = None
            if then is not None:
                then()
            return
        delay, state, event_type, source = steps[0]

        def fire() -> None:
            machine.pending = None
            self.set_state(machine, state, event_type, source)
            self._run_next(machine, steps[1:], then)

        machine.pending = self.clock.call_later(delay, fire)

    def park(self, machine: Machine, steps: list[Step], then: Callable[[], None] | None) -> None:
        """A stuck machine: keep its remaining steps until the control API releases it."""
        self.cancel_pending(machine)
        machine.heading = steps[-1][1] if steps else None
        machine.parked = steps
        self._parked_then[machine.id] = then

    def unpark(self, machine: Machine) -> bool:
        steps = machine.parked
        if steps is None:
            return False
        then = self._parked_then.pop(machine.id, None)
        machine.parked = None
        self._run_next(machine, steps, then)
        return True
