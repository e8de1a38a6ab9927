"""secretEnv resolution: values reach the machine env, never a message or a repr."""

import asyncio
from typing import Any

from claw_operator.api import ClawInstanceSpec
from claw_operator.edge import env_digest
from claw_operator.kube.kubeapi import SecretLookup
from claw_operator.kube.secretenv import resolve_env


class FakeSecrets:
    """Stands in for KubeApi.get_secret only (unit test of the resolution rules)."""

    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets
        self.reads: list[str] = []

    async def get_secret(self, namespace: str, name: str) -> SecretLookup:
        self.reads.append(name)
        return SecretLookup(self.secrets.get(name))


def _spec(**extra: Any) -> ClawInstanceSpec:
    return ClawInstanceSpec.model_validate({"region": "iad", "image": "img", **extra})


REF = {"secretEnv": [{"name": "TOKEN", "secretKeyRef": {"name": "creds", "key": "token"}}]}


def test_values_are_merged_and_each_secret_read_once() -> None:
    api = FakeSecrets({"creds": {"token": "hunter2", "other": "x"}})
    spec = _spec(
        env={"A": "1"},
        secretEnv=[
            {"name": "TOKEN", "secretKeyRef": {"name": "creds", "key": "token"}},
            {"name": "OTHER", "secretKeyRef": {"name": "creds", "key": "other"}},
        ],
    )
    resolved = asyncio.run(resolve_env(api, "default", spec))  # type: ignore[arg-type]
    assert resolved.values == {"A": "1", "TOKEN": "hunter2", "OTHER": "x"}
    assert resolved.error is None and resolved.digest == env_digest(resolved.values)
    assert api.reads == ["creds"]
    assert "hunter2" not in repr(resolved)


def test_missing_secret_names_it_without_values() -> None:
    resolved = asyncio.run(resolve_env(FakeSecrets({}), "team-a", _spec(**REF)))  # type: ignore[arg-type]
    assert resolved.values is None and resolved.digest is None
    assert resolved.error == 'Secret "creds" not found in namespace "team-a"'


def test_missing_key_names_key_and_secret() -> None:
    api = FakeSecrets({"creds": {"nope": "hunter2"}})
    resolved = asyncio.run(resolve_env(api, "default", _spec(**REF)))  # type: ignore[arg-type]
    assert resolved.error == 'key "token" not found in Secret "creds" (for TOKEN)'
    assert "hunter2" not in resolved.error


def test_digest_changes_with_a_value_and_not_with_order() -> None:
    assert env_digest({"A": "1", "B": "2"}) == env_digest({"B": "2", "A": "1"})
    assert env_digest({"A": "1"}) != env_digest({"A": "2"})
