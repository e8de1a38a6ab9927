"""The machine a ClawInstance asks for, computed once: what `edge` renders into a Fly config and
what drift compares, field by field, with the config Fly shows (`MachineView.config`, read back
by `edge` into this same shape).

Adding a spec field that reaches the machine: the spec (`api/spec.py`), a field here (and its
value in `desired_machine`), and its rendering and reading back in `edge/machineconfig.py`.
Drift then compares it; `_DESCRIBE` only words its change better than "name have -> want".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Final

from claw_operator.lifecycle.model import GuestView, Instance, Mount


@dataclass(frozen=True)
class DesiredMachine:
    """The part of the machine config the operator owns (the rest is Fly's, or a human's): what
    the spec asks for, and what a machine's config says (`MachineView.config`).

    Read back from Fly, a field is None when the config does not say (an incomplete config);
    None never drifts. Computed from the spec (`desired_machine`), only `env_digest` can be None.
    """

    image: str | None
    guest: GuestView | None
    # Digest of the full env (spec.env + resolved secretEnv); None when a Secret is missing.
    # The values themselves never enter `lifecycle`.
    env_digest: str | None
    # KiloClaw's rule for mounts is not equality (extra mounts are fine): see `drift`.
    mounts: tuple[Mount, ...]
    # spec.healthCheck, described (`describe_check`): "none" without one.
    health_check: str | None = "none"


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


# How a change of a field is told, when better than "name have -> want" (env values never:
# only that it changed).
_DESCRIBE: Final[dict[str, Callable[[object, object], str]]] = {
    "guest": lambda have, want: f"guest {_guest(have)} -> {_guest(want)}",  # type: ignore[arg-type]
    "env_digest": lambda have, want: "env changed",
    "health_check": lambda have, want: f"healthCheck {have} -> {want}",
}
# Not compared for equality: KiloClaw's mount rule is `drift.mount_is_correct`.
_NOT_COMPARED: Final = frozenset({"mounts"})
# The fields compared, in their order.
_COMPARED: Final = tuple(f.name for f in fields(DesiredMachine) if f.name not in _NOT_COMPARED)


def config_changes(desired: DesiredMachine, config: DesiredMachine | None) -> list[str]:
    """Field by field: what the machine's config holds that the spec no longer asks for. A
    field either side does not know (None), or a config not known at all, never drifts."""
    if config is None:
        return []
    changes: list[str] = []
    for name in _COMPARED:
        want, have = getattr(desired, name), getattr(config, name)
        if want is not None and have is not None and want != have:
            describe = _DESCRIBE.get(name)
            changes.append(describe(have, want) if describe else f"{name} {have} -> {want}")
    return changes
