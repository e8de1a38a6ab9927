"""App secrets: names, digests and a version that machines can require (§11 I31, SHOULD).

Values are never returned [C]. Every change bumps the app's secrets version; a create or update
asking for `min_secrets_version` above it is refused with 412 [C][O].
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import errors
from .model import App, AppSecret
from .world import FlyWorld


def secret_json(secret: AppSecret) -> dict[str, Any]:
    return {"name": secret.name, "digest": secret.digest, "created_at": int(secret.created_at * 1000)}


class AppSecrets:
    def __init__(self, world: FlyWorld) -> None:
        self.world = world

    def list_secrets(self, app: str) -> list[AppSecret]:
        return sorted(self.world.app(app).secrets.values(), key=lambda s: s.name)

    def show(self, app: str, name: str) -> AppSecret:
        secret = self.world.app(app).secrets.get(name)
        if secret is None:
            raise errors.FlyError(404, "not_found: secret not found")
        return secret

    def set_secret(self, app: str, name: str, value: Any) -> int:
        target = self.world.app(app)
        self._put(target, name, value)
        target.secrets_version += 1
        return target.secrets_version

    def unset(self, app: str, name: str) -> int:
        target = self.world.app(app)
        if target.secrets.pop(name, None) is None:
            raise errors.FlyError(404, "not_found: secret not found")
        target.secrets_version += 1
        return target.secrets_version

    def update_many(self, app: str, values: Any) -> tuple[list[AppSecret], int]:
        """Bulk set/unset: `{"values": {name: value | null}}`; null removes."""
        if not isinstance(values, dict):
            raise errors.invalid_argument("values must be an object of name -> value or null")
        target = self.world.app(app)
        for name, value in values.items():
            if value is None:
                target.secrets.pop(name, None)
            else:
                self._put(target, name, value)
        target.secrets_version += 1
        return self.list_secrets(app), target.secrets_version

    def require_version(self, app: str, minimum: Any) -> None:
        if minimum is None:
            return
        wanted = errors.int_argument(minimum, "min_secrets_version")
        current = self.world.app(app).secrets_version
        if wanted > current:
            raise errors.failed_precondition(
                f"min_secrets_version {wanted} is newer than the app's secrets version {current}"
            )

    def _put(self, target: App, name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise errors.invalid_argument("a secret value must be a string")
        if not name or not name.replace("_", "").isalnum():
            raise errors.invalid_argument(f"invalid secret name {name!r}")
        target.secrets[name] = AppSecret(
            name=name,
            digest=hashlib.sha256(value.encode()).hexdigest()[:16],
            created_at=self.world.now(),
            value=value,
        )
