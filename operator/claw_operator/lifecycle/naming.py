"""Names of the Fly objects the operator creates."""

from __future__ import annotations

import re

_NOT_NAME_CHAR = re.compile(r"[^a-z0-9_]")
# Fly volume names are at most 30 characters: "claw_" + 24 keeps within it while 24 hex
# digits of the UID (96 bits) stay unique in practice.
_UID_CHARS = 24


def volume_name(uid: str) -> str:
    """The Fly volume name of a ClawInstance: `claw_` + its UID (no dashes, lowercase), 29 chars.

    Volumes carry no metadata on Fly, so the name is how `kube` finds the volume of an
    ambiguous create (list volumes by name) instead of creating a second one.
    """
    compact = _NOT_NAME_CHAR.sub("_", uid.replace("-", "").lower())
    return "claw_" + compact[:_UID_CHARS]
