"""The Kubernetes side of the plugin, on the operator's own client code (`kube.kubeapi`).

Synchronous (a command does one thing at a time). Every failure becomes a `PluginError` with
one line that names the problem and its fix.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from claw_operator.api import GROUP, KIND, PLURAL, VERSION
from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.kube.kubeapi import load_api_client
from claw_operator.plugin.errors import ExitCode, PluginError

REQUEST_TIMEOUT = 15  # seconds: a person is waiting
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _kubeconfig_namespace(kubeconfig: str | None, context: str | None) -> str | None:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError):
        return None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


def _describe_api_error(exc: ApiException, what: str) -> PluginError:
    message = exc.reason or ""
    try:
        body = json.loads(exc.body or "")
        message = body.get("message") or message
    except (ValueError, TypeError, AttributeError):
        pass
    if exc.status in (401, 403):
        return PluginError(
            ExitCode.FAILED, f"{what}: forbidden ({exc.status}): {message} (check your RBAC / credentials)"
        )
    return PluginError(ExitCode.FAILED, f"{what}: the Kubernetes API answered {exc.status}: {message}")


@dataclass
class Cluster:
    """One Kubernetes API connection and the namespace a bare NAME refers to."""

    api_client: client.ApiClient
    namespace: str

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
        try:
            api_client = load_api_client(kubeconfig, context=context)
        except (config.ConfigException, OSError, yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
            where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            detail = " ".join(str(exc).split())  # one line, whatever the parser said
            raise PluginError(
                ExitCode.CONFIG,
                f"no usable kubeconfig ({where}): {detail}; set KUBECONFIG or pass --kubeconfig PATH",
            ) from exc
        if namespace is None:
            namespace = _kubeconfig_namespace(kubeconfig, context)
        if namespace is None and kubeconfig is None and context is None and IN_CLUSTER_NAMESPACE.exists():
            namespace = IN_CLUSTER_NAMESPACE.read_text().strip() or None
        return cls(api_client, namespace or "default")

    @property
    def server(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def _call(
        self,
        what: str,
        call: Callable[..., Any],
        *args: Any,
        on_404: Callable[[ApiException], PluginError] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One API call; any failure becomes a one-line `PluginError` (404s through `on_404`)."""
        try:
            return call(*args, **kwargs, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404 and on_404 is not None:
                raise on_404(exc) from exc
            raise _describe_api_error(exc, what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise PluginError(
                ExitCode.FAILED,
                f"{what}: cannot reach the Kubernetes API at {self.server} ({type(exc).__name__}); "
                "is the cluster up and the kubeconfig's server right?",
            ) from exc

    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    def get_instance(self, namespace: str, name: str) -> dict[str, Any]:
        def missing(exc: ApiException) -> PluginError:
            if _is_type_missing(exc):
                return _crd_not_installed()
            return PluginError(
                ExitCode.NOT_FOUND, f'clawinstance "{name}" not found in namespace "{namespace}"'
            )

        obj = self._call(
            f"reading clawinstance {namespace}/{name}",
            self._custom().get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            on_404=missing,
        )
        return cast(dict[str, Any], obj)

    def list_instances(self, namespace: str | None) -> list[dict[str, Any]]:
        custom = self._custom()
        what = "listing clawinstances"
        if namespace is None:
            listed = self._call(
                what, custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, on_404=_crd_not_installed
            )
        else:
            listed = self._call(
                what,
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                on_404=_crd_not_installed,
            )
        items = cast(list[dict[str, Any]], listed.get("items") or [])
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def events(self, namespace: str, name: str, uid: str | None) -> list[dict[str, Any]]:
        """The instance's Events, oldest first (by last occurrence)."""
        selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
        listed = self._call(
            f"listing the Events of {namespace}/{name}",
            client.CoreV1Api(self.api_client).list_namespaced_event,
            namespace,
            field_selector=selector,
        )
        serialize = self.api_client.sanitize_for_serialization
        events = [cast(dict[str, Any], serialize(e)) for e in listed.items]  # type: ignore[no-untyped-call]
        if uid:
            # Events of an earlier object of the same name are not this one's.
            events = [e for e in events if (e.get("involvedObject") or {}).get("uid") in (None, uid)]
        return sorted(events, key=event_time)

    def patch_instance(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of the ClawInstance (a clear "not found", exit 3, when there is none)."""
        self.get_instance(namespace, name)
        patched = self._call(
            f"patching clawinstance {namespace}/{name}",
            self._custom().patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body,
        )
        return cast(dict[str, Any], patched)

    def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret (the Fly token): never printed, never logged."""
        secret = self._call(
            f"reading Secret {namespace}/{name}",
            client.CoreV1Api(self.api_client).read_namespaced_secret,
            name,
            namespace,
            on_404=lambda exc: PluginError(
                ExitCode.NOT_FOUND,
                f'Secret "{name}" not found in namespace "{namespace}" (--fly-token-secret)',
            ),
        )
        data = secret.data or {}
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise PluginError(
                ExitCode.NOT_FOUND, f'Secret {namespace}/{name} has no key "{key}" (keys: {keys})'
            )
        return base64.b64decode(data[key]).decode("utf-8", errors="replace").strip()


def _is_type_missing(exc: ApiException) -> bool:
    """A 404 for the resource type itself (no CRD), not for one object of it."""
    try:
        body = json.loads(exc.body or "")
    except (ValueError, TypeError):
        return True
    details = (body.get("details") or {}) if isinstance(body, dict) else {}
    return not details.get("name")


def _crd_not_installed(_: ApiException | None = None) -> PluginError:
    return PluginError(
        ExitCode.CONFIG,
        f"the {KIND} CRD ({PLURAL}.{GROUP}) is not installed in this cluster: "
        "install the chart, or kubectl apply -f crds/clawinstances.yaml",
    )


def event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def parse_time(value: Any) -> datetime | None:
    """A time the API wrote (RFC 3339), or one already read; None when absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_rfc3339(value)
