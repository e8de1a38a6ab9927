"""KubeApi, the operator's own Kubernetes calls on aiohttp: paths, verbs, bodies, credentials,
and the answers the reconciler relies on (404 → None, 409 → StatusConflict / False)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from claw_operator.kube.kubeapi import KubeApi, KubeApiError, StatusConflict

PATH = "/apis/claw.dev/v1alpha1/namespaces/team-a/clawinstances/claw-1"
OBJ = {
    "apiVersion": "claw.dev/v1alpha1",
    "kind": "ClawInstance",
    "metadata": {"name": "claw-1", "namespace": "team-a", "resourceVersion": "7", "uid": "u1"},
    "spec": {"region": "iad"},
}


class FakeApiserver:
    """Answers what a test sets per (method, path); records every request."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "body": json.loads(body) if body else None,
            }
        )
        status, answer = self.answers.get((request.method, request.path), (404, {"reason": "NotFound"}))
        return web.json_response(answer, status=status)


@pytest.fixture
async def apiserver() -> AsyncIterator[tuple[FakeApiserver, KubeApi]]:
    fake = FakeApiserver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
    configuration.api_key = {"authorization": "s3cr3t"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    api = KubeApi(client.ApiClient(configuration))
    try:
        yield fake, api
    finally:
        await api.aclose()
        await runner.cleanup()


async def test_get_instance_sends_the_token_and_reads_404_as_gone(
    apiserver: tuple[FakeApiserver, KubeApi],
) -> None:
    fake, api = apiserver
    fake.answers[("GET", PATH)] = (200, OBJ)
    assert await api.get_instance("team-a", "claw-1") == OBJ
    assert fake.requests[-1]["headers"]["Authorization"] == "Bearer s3cr3t"
    assert await api.get_instance("team-a", "other") is None


async def test_replace_status_is_conditional_and_409_is_a_conflict(
    apiserver: tuple[FakeApiserver, KubeApi],
) -> None:
    fake, api = apiserver
    updated = {**OBJ, "status": {"phase": "Running"}}
    fake.answers[("PUT", PATH + "/status")] = (200, updated)
    assert await api.replace_status(OBJ, {"phase": "Running"}) == updated
    sent = fake.requests[-1]["body"]
    assert sent["metadata"]["resourceVersion"] == "7" and sent["status"] == {"phase": "Running"}
    fake.answers[("PUT", PATH + "/status")] = (409, {"reason": "Conflict"})
    with pytest.raises(StatusConflict):
        await api.replace_status(OBJ, {"phase": "Running"})
    fake.answers[("PUT", PATH + "/status")] = (500, {"reason": "InternalError", "message": "boom"})
    with pytest.raises(KubeApiError) as failed:
        await api.replace_status(OBJ, {})
    assert failed.value.status == 500 and failed.value.message == "boom"


async def test_events_and_secrets(apiserver: tuple[FakeApiserver, KubeApi]) -> None:
    fake, api = apiserver
    events = "/api/v1/namespaces/team-a/events"
    fake.answers[("POST", events)] = (201, {})
    assert await api.create_event("team-a", {"metadata": {"name": "e1"}}) is True
    assert fake.requests[-1]["body"]["kind"] == "Event"
    fake.answers[("POST", events)] = (409, {"reason": "AlreadyExists"})
    assert await api.create_event("team-a", {"metadata": {"name": "e1"}}) is False
    fake.answers[("GET", events + "/e1")] = (200, {"count": 4})
    assert await api.read_event_count("team-a", "e1") == 4
    assert await api.read_event_count("team-a", "gone") is None
    fake.answers[("PATCH", events + "/e1")] = (200, {})
    assert await api.patch_event("team-a", "e1", {"count": 5}) is True
    assert fake.requests[-1]["headers"]["Content-Type"] == "application/merge-patch+json"
    assert await api.patch_event("team-a", "gone", {"count": 5}) is False
    secret = {"data": {"token": base64.b64encode(b"value").decode()}}
    fake.answers[("GET", "/api/v1/namespaces/team-a/secrets/creds")] = (200, secret)
    assert (await api.get_secret("team-a", "creds")).data == {"token": "value"}
    assert (await api.get_secret("team-a", "missing")).data is None


async def test_the_token_is_refreshed_from_the_configuration(
    apiserver: tuple[FakeApiserver, KubeApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-cluster token file is rotated: the configuration's refresh hook is honoured."""
    fake, api = apiserver
    fake.answers[("GET", PATH)] = (200, OBJ)
    await api.get_instance("team-a", "claw-1")
    configuration = api._credentials._cfg
    configuration.api_key = {"authorization": "rotated"}
    monkeypatch.setattr("claw_operator.kube.kubeapi.TOKEN_REFRESH_SECONDS", 0.0)
    await api.get_instance("team-a", "claw-1")
    assert fake.requests[-1]["headers"]["Authorization"] == "Bearer rotated"
