"""A kubeconfig for kubesim: a dummy bearer token, a default namespace, and with TLS the
self-signed certificate as the cluster's certificate authority."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# kubesim authenticates nobody; kubectl and the clients still want a credential to send.
TOKEN = "kubesim"


def kubeconfig_document(
    server: str,
    *,
    namespace: str = "default",
    context: str = "kubesim",
    certificate_authority_data: str | None = None,
    token: str = TOKEN,
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if certificate_authority_data is not None:
        cluster["certificate-authority-data"] = certificate_authority_data
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
        ],
        "current-context": context,
    }


def write_kubeconfig(
    path: str | Path,
    server: str,
    *,
    namespace: str = "default",
    context: str = "kubesim",
    certificate_authority_data: str | None = None,
    token: str = TOKEN,
) -> Path:
    """Write a kubeconfig; `token` tells this client apart (kubesim accepts any token, and a
    partition can name one: see partition.py)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = kubeconfig_document(
        server,
        namespace=namespace,
        context=context,
        certificate_authority_data=certificate_authority_data,
        token=token,
    )
    target.write_text(yaml.safe_dump(document))
    target.chmod(0o600)
    return target
