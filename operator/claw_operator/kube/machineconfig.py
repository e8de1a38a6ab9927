"""The Fly machine config a ClawInstance asks for (KiloClaw's buildMachineConfig, §7.2)."""

from __future__ import annotations

from typing import Any

from claw_operator.lifecycle.model import META_NAME, META_NAMESPACE, META_UID, Instance


def instance_metadata(instance: Instance) -> dict[str, str]:
    """The tags that tie a Fly machine to its ClawInstance (metadata recovery lists by UID)."""
    return {META_UID: instance.uid, META_NAMESPACE: instance.namespace, META_NAME: instance.name}


def machine_name(instance: Instance) -> str:
    """A readable, unique Fly machine name: `<namespace>-<name>`, cut to Fly's 63 characters."""
    return f"{instance.namespace}-{instance.name}"[:63].rstrip("-.")


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
        "metadata": instance_metadata(instance),
    }


def merged_config(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """An update sends the full config back: keep what Fly (or a human) set that we do not own."""
    return {**current, **desired}
