"""The machine a ClawInstance asks for, computed once: what `edge` renders into a Fly config and
what drift compares, field by field, with the machine Fly shows (`MachineView` carries the
same fields).

Adding a spec field that reaches the machine: the spec (`api/spec.py`), a field here, and its
rendering and reading back in `edge/machineconfig.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from claw_operator.lifecycle.model import GuestView, Instance, MachineView, Mount


@dataclass(frozen=True)
class DesiredMachine:
    """The part of the machine config the operator owns (the rest is Fly's, or a human's)."""

    image: str
    guest: GuestView
    # Digest of the full env (spec.env + resolved secretEnv); None when a Secret is missing.
    # The values themselves never enter `lifecycle`.
    env_digest: str | None
    # KiloClaw's rule for mounts is not equality (extra mounts are fine): see `drift`.
    mounts: tuple[Mount, ...]
    # spec.healthCheck, described (`describe_check`): "none" without one.
    health_check: str = "none"


# The name of the operator's check in the machine's `checks` (others are left alone).
CHECK_NAME: Final = "claw"


def describe_check(
    port: object, path: object, interval: object, timeout: object, grace_period: object
) -> str:
    """One string per check config, the same from the spec and from Fly's config."""
    return f"http :{port}{path} every {interval} timeout {timeout} grace {grace_period}"


def desired_machine(instance: Instance, volume_id: str) -> DesiredMachine:
    spec = instance.spec
    check = spec.health_check
    return DesiredMachine(
        image=spec.image,
        guest=GuestView(
            cpu_kind=str(spec.guest.cpu_kind), cpus=spec.guest.cpus, memory_mb=spec.guest.memory_mb
        ),
        env_digest=instance.env_digest,
        mounts=(Mount(volume=volume_id, path=spec.volume.mount_path),),
        health_check=(
            describe_check(check.port, check.path, check.interval, check.timeout, check.grace_period)
            if check is not None
            else "none"
        ),
    )


def _guest(guest: GuestView) -> str:
    return f"{guest.cpu_kind}/{guest.cpus}cpu/{guest.memory_mb}MB"


# The compared fields and how a change of each is told (env values never: only that it changed).
_DESCRIBE: Final[dict[str, Callable[[object, object], str]]] = {
    "image": lambda have, want: f"image {have} -> {want}",
    "guest": lambda have, want: f"guest {_guest(have)} -> {_guest(want)}",  # type: ignore[arg-type]
    "env_digest": lambda have, want: "env changed",
    "health_check": lambda have, want: f"healthCheck {have} -> {want}",
}


def config_changes(desired: DesiredMachine, machine: MachineView) -> list[str]:
    """Field by field: what the machine runs that the spec no longer asks for. A field either
    side does not know (None) never drifts."""
    changes: list[str] = []
    for name, describe in _DESCRIBE.items():
        want, have = getattr(desired, name), getattr(machine, name)
        if want is not None and have is not None and want != have:
            changes.append(describe(have, want))
    return changes
