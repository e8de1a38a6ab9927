"""The Fly client's default connection pool (aiohttp, without httpx's objects): failures reach
the retry policy as the same typed errors — nothing sent, or sent and maybe processed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from claw_operator.fly import FlyClientConfig, RetryPolicy, Timeout, Unavailable
from claw_operator.fly.transport import R_LEASE, R_MACHINE, R_MACHINES, AiohttpTransport, FlyTransport


def _config(url: str) -> FlyClientConfig:
    return FlyClientConfig(token="t", base_url=url, retry=RetryPolicy(attempts=1), timeout=0.5)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def machine(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "state": "started"})

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def drop(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.json_response({})

    async def echo_headers(request: web.Request) -> web.Response:
        return web.json_response({"headers": dict(request.headers), "body": (await request.read()).decode()})

    app = web.Application()
    app.router.add_get("/v1/apps/{app}/machines/{id}", machine)
    app.router.add_route("*", "/v1/apps/{app}/machines/{id}/lease", echo_headers)
    app.router.add_post("/v1/apps/hang/machines", hang)
    app.router.add_post("/v1/apps/drop/machines", drop)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def test_the_default_transport_is_aiohttps_pool() -> None:
    transport = FlyTransport(_config("http://127.0.0.1:1"))
    assert isinstance(transport._exchange, AiohttpTransport)


async def test_an_answer_reads_as_httpx_would(server: str) -> None:
    # status, JSON body, case-insensitive headers, and the method it answers
    transport = FlyTransport(_config(server))
    try:
        response = await transport.send("GET", R_MACHINE, action="get", app="a", object_id="m1")
        assert response.status_code == 200 and response.json() == {"id": "m1", "state": "started"}
        assert response.headers["content-type"].startswith("application/json")
        assert response.is_success and response.method == "GET"
    finally:
        await transport.aclose()


async def test_nothing_listening_is_unavailable_and_never_ambiguous() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = FlyTransport(_config(f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(Unavailable) as refused:
            await transport.send("POST", R_MACHINES, action="create_machine", app="a", json={})
        assert refused.value.ambiguous is False
    finally:
        await transport.aclose()


async def test_a_create_without_an_answer_may_have_happened(server: str) -> None:
    transport = FlyTransport(_config(server))
    try:
        with pytest.raises(Timeout) as slow:
            await transport.send("POST", R_MACHINES, action="create_machine", app="hang", json={})
        assert slow.value.ambiguous is True
        with pytest.raises(Unavailable) as dropped:
            await transport.send("POST", R_MACHINES, action="create_machine", app="drop", json={})
        assert dropped.value.ambiguous is True
    finally:
        await transport.aclose()


async def test_the_headers_sent_are_the_clients_alone(server: str) -> None:
    """The default headers live in aiohttp's session; a request with more (a lease nonce, a JSON
    body) sends them all, and none sends aiohttp's own User-Agent."""
    config = _config(server)
    transport = FlyTransport(config)
    try:
        plain = await transport.send("GET", R_LEASE, action="get", app="a", object_id="m1")
        sent = plain.json()["headers"]
        assert sent["Authorization"] == "Bearer t" and sent["Accept"] == "application/json"
        assert sent["User-Agent"] == config.user_agent
        assert "Content-Type" not in sent and "fly-machine-lease-nonce" not in sent
        more = await transport.send(
            "POST", R_LEASE, action="lease", app="a", object_id="m1", json={"ttl": 30}, lease_nonce="n1"
        )
        sent = more.json()["headers"]
        assert sent["Authorization"] == "Bearer t" and sent["User-Agent"] == config.user_agent
        assert sent["fly-machine-lease-nonce"] == "n1" and sent["Content-Type"] == "application/json"
        assert more.json()["body"] == '{"ttl":30}'
        # The next plain request carries no header of the one before.
        again = (await transport.send("GET", R_LEASE, action="get", app="a", object_id="m1")).json()
        assert "fly-machine-lease-nonce" not in again["headers"]
    finally:
        await transport.aclose()


async def test_each_object_gets_its_own_url(server: str) -> None:
    transport = FlyTransport(_config(server))
    try:
        for machine_id in ("m1", "m2", "m1", "m/3"):
            response = await transport.send("GET", R_MACHINE, action="get", app="a", object_id=machine_id)
            assert response.json()["id"] == machine_id
    finally:
        await transport.aclose()
