"""The machine's environment as the edge renders it: the values (only in this process's memory,
on their way into the Fly machine config) and their digest (what the decisions compare)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class ResolvedEnv:
    values: dict[str, str] | None  # the full machine env; None when a Secret/key is missing
    digest: str | None
    error: str | None  # e.g. 'Secret "creds" not found in namespace "default"'

    def __repr__(self) -> str:  # never let a value reach a log line through repr()
        return f"ResolvedEnv(keys={sorted(self.values or {})}, error={self.error!r})"


# `json.dumps(..., separators=(",", ":"))` builds this encoder on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def env_digest(env: dict[str, str]) -> str:
    """A stable digest of an env mapping (compares desired and observed without the values)."""
    canonical = _COMPACT.encode(sorted(env.items()))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
