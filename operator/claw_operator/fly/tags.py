"""Ownership tags: how a Fly Machine (and Volume) is tied back to its ClawInstance.

Machines carry the ClawInstance UID in `config.metadata`, so a lost machine id can be recovered
by listing with a metadata filter, and an ambiguous create can be resolved by looking before
deciding. Fly reserves `fly_`-prefixed keys, hence the `claw_` prefix. Volumes have no metadata,
so their *name* is derived from the UID (Fly volume names: `[a-z0-9_]`, at most 30 chars).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "METADATA_NAMESPACE_KEY",
    "METADATA_NAME_KEY",
    "METADATA_UID_KEY",
    "OwnerTag",
    "volume_name",
]

METADATA_UID_KEY: Final = "claw_instance_uid"
METADATA_NAMESPACE_KEY: Final = "claw_namespace"
METADATA_NAME_KEY: Final = "claw_name"

# 24 hex digits of the UID (96 bits) stay unique in practice; "claw_" + 24 fits in 30.
_VOLUME_UID_CHARS: Final = 24
_NOT_VOLUME_CHAR: Final = re.compile(r"[^a-z0-9_]")
_NOT_MACHINE_CHAR: Final = re.compile(r"[^a-z0-9-]")


def volume_name(uid: str) -> str:
    """The Fly volume name of a ClawInstance: `claw_` + 24 characters of its UID (no dashes,
    lowercase), within Fly's volume-name rules (`[a-z0-9_]`, at most 30 chars).

    Volumes carry no metadata on Fly, so the name is how a volume whose create answer was lost
    is found again (list volumes by name) instead of a second one being created.
    """
    compact = _NOT_VOLUME_CHAR.sub("_", uid.replace("-", "").lower())
    return "claw_" + compact[:_VOLUME_UID_CHARS]


@dataclass(frozen=True, slots=True)
class OwnerTag:
    """The ClawInstance that owns a Fly object."""

    uid: str
    namespace: str
    name: str

    def __post_init__(self) -> None:
        if not self.uid:
            raise ValueError("an owner tag needs the ClawInstance UID")

    def metadata(self) -> dict[str, str]:
        """The metadata written into every machine config this owner creates."""
        return {
            METADATA_UID_KEY: self.uid,
            METADATA_NAMESPACE_KEY: self.namespace,
            METADATA_NAME_KEY: self.name,
        }

    def selector(self) -> dict[str, str]:
        """The metadata filter that finds this owner's machines: the UID alone, because a
        namespace/name can be reused by a new object while the UID cannot."""
        return {METADATA_UID_KEY: self.uid}

    def machine_name(self) -> str:
        """A stable machine name, unique within the app (Fly enforces that), from the UID."""
        return "claw-" + _NOT_MACHINE_CHAR.sub("", self.uid.lower())

    def volume_name(self) -> str:
        """The volume name of this owner (`volume_name`)."""
        return volume_name(self.uid)
