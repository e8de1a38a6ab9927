"""The Fly side of one ClawInstance, as the plugin shows it, seen through the operator's own edge.

Every Fly-specific import of the plugin is here, in a few small functions over the Fly edge
(`claw_operator.edge`): the views are the very ones the operator decides from (`machine_view`,
`volume_view`, `env_digest`), so what `kubectl claw inspect` calls drift is exactly what the
operator will act on.

Read-only: GETs only, a short retry budget (a person is waiting), and nothing of the machine's
env (secretEnv values live there) ever leaves this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from claw_operator.edge import env_digest, machine_view, volume_view
from claw_operator.fly import (
    FlyClientConfig,
    FlyError,
    FlyMachinesClient,
    Machine,
    NotFound,
    RetryPolicy,
    Volume,
)
from claw_operator.lifecycle.drift import mount_is_correct, restart_trigger
from claw_operator.lifecycle.model import Instance, MachineView, VolumeView

# A person waits for the answer: two tries, ten seconds at most per call.
INSPECT_RETRY = RetryPolicy(attempts=2, timeout=10.0, wait_initial=0.2, wait_max=1.0)
RECENT_EVENTS = 10


@dataclass(frozen=True)
class MachineCheckState:
    name: str
    status: str
    output: str
    updated_at: str | None


@dataclass(frozen=True)
class MachineEventRecord:
    at: datetime | None
    type: str
    status: str
    source: str


@dataclass(frozen=True)
class FlySide:
    """What Fly says about one instance. `error` set: Fly could not be asked, or refused."""

    machine: MachineView | None = None
    machine_gone: bool = False
    volume: VolumeView | None = None
    volume_gone: bool = False
    checks: tuple[MachineCheckState, ...] = ()
    events: tuple[MachineEventRecord, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Drift:
    """Spec against machine, in the operator's own words (`lifecycle.drift`)."""

    reason: str | None  # RestartReason value; None when nothing drifts
    message: str | None
    env_compared: bool  # False with secretEnv: values are never read, so env is not compared


def fly_client(token: str, base_url: str) -> FlyMachinesClient:
    return FlyMachinesClient(
        FlyClientConfig(token=token, base_url=base_url, retry=INSPECT_RETRY, user_agent="kubectl-claw")
    )


def _checks(machine: Machine) -> tuple[MachineCheckState, ...]:
    found: list[MachineCheckState] = []
    for check in machine.checks or []:
        if isinstance(check, dict):
            found.append(
                MachineCheckState(
                    name=str(check.get("name") or "?"),
                    status=str(check.get("status") or "unknown"),
                    output=str(check.get("output") or "")[:200],
                    updated_at=check.get("updated_at"),
                )
            )
    return tuple(found)


def _event_time(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)  # Fly stamps events in milliseconds
    return None


def _events(machine: Machine) -> tuple[MachineEventRecord, ...]:
    # Only these four fields: an event's `request` may echo the config it was sent with.
    records = [
        MachineEventRecord(
            at=_event_time(event.get("timestamp")),
            type=str(event.get("type") or ""),
            status=str(event.get("status") or ""),
            source=str(event.get("source") or ""),
        )
        for event in machine.events or []
        if isinstance(event, dict)
    ]
    records.sort(key=lambda e: e.at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return tuple(records[:RECENT_EVENTS])


async def _observe(
    client: FlyMachinesClient, app: str, machine_id: str | None, volume_id: str | None
) -> FlySide:
    machine: MachineView | None = None
    volume: VolumeView | None = None
    machine_gone = volume_gone = False
    checks: tuple[MachineCheckState, ...] = ()
    events: tuple[MachineEventRecord, ...] = ()
    errors: list[str] = []
    if machine_id:
        try:
            found = await client.get_machine(app, machine_id)
            machine_gone = found.is_gone
            machine = machine_view(found)
            checks, events = _checks(found), _events(found)
        except NotFound:
            machine_gone = True
        except FlyError as exc:
            errors.append(f"machine {machine_id}: {exc}")
    if volume_id:
        try:
            got: Volume = await client.get_volume(app, volume_id)
            volume_gone = got.is_gone
            volume = volume_view(got)
        except NotFound:
            volume_gone = True
        except FlyError as exc:
            errors.append(f"volume {volume_id}: {exc}")
    return FlySide(machine, machine_gone, volume, volume_gone, checks, events, tuple(errors))


def observe(token: str, base_url: str, app: str, machine_id: str | None, volume_id: str | None) -> FlySide:
    """GET the instance's machine and volume (each only when status names it)."""

    async def run() -> FlySide:
        async with fly_client(token, base_url) as client:
            return await _observe(client, app, machine_id, volume_id)

    return asyncio.run(run())


def machines_by_app(
    token: str, base_url: str, apps: Sequence[str]
) -> dict[str, dict[str, MachineView] | str]:
    """Each app's machines by id (one list per app), or the error that app's list met."""

    async def run() -> dict[str, dict[str, MachineView] | str]:
        found: dict[str, dict[str, MachineView] | str] = {}
        async with fly_client(token, base_url) as client:
            for app in apps:
                try:
                    found[app] = {m.id: machine_view(m) for m in await client.list_machines(app)}
                except FlyError as exc:
                    found[app] = str(exc)
        return found

    return asyncio.run(run())


def drift(instance: Instance, machine: MachineView) -> Drift:
    """Why the operator would restart this machine now, if it would (`restart_trigger`)."""
    env_compared = not instance.spec.secret_env
    if env_compared:
        # Plain env only: its digest is the operator's own (`env_digest`), values stay here.
        instance = replace(instance, env_digest=env_digest(dict(instance.spec.env)))
    volume_id = instance.status.volume_id
    if volume_id is None:
        return Drift(None, None, env_compared)
    trigger = restart_trigger(instance, volume_id, machine)
    if trigger is None:
        return Drift(None, None, env_compared)
    return Drift(trigger.reason.value, trigger.message, env_compared)


def mounts_own_volume(instance: Instance, machine: MachineView) -> bool:
    volume_id = instance.status.volume_id
    return volume_id is not None and mount_is_correct(machine, volume_id, instance.spec.volume.mount_path)
