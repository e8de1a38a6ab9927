"""Tokens as Fly reads them from the `Authorization` header (§1 of the reference)."""

from __future__ import annotations

_SCHEMES = ("Bearer ", "FlyV1 ")


def bare_token(value: str | None) -> str | None:
    """The token without its scheme: `Bearer X`, `FlyV1 X` and `Bearer FlyV1 X` are all X [C][D]."""
    if value is None:
        return None
    token = value.strip()
    stripped = True
    while stripped:
        stripped = False
        for scheme in _SCHEMES:
            if token.startswith(scheme):
                token = token[len(scheme) :].strip()
                stripped = True
    return token or None
