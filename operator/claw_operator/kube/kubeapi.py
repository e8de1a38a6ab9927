"""The few Kubernetes calls the operator makes itself (kopf does the watching).

Reads are fresh GETs (each reconcile pass decides from the current resourceVersion), and the
status write is a PUT to the status subresource carrying the resourceVersion the pass read: the
apiserver answers 409 when anything changed in between, and the pass is re-read and re-decided.

**Why a thin aiohttp client** (issue 13). These calls are the operator's hot path: a GET of the
instance before every pass, a status PUT after a pass that changed something, Events, and the
Secrets of `spec.secretEnv`. They used to go through the official `kubernetes` client, which is
synchronous, in a 32-thread pool: urllib3, thread hand-offs and the GIL cost a quarter of each
periodic check (benchmarks/README.md, N = 300: 5.63 → 4.12 ms of CPU per check with this
client). The alternatives weighed:

- `kubernetes_asyncio`: the same generated client on aiohttp; its model (de)serialisation and
  import weight stay, for six calls on three resources.
- `lightkube` and `kr8s`: httpx-based, so httpcore's connection-pool bookkeeping (the other fifth
  of the profile, which the Fly transport leaves behind too) comes back; more models.
- kopf's own API layer (`kopf._cogs.clients`): private, changes between minor versions.

What remains is a few dozen lines on aiohttp, which kopf (and our /metrics server) already run
on the same loop: JSON in, JSON out, one keep-alive pool. The credentials are the official
client's, loaded once by `load_api_client` (kubeconfig, exec plugins and in-cluster alike, its
token-refresh hook included), exactly what kopf's login handler and the start-up checks use;
`preflight.py` and the kubectl plugin keep the synchronous client for their one-off calls.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import quote

import aiohttp
from kubernetes import client, config

from claw_operator.api import GROUP, PLURAL, VERSION

# Requests in flight at once to the apiserver (aiohttp's pool; the operator's calls are short).
KUBE_CONNECTIONS: Final = 64
# A call that takes longer fails the pass (kopf retries it): the apiserver answers in
# milliseconds, and a hung connection must not hold an instance's lock for ever.
KUBE_TIMEOUT: Final = 60.0
# The bearer token is read again from the credentials this often (an in-cluster token file is
# rotated by the kubelet; the official client's refresh hook re-reads it when due).
TOKEN_REFRESH_SECONDS: Final = 60.0


class StatusConflict(Exception):
    """The object changed since it was read (HTTP 409): re-read and re-decide."""


class KubeApiError(Exception):
    """The apiserver answered with an error status (its Status message in the text)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


@dataclass(frozen=True)
class SecretLookup:
    data: dict[str, str] | None  # decoded values; None when the Secret does not exist


def load_api_client(kubeconfig: str | None = None, *, context: str | None = None) -> client.ApiClient:
    """An ApiClient for the in-cluster config, or the kubeconfig (path, or the default one).

    `context` names a kubeconfig context (kubectl's `--context`); naming one skips in-cluster.
    The operator's own calls reuse its credentials (`KubeApi`); the start-up checks and the
    kubectl plugin call through it.
    """
    configuration = client.Configuration()
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


class _Credentials:
    """Server, TLS and authorization of a `kubernetes.client.Configuration`, for aiohttp."""

    def __init__(self, configuration: client.Configuration) -> None:
        self._cfg = configuration
        self.host = configuration.host.rstrip("/")
        self.proxy: str | None = getattr(configuration, "proxy", None) or None
        self.server_hostname: str | None = getattr(configuration, "tls_server_name", None) or None
        self.ssl: ssl.SSLContext | bool = self._ssl_context()
        self._header: str | None = None
        self._header_at = float("-inf")

    def _ssl_context(self) -> ssl.SSLContext | bool:
        cfg = self._cfg
        if not self.host.startswith("https"):
            return True  # aiohttp's default (unused for http)
        if not cfg.verify_ssl:
            return False
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file or None)
        return context

    def authorization(self) -> str | None:
        now = time.monotonic()
        if now - self._header_at >= TOKEN_REFRESH_SECONDS:
            cfg = self._cfg
            # Calls the configuration's refresh hook (in-cluster token file, exec plugins).
            header = cfg.get_api_key_with_prefix("authorization") or cfg.get_api_key_with_prefix(
                "BearerToken"
            )
            if not header and cfg.username:
                header = aiohttp.BasicAuth(cfg.username, cfg.password or "").encode()
            self._header, self._header_at = header or None, now
        return self._header


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


