"""`FlyClientConfig.on_request`: one report per HTTP exchange, for the operator's metrics."""

from __future__ import annotations

import httpx
import pytest

from claw_operator.fly import FlyMachinesClient, NotFound, RetryPolicy, Unavailable
from claw_operator.fly.observe import FlyRequest
from tests.unit.fly.test_fly_client import APP, MACHINE, TOKEN, ScriptedFly, machine_json, make_client, reply


async def test_each_exchange_is_reported_with_operation_status_and_duration() -> None:
    fly = ScriptedFly()
    seen: list[FlyRequest] = []
    fly.on("GET", MACHINE, reply(503, "busy"), reply(200, machine_json()))
    fly.on("POST", f"{MACHINE}/stop", reply(404, {"error": "machine not found"}))
    async with make_client(fly, on_request=seen.append) as client:
        await client.get_machine(APP, "m1")  # a 503, retried, then a 200
        with pytest.raises(NotFound):
            await client.stop_machine(APP, "m1")
    assert [(r.operation, r.method, r.status, r.error) for r in seen] == [
        ("get_machine", "GET", 503, "Unavailable"),
        ("get_machine", "GET", 200, None),
        ("stop_machine", "POST", 404, "NotFound"),
    ]
    assert seen[0].route == "/v1/apps/{app}/machines/{id}"
    assert all(r.duration >= 0 for r in seen)
    assert not any(TOKEN in repr(r) or "m1" in repr(r) or APP in repr(r) for r in seen)


async def test_no_answer_is_reported_without_a_status() -> None:
    seen: list[FlyRequest] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fly = ScriptedFly()
    fly.on("GET", MACHINE, refuse)
    async with make_client(fly, on_request=seen.append, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(Unavailable):
            await client.get_machine(APP, "m1")
    assert seen and seen[0].status is None and seen[0].error == "Unavailable"


async def test_a_failing_observer_never_fails_the_call() -> None:
    fly = ScriptedFly()

    def broken(_: FlyRequest) -> None:
        raise RuntimeError("observer bug")

    fly.on("GET", MACHINE, reply(200, machine_json()))
    client: FlyMachinesClient
    async with make_client(fly, on_request=broken) as client:
        machine = await client.get_machine(APP, "m1")
    assert machine.id == "m1"
