"""The machine config a ClawInstance asks for, rendered for Fly (KiloClaw's buildMachineConfig),
and a Fly machine read back into the decisions' view: both sides of `DesiredMachine`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.edge.env import env_digest
from claw_operator.fly import Machine, OwnerTag
from claw_operator.lifecycle.desired import desired_machine
from claw_operator.lifecycle.model import GuestView, Instance, MachineView, Mount


def owner_of(instance: Instance) -> OwnerTag:
    """The ClawInstance as a Fly owner: its metadata tags, and the UID-derived names."""
    return OwnerTag(uid=instance.uid, namespace=instance.namespace, name=instance.name)


def desired_config(instance: Instance, env: dict[str, str], volume_id: str) -> dict[str, Any]:
    """The full MachineConfig for create and update (env values included: never log it):
    `lifecycle.desired.DesiredMachine` rendered, plus the values of its env and the owner tags."""
    desired = desired_machine(instance, volume_id)
    return {
        "image": desired.image,
        "env": dict(env),
        "guest": {
            "cpu_kind": desired.guest.cpu_kind,
            "cpus": desired.guest.cpus,
            "memory_mb": desired.guest.memory_mb,
        },
        "mounts": [{"volume": m.volume, "path": m.path} for m in desired.mounts],
        "metadata": owner_of(instance).metadata(),
    }


def machine_view(machine: Machine) -> MachineView:
    """A Fly machine read back into the decisions' shape (the fields of `DesiredMachine`, plus
    what the decisions track: state, version, metadata)."""
    config = machine.config or machine.incomplete_config
    guest = config.guest if config else None
    return MachineView(
        id=machine.id,
        state=machine.state or "unknown",
        region=machine.region or "",
        instance_id=machine.current_version,
        image=config.image if config else None,
        guest=GuestView(guest.cpu_kind or "shared", guest.cpus or 0, guest.memory_mb or 0) if guest else None,
        env_digest=env_digest(dict(config.env or {})) if config else None,
        mounts=tuple(Mount(m.volume or "", m.path or "") for m in (config.mounts or [])) if config else (),
        metadata=machine.metadata,
        updated_at=parse_rfc3339(machine.updated_at),
        exited_at=last_exit(machine),
    )


def last_exit(machine: Machine) -> datetime | None:
    """The time of the machine's latest `exit` event (Fly timestamps events in ms)."""
    stamps = [
        event.get("timestamp")
        for event in machine.events or ()
        if isinstance(event, dict) and event.get("type") == "exit"
    ]
    valid = [stamp for stamp in stamps if isinstance(stamp, int | float) and not isinstance(stamp, bool)]
    return datetime.fromtimestamp(max(valid) / 1000, UTC) if valid else None


def merged_config(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """An update sends the full config back: keep what Fly (or a human) set that we do not own."""
    return {**current, **desired}
