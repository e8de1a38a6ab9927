"""The machine config a ClawInstance asks for, rendered for Fly (KiloClaw's buildMachineConfig),
and a Fly machine read back into the decisions' view: both sides of `DesiredMachine`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.edge.env import env_digest
from claw_operator.fly import Machine, OwnerTag
from claw_operator.fly.models import MachineCheck, MachineConfig
from claw_operator.lifecycle.desired import CHECK_NAME, DesiredMachine, describe_check, desired_machine
from claw_operator.lifecycle.model import CheckView, GuestView, Instance, MachineView, Mount


def owner_of(instance: Instance) -> OwnerTag:
    """The ClawInstance as a Fly owner: its metadata tags, and the UID-derived names."""
    return OwnerTag(uid=instance.uid, namespace=instance.namespace, name=instance.name)


def desired_config(instance: Instance, env: dict[str, str], volume_id: str) -> dict[str, Any]:
    """The full MachineConfig for create and update (env values included: never log it):
    `lifecycle.desired.DesiredMachine` rendered, plus the values of its env and the owner tags."""
    desired = desired_machine(instance, volume_id)
    config: dict[str, Any] = {"image": desired.image, "env": dict(env)}
    if desired.guest is not None:  # always, from the spec
        config["guest"] = {
            "cpu_kind": desired.guest.cpu_kind,
            "cpus": desired.guest.cpus,
            "memory_mb": desired.guest.memory_mb,
        }
    config["mounts"] = [{"volume": m.volume, "path": m.path} for m in desired.mounts]
    config["metadata"] = owner_of(instance).metadata()
    check = instance.spec.health_check
    if check is not None:
        config["checks"] = {
            CHECK_NAME: {
                "type": "http",
                "port": check.port,
                "method": "GET",
                "path": check.path,
                "interval": check.interval,
                "timeout": check.timeout,
                "grace_period": check.grace_period,
            }
        }
    return config


def machine_view(machine: Machine) -> MachineView:
    """A Fly machine read back into the decisions' shape: its config as a `DesiredMachine`, plus
    what the decisions track (state, version, metadata, exits, checks)."""
    config = machine.config or machine.incomplete_config
    return MachineView(
        id=machine.id,
        state=machine.state or "unknown",
        region=machine.region or "",
        instance_id=machine.current_version,
        config=read_config(config) if config else None,
        metadata=machine.metadata,
        updated_at=parse_rfc3339(machine.updated_at),
        exited_at=last_exit(machine),
        checks=_check_results(machine.checks),
    )


def read_config(config: MachineConfig) -> DesiredMachine:
    """Fly's config in the shape of what the spec asks for (`desired_config` the other way)."""
    guest = config.guest
    return DesiredMachine(
        image=config.image,
        guest=GuestView(guest.cpu_kind or "shared", guest.cpus or 0, guest.memory_mb or 0) if guest else None,
        env_digest=env_digest(dict(config.env or {})),
        mounts=tuple(Mount(m.volume or "", m.path or "") for m in config.mounts or []),
        health_check=_check_config(config.checks),
    )


def _check_config(checks: dict[str, MachineCheck] | None) -> str:
    ours = (checks or {}).get(CHECK_NAME)
    if ours is None:
        return "none"
    return describe_check(ours.port, ours.path, ours.interval, ours.timeout, ours.grace_period)


def _check_results(checks: list[dict[str, Any]] | None) -> tuple[CheckView, ...] | None:
    if checks is None:
        return None
    return tuple(
        CheckView(
            name=str(c.get("name", "")), status=str(c.get("status", "")), output=str(c.get("output", ""))
        )
        for c in checks
        if isinstance(c, dict)
    )


def _requested(event: dict[str, Any]) -> bool:
    request = event.get("request")
    exit_event = request.get("exit_event") if isinstance(request, dict) else None
    return isinstance(exit_event, dict) and exit_event.get("requested_stop") is True


def last_exit(machine: Machine) -> datetime | None:
    """The time of the machine's latest exit of its own — an `exit` event not caused by a
    requested stop (Fly timestamps events in ms)."""
    stamps = [
        event.get("timestamp")
        for event in machine.events or ()
        if isinstance(event, dict) and event.get("type") == "exit" and not _requested(event)
    ]
    valid = [stamp for stamp in stamps if isinstance(stamp, int | float) and not isinstance(stamp, bool)]
    return datetime.fromtimestamp(max(valid) / 1000, UTC) if valid else None


def config_applied(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """The machine already runs what `desired_config` asks: every field we own has our value
    (Fly adds fields of its own to guest, mounts and metadata; those do not count)."""
    for key, want in desired.items():
        have = current.get(key)
        if key == "mounts":
            owned = [(m.get("volume"), m.get("path")) for m in have or []]
            applied = owned == [(m["volume"], m["path"]) for m in want]
        elif key == "env":
            applied = (have or {}) == want
        elif isinstance(want, dict):
            applied = isinstance(have, dict) and all(have.get(k) == v for k, v in want.items())
        else:
            applied = have == want
        if not applied:
            return False
    return True


def merged_config(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """An update sends the full config back: keep what Fly (or a human) set that we do not own.
    Of `checks`, the operator owns only its own (`claw`): others are kept, ours follows the spec."""
    merged = {**current, **desired}
    others = {name: check for name, check in (current.get("checks") or {}).items() if name != CHECK_NAME}
    ours = (desired.get("checks") or {}).get(CHECK_NAME)
    checks = {**others, **({CHECK_NAME: ours} if ours is not None else {})}
    if checks or "checks" in current or "checks" in desired:
        merged["checks"] = checks
    return merged
