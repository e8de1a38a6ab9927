"""The few Kubernetes calls the operator makes itself (kopf does the watching).

The official `kubernetes` client is synchronous, so every call runs in a worker thread. Reads
are fresh GETs (each reconcile pass decides from the current resourceVersion), and the status
write is a PUT to the status subresource carrying the resourceVersion the pass read: the
apiserver answers 409 when anything changed in between, and the pass is re-read and re-decided.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from claw_operator.api import GROUP, PLURAL, VERSION

R = TypeVar("R")

# Blocking calls in flight at once. asyncio's default executor has cpu+4 threads (6 on a
# 2-core node): a fleet's passes would queue behind a handful of round trips to the apiserver.
KUBE_THREADS = 32


class StatusConflict(Exception):
    """The object changed since it was read (HTTP 409): re-read and re-decide."""


@dataclass(frozen=True)
class SecretLookup:
    data: dict[str, str] | None  # decoded values; None when the Secret does not exist


def load_api_client(kubeconfig: str | None = None, *, context: str | None = None) -> client.ApiClient:
    """An ApiClient for the in-cluster config, or the kubeconfig (path, or the default one).

    `context` names a kubeconfig context (kubectl's `--context`); naming one skips in-cluster.
    """
    configuration = client.Configuration()
    # One pooled connection per thread (urllib3 discards connections beyond the pool's size).
    configuration.connection_pool_maxsize = KUBE_THREADS
    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.ApiClient(configuration)
        except config.ConfigException:
            pass
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, client_configuration=configuration
    )
    return client.ApiClient(configuration)


class KubeApi:
    """Async facade over the official client for ClawInstances and Secrets."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._threads = ThreadPoolExecutor(KUBE_THREADS, thread_name_prefix="kube-api")

    async def _blocking(self, call: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._threads, functools.partial(call, *args))

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def get_instance(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = cast(
                dict[str, Any],
                await self._blocking(
                    self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    async def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """PUT the status, conditional on obj's resourceVersion; StatusConflict on 409."""
        metadata = obj["metadata"]
        body = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "resourceVersion": metadata["resourceVersion"],
            },
            "spec": obj.get("spec", {}),
            "status": status,
        }
        try:
            updated = await self._blocking(
                self._custom.replace_namespaced_custom_object_status,
                GROUP,
                VERSION,
                metadata["namespace"],
                PLURAL,
                metadata["name"],
                body,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise StatusConflict(f"{metadata['namespace']}/{metadata['name']} changed") from exc
            raise
        return cast(dict[str, Any], updated)

    async def create_event(self, namespace: str, body: dict[str, Any]) -> bool:
        """POST a core/v1 Event with a fixed name; False when one of that name exists (409)."""
        try:
            await self._blocking(self._core.create_namespaced_event, namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def read_event_count(self, namespace: str, name: str) -> int | None:
        """The count of the named Event (None: it does not exist)."""
        try:
            event = await self._blocking(self._core.read_namespaced_event, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return int(event.count or 1)

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> bool:
        """Merge-patch the named Event; False when it is gone (404: Events expire)."""
        try:
            await self._blocking(self._core.patch_namespaced_event, name, namespace, patch)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def get_secret(self, namespace: str, name: str) -> SecretLookup:
        try:
            secret = await self._blocking(self._core.read_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return SecretLookup(None)
            raise
        decoded = {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in (secret.data or {}).items()
        }
        decoded.update(secret.string_data or {})
        return SecretLookup(decoded)