class KubeApi:
    """Async client of the calls above: ClawInstances, their status, Events and Secrets."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        connections: int = KUBE_CONNECTIONS,
        timeout: float = KUBE_TIMEOUT,
        user_agent: str | None = None,
    ) -> None:
        """`connections`, `timeout` and `user_agent` for a pool of its own (the shard Lease
        keeper's few calls, which must not queue behind the hot path's)."""
        self._credentials = _Credentials(api_client.configuration)
        self._session: aiohttp.ClientSession | None = None
        self._connections, self._timeout, self._user_agent = connections, timeout, user_agent

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, on the running loop (the operator's).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._credentials.ssl),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                json_serialize=json.dumps,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """One call; the decoded JSON answer, or `KubeApiError` for an error status."""
        credentials = self._credentials
        headers = {"Accept": "application/json"}
        if self._user_agent:
            headers["User-Agent"] = self._user_agent
        authorization = credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":")).encode()
        async with self._client().request(
            method,
            credentials.host + path,
            data=data,
            params=params,
            headers=headers,
            proxy=credentials.proxy,
            server_hostname=credentials.server_hostname,
        ) as response:
            text = await response.read()
            if response.status >= 400:
                raise _error(response.status, text)
            return json.loads(text) if text else None

    def _instance_path(self, namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{_path(namespace)}/{PLURAL}/{_path(name)}"

    async def get_instance(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await self.request("GET", self._instance_path(namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], obj)

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
        path = self._instance_path(metadata["namespace"], metadata["name"]) + "/status"
        try:
            updated = await self.request("PUT", path, body)
        except KubeApiError as exc:
            if exc.status == 409:
                raise StatusConflict(f"{metadata['namespace']}/{metadata['name']} changed") from exc
            raise
        return cast(dict[str, Any], updated)

    async def create_event(self, namespace: str, body: dict[str, Any]) -> bool:
        """POST a core/v1 Event with a fixed name; False when one of that name exists (409)."""
        body = {"apiVersion": "v1", "kind": "Event", **body}
        try:
            await self.request("POST", f"/api/v1/namespaces/{_path(namespace)}/events", body)
        except KubeApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def read_event_count(self, namespace: str, name: str) -> int | None:
        """The count of the named Event (None: it does not exist)."""
        try:
            event = await self.request("GET", f"/api/v1/namespaces/{_path(namespace)}/events/{_path(name)}")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return int((event or {}).get("count") or 1)

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> bool:
        """Merge-patch the named Event; False when it is gone (404: Events expire)."""
        try:
            await self.request(
                "PATCH",
                f"/api/v1/namespaces/{_path(namespace)}/events/{_path(name)}",
                patch,
                content_type="application/merge-patch+json",
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def get_secret(self, namespace: str, name: str) -> SecretLookup:
        try:
            secret = await self.request("GET", f"/api/v1/namespaces/{_path(namespace)}/secrets/{_path(name)}")
        except KubeApiError as exc:
            if exc.status == 404:
                return SecretLookup(None)
            raise
        decoded = {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in ((secret or {}).get("data") or {}).items()
        }
        decoded.update((secret or {}).get("stringData") or {})
        return SecretLookup(decoded)


def _error(status: int, text: bytes) -> KubeApiError:
    reason, message = "", text.decode("utf-8", errors="replace")[:500]
    try:
        body = json.loads(text)
        if isinstance(body, dict):
            reason, message = str(body.get("reason") or ""), str(body.get("message") or message)
    except ValueError:
        pass
    return KubeApiError(status, reason, message)
