"""The Fly machine config a ClawInstance asks for (KiloClaw's buildMachineConfig, §7.2)."""

from __future__ import annotations

from typing import Any

from claw_operator.fly import OwnerTag
from claw_operator.lifecycle.model import Instance


def owner_of(instance: Instance) -> OwnerTag:
    """The ClawInstance as a Fly owner: its metadata tags, and the UID-derived names."""
    return OwnerTag(uid=instance.uid, namespace=instance.namespace, name=instance.name)


def desired_config(instance: Instance, env: dict[str, str], volume_id: str) -> dict[str, Any]:
    """The full MachineConfig for create and update (env values included: never log it)."""
    spec = instance.spec
    return {
        "image": spec.image,
        "env": dict(env),
        "guest": {
            "cpu_kind": spec.guest.cpu_kind.value,
            "cpus": spec.guest.cpus,
            "memory_mb": spec.guest.memory_mb,
        },
        "mounts": [{"volume": volume_id, "path": spec.volume.mount_path}],
        "metadata": owner_of(instance).metadata(),
    }


def merged_config(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """An update sends the full config back: keep what Fly (or a human) set that we do not own."""
    return {**current, **desired}
