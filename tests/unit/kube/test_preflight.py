"""Start-up checks: what each answer of the apiserver means for the operator's start."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from claw_operator.kube import preflight
from claw_operator.kube.preflight import StartupError, _check_kubernetes, _Retry


def _api_client() -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = "https://k8s.example:6443"
    return client.ApiClient(configuration)


def _failing(monkeypatch: pytest.MonkeyPatch, error: Exception) -> list[Any]:
    calls: list[Any] = []

    def list_cluster(*args: Any, **kwargs: Any) -> Any:
        calls.append(("cluster", args))
        raise error

    def list_namespaced(*args: Any, **kwargs: Any) -> Any:
        calls.append(("namespaced", args))
        raise error

    monkeypatch.setattr(
        client.CustomObjectsApi, "list_cluster_custom_object", lambda self, *a, **k: list_cluster(*a, **k)
    )
    monkeypatch.setattr(
        client.CustomObjectsApi,
        "list_namespaced_custom_object",
        lambda self, *a, **k: list_namespaced(*a, **k),
    )
    return calls


def _status(code: int, message: str = "") -> ApiException:
    exc = ApiException(status=code, reason="x")
    exc.body = json.dumps({"kind": "Status", "message": message})
    return exc


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (404, "CRD (clawinstances.claw.dev) is not installed at https://k8s.example:6443"),
        (401, "rejects our credentials (401)"),
        (
            403,
            "RBAC forbids listing clawinstances.claw.dev in namespace team-a (no way): grant get, list",
        ),
    ],
)
def test_what_waiting_cannot_fix_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    _failing(monkeypatch, _status(code, "no way"))
    with pytest.raises(StartupError) as raised:
        _check_kubernetes(_api_client(), ("team-a",))
    assert words in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "error", [urllib3.exceptions.MaxRetryError(None, "/", "refused"), _status(503), ConnectionRefusedError()]
)
def test_what_can_heal_is_retried(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    _failing(monkeypatch, error)
    with pytest.raises(_Retry):
        _check_kubernetes(_api_client(), ())


def test_every_watched_namespace_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(
        client.CustomObjectsApi,
        "list_namespaced_custom_object",
        lambda self, group, version, namespace, plural, **kw: seen.append(namespace) or {"items": []},
    )
    _check_kubernetes(_api_client(), ("a", "b"))
    assert seen == ["a", "b"]


def test_the_kubeconfig_error_is_one_line() -> None:
    error = preflight.describe_kubeconfig_error(ValueError("bad\n  yaml\n here"), "/x")
    assert str(error).startswith("no usable Kubernetes configuration (--kubeconfig /x): bad yaml here;")
