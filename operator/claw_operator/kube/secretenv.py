"""Resolve `spec.secretEnv` into environment values, and digest the whole env.

Values exist only in this process's memory, on their way into the Fly machine config. The
decisions see a digest (to notice a changed Secret value) and, when something is missing, a
message that names the Secret and key but never a value.
"""

from __future__ import annotations

from claw_operator.api import ClawInstanceSpec
from claw_operator.edge.env import ResolvedEnv, env_digest
from claw_operator.kube.kubeapi import KubeApi


async def resolve_env(api: KubeApi, namespace: str, spec: ClawInstanceSpec) -> ResolvedEnv:
    env = dict(spec.env)
    secrets: dict[str, dict[str, str] | None] = {}
    for item in spec.secret_env:
        ref = item.secret_key_ref
        if ref.name not in secrets:
            secrets[ref.name] = (await api.get_secret(namespace, ref.name)).data
        data = secrets[ref.name]
        if data is None:
            return ResolvedEnv(None, None, f'Secret "{ref.name}" not found in namespace "{namespace}"')
        if ref.key not in data:
            return ResolvedEnv(
                None, None, f'key "{ref.key}" not found in Secret "{ref.name}" (for {item.name})'
            )
        env[item.name] = data[ref.key]
    return ResolvedEnv(env, env_digest(env), None)
