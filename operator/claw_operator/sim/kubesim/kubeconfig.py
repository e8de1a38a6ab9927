"""A kubeconfig for kubesim: plain HTTP, a dummy bearer token, a default namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# kubesim authenticates nobody; kubectl and the clients still want a credential to send.
TOKEN = "kubesim"


def kubeconfig_document(
    server: str, *, namespace: str = "default", context: str = "kubesim"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": TOKEN}}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
        ],
        "current-context": context,
    }


def write_kubeconfig(
    path: str | Path, server: str, *, namespace: str = "default", context: str = "kubesim"
) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(kubeconfig_document(server, namespace=namespace, context=context)))
    target.chmod(0o600)
    return target
