"""FlyMachinesClient behaviour over a scripted transport (httpx.MockTransport): retry policy,
Retry-After on a fake clock (looptime), create never re-sent, waits, logging, auth.

The same behaviours are pinned against flysim over real HTTP in tests/contract/fly/."""

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from claw_operator.fly import (
    AmbiguousCreate,
    CapacityScope,
    FlyClientConfig,
    FlyMachinesClient,
    InsufficientCapacity,
    InvalidConfig,
    MachineConfig,
    Mount,
    NotFound,
    OwnerTag,
    Precondition,
    PreconditionReason,
    RateLimits,
    RetryPolicy,
    Unavailable,
    UnexpectedResponse,
    WaitTimeout,
    close_shared_client,
    get_shared_client,
)
from claw_operator.fly.leases import MachineLeases
from claw_operator.fly.tags import METADATA_UID_KEY

TOKEN = "fm2_super-secret-token-value"
APP = "claw-app"
OWNER = OwnerTag(uid="uid-1234", namespace="ns", name="inst")

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def machine_json(machine_id: str = "m1", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": machine_id,
        "state": "started",
        "instance_id": "01HEPA330HZ37A78TK080NAK1M",
        "created_at": "2026-11-24T07:00:00Z",
        "config": {"image": "img", "metadata": OWNER.metadata()},
    }
    body.update(extra)
    return body


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    all_headers = {"fly-request-id": f"req-{status}", **(headers or {})}
    if body is None:
        return httpx.Response(status, headers=all_headers)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=all_headers)
    return httpx.Response(status, json=body, headers=all_headers)


@dataclass
class ScriptedFly:
    """Answers each (method, path) from a queue; the last answer repeats."""

    script: dict[tuple[str, str], deque[Reply]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.script[(method, path)] = deque(replies)

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(asyncio.get_running_loop().time())
        queue = self.script.get((request.method, request.url.path))
        if not queue:
            return reply(500, {"error": f"unscripted {request.method} {request.url.path}"})
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        return answer(request) if callable(answer) else answer


@pytest.fixture
def fly() -> ScriptedFly:
    return ScriptedFly()


def make_client(fly: ScriptedFly, **overrides: Any) -> FlyMachinesClient:
    settings: dict[str, Any] = {
        "token": TOKEN,
        "base_url": "https://fly.test",
        "rate_limits": RateLimits(enabled=False),
        "retry": RetryPolicy(attempts=4, wait_initial=0.01, wait_max=0.05, wait_jitter=0.0),
        "create_resolve_delay": 0.01,
    }
    settings.update(overrides)
    return FlyMachinesClient(FlyClientConfig(**settings), transport=httpx.MockTransport(fly))


@pytest.fixture
async def client(fly: ScriptedFly) -> AsyncIterator[FlyMachinesClient]:
    async with make_client(fly) as c:
        yield c


MACHINES = f"/v1/apps/{APP}/machines"
MACHINE = f"{MACHINES}/m1"


# --- auth and logging ------------------------------------------------------------------------


async def test_auth_header_and_token_never_logged(
    fly: ScriptedFly, client: FlyMachinesClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx/httpcore included
    fly.on("GET", MACHINE, reply(200, machine_json()))
    fly.on("POST", f"{MACHINE}/stop", reply(401, {"error": "Authenticate: token validation error"}))
    await client.get_machine(APP, "m1")
    with pytest.raises(Exception) as raised:
        await client.stop_machine(APP, "m1")
    assert fly.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert caplog.records, "calls must be logged"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in json.dumps(record.__dict__, default=str)
    assert TOKEN not in str(raised.value) and TOKEN not in repr(raised.value)
    assert TOKEN not in repr(client)


async def test_every_call_logged_with_route_template_status_duration_request_id(
    fly: ScriptedFly, client: FlyMachinesClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="claw_operator.fly")
    fly.on("GET", MACHINE, reply(200, machine_json()))
    fly.on("POST", f"{MACHINE}/start", reply(503, "<html><title>503</title></html>"))
    await client.get_machine(APP, "m1")
    with pytest.raises(Unavailable):
        await client.start_machine(APP, "m1")
    calls = [r for r in caplog.records if r.name == "claw_operator.fly" and hasattr(r, "fly_route")]
    assert [(r.fly_method, r.fly_route, r.fly_status) for r in calls] == [  # type: ignore[attr-defined]
        ("GET", "/v1/apps/{app}/machines/{id}", 200),
        ("POST", "/v1/apps/{app}/machines/{id}/start", 503),
    ]
    for record in calls:
        assert record.fly_request_id.startswith("req-")  # type: ignore[attr-defined]
        assert record.fly_duration_ms >= 0  # type: ignore[attr-defined]
        assert record.fly_app == APP and record.fly_object_id == "m1"  # type: ignore[attr-defined]
    assert calls[0].levelno == logging.INFO and calls[1].levelno == logging.WARNING
    duration = calls[0].fly_duration_ms  # type: ignore[attr-defined]
    assert calls[0].getMessage() == f"fly GET /v1/apps/{{app}}/machines/{{id}} -> 200 in {duration:.1f}ms"
    assert not hasattr(calls[0], "fly_error")
    assert calls[1].getMessage().startswith("fly POST /v1/apps/{app}/machines/{id}/start -> 503 in ")
    assert calls[1].fly_error == "Unavailable"  # type: ignore[attr-defined]


async def test_no_record_is_built_when_the_level_filters_it_out(
    fly: ScriptedFly,
    client: FlyMachinesClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = logging.getLogger("claw_operator.fly")
    built: list[int] = []
    make_record = logger.makeRecord

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        built.append(record.levelno)
        return record

    monkeypatch.setattr(logger, "makeRecord", counting)
    caplog.set_level(logging.WARNING, logger="claw_operator.fly")
    fly.on("GET", MACHINE, reply(200, machine_json()))
    await client.get_machine(APP, "m1")
    assert built == []
    caplog.set_level(logging.INFO, logger="claw_operator.fly")
    await client.get_machine(APP, "m1")
    assert built == [logging.INFO]


# --- retries ---------------------------------------------------------------------------------


async def test_get_is_retried_on_5xx(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", MACHINE, reply(502, "<html>bad gateway</html>"), reply(503, {}), reply(200, machine_json()))
    machine = await client.get_machine(APP, "m1")
    assert machine.id == "m1"
    assert len(fly.calls("GET", MACHINE)) == 3


async def test_get_gives_up_after_the_attempts(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", MACHINE, reply(503, {"error": "unavailable: host down"}))
    with pytest.raises(Unavailable) as raised:
        await client.get_machine(APP, "m1")
    assert raised.value.request_id == "req-503"
    assert len(fly.calls("GET", MACHINE)) == 4


async def test_terminal_errors_are_not_retried(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", MACHINE, reply(404, {"error": "not_found: machine not found"}))
    with pytest.raises(NotFound):
        await client.get_machine(APP, "m1")
    assert len(fly.calls("GET", MACHINE)) == 1


@pytest.mark.looptime
async def test_retry_after_is_honoured_on_a_fake_clock(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on(
        "GET",
        MACHINE,
        reply(429, {"error": "rate limited"}, {"Retry-After": "7"}),
        reply(200, machine_json()),
    )
    await client.get_machine(APP, "m1")
    assert len(fly.times) == 2
    assert fly.times[1] - fly.times[0] >= 7.0
    # Capped jitter on top, never a multiple.
    assert fly.times[1] - fly.times[0] <= 7.0 * 1.1 + 0.01


@pytest.mark.looptime
async def test_retry_after_is_clipped(fly: ScriptedFly) -> None:
    fly.on("GET", MACHINE, reply(429, {}, {"Retry-After": "3600"}), reply(200, machine_json()))
    policy = RetryPolicy(attempts=3, max_retry_after=5.0, wait_jitter=0.0)
    async with make_client(fly, retry=policy) as client:
        await client.get_machine(APP, "m1")
    assert 5.0 <= fly.times[1] - fly.times[0] <= 5.6


async def test_start_is_not_resent_after_an_ambiguous_failure(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    fly.on("POST", f"{MACHINE}/start", reply(503, {}), reply(200, {"previous_state": "stopped"}))
    with pytest.raises(Unavailable) as raised:
        await client.start_machine(APP, "m1")
    assert raised.value.ambiguous
    assert len(fly.calls("POST", f"{MACHINE}/start")) == 1


async def test_start_is_resent_after_429(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on(
        "POST",
        f"{MACHINE}/start",
        reply(429, {}, {"Retry-After": "0"}),
        reply(200, {"previous_state": "stopped"}),
    )
    result = await client.start_machine(APP, "m1")
    assert result.previous_state == "stopped"
    assert len(fly.calls("POST", f"{MACHINE}/start")) == 2


async def test_leased_update_is_retried_with_the_same_nonce(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    fly.on("POST", MACHINE, reply(504, "timeout"), reply(200, machine_json(instance_id="v2")))
    updated = await client.update_machine(APP, "m1", MachineConfig(image="img2"), lease_nonce="abcdef012345")
    assert updated.instance_id == "v2"
    sent = fly.calls("POST", MACHINE)
    assert len(sent) == 2
    assert {r.headers["fly-machine-lease-nonce"] for r in sent} == {"abcdef012345"}
    assert json.loads(sent[0].content) == {"config": {"image": "img2"}}


async def test_unleased_update_is_not_retried(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("POST", MACHINE, reply(504, "timeout"), reply(200, machine_json()))
    with pytest.raises(Exception) as raised:
        await client.update_machine(APP, "m1", MachineConfig(image="img2"))
    assert getattr(raised.value, "ambiguous", False)
    assert len(fly.calls("POST", MACHINE)) == 1


async def test_network_reset_on_get_is_retried(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    fly.on("GET", MACHINE, reset, reply(200, machine_json()))
    assert (await client.get_machine(APP, "m1")).id == "m1"


async def test_success_body_of_the_wrong_shape_is_an_unexpected_response(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    fly.on("GET", MACHINE, reply(200, {"state": "started"}))  # no id
    with pytest.raises(UnexpectedResponse) as raised:
        await client.get_machine(APP, "m1")
    assert raised.value.request_id == "req-200"
    assert "does not fit the expected shape (1 errors)" in str(raised.value)


async def test_non_json_success_body(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", MACHINE, reply(200, "<html>login</html>"))
    with pytest.raises(UnexpectedResponse) as raised:
        await client.get_machine(APP, "m1")
    assert "not JSON" in str(raised.value) and raised.value.request_id == "req-200"


# --- create ----------------------------------------------------------------------------------


async def test_create_tags_the_machine_and_sends_the_create_fields(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    fly.on("POST", MACHINES, reply(200, machine_json(state="created")))
    config = MachineConfig(image="img", metadata={"extra": "1"}, mounts=[Mount(volume="vol_1", path="/root")])
    await client.create_machine(
        APP, config, owner=OWNER, name="claw-x", region="iad", skip_launch=True, min_secrets_version=3
    )
    sent = json.loads(fly.calls("POST", MACHINES)[0].content)
    assert sent == {
        "config": {
            "image": "img",
            "metadata": {"extra": "1", **OWNER.metadata()},
            "mounts": [{"volume": "vol_1", "path": "/root"}],
        },
        "name": "claw-x",
        "region": "iad",
        "skip_launch": True,
        "min_secrets_version": 3,
    }
    assert config.metadata == {"extra": "1"}, "the caller's config is not mutated"


@pytest.mark.parametrize("failure", [reply(408, {"error": "timeout"}), reply(502, "<html>502</html>")])
async def test_ambiguous_create_is_resolved_by_listing(
    fly: ScriptedFly, client: FlyMachinesClient, failure: httpx.Response
) -> None:
    fly.on("POST", MACHINES, failure, reply(200, machine_json("dup")))
    fly.on(
        "GET", MACHINES, reply(200, []), reply(200, [machine_json("m1"), machine_json("other", config={})])
    )
    machine = await client.create_machine(APP, MachineConfig(image="img"), owner=OWNER)
    assert machine.id == "m1"
    assert len(fly.calls("POST", MACHINES)) == 1, "a create is never re-sent after an ambiguous failure"
    listed = fly.calls("GET", MACHINES)
    assert listed[0].url.params[f"metadata.{METADATA_UID_KEY}"] == OWNER.uid


async def test_ambiguous_create_not_found_raises_and_never_resends(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    fly.on("POST", MACHINES, reply(408, {}), reply(200, machine_json("dup")))
    fly.on("GET", MACHINES, reply(200, []))
    with pytest.raises(AmbiguousCreate) as raised:
        await client.create_machine(APP, MachineConfig(image="img"), owner=OWNER)
    assert raised.value.retryable and raised.value.ambiguous
    assert raised.value.cause.status == 408
    assert len(fly.calls("POST", MACHINES)) == 1
    assert len(fly.calls("GET", MACHINES)) == client.config.create_resolve_attempts


async def test_destroyed_machines_do_not_resolve_a_create(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    fly.on("POST", MACHINES, reply(503, {}))
    fly.on("GET", MACHINES, reply(200, [machine_json("old", state="destroyed")]))
    with pytest.raises(AmbiguousCreate):
        await client.create_machine(APP, MachineConfig(image="img"), owner=OWNER)


async def test_definite_create_errors_are_raised_without_listing(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    fly.on("POST", MACHINES, reply(400, {"error": "invalid_argument: image required"}))
    with pytest.raises(InvalidConfig):
        await client.create_machine(APP, MachineConfig(), owner=OWNER)
    assert fly.calls("GET", MACHINES) == []


async def test_create_after_429_is_resent(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("POST", MACHINES, reply(429, {}, {"Retry-After": "0"}), reply(200, machine_json()))
    assert (await client.create_machine(APP, MachineConfig(image="img"), owner=OWNER)).id == "m1"
    assert len(fly.calls("POST", MACHINES)) == 2


async def test_list_filters_metadata_on_the_client_too(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    # A server that ignores the (undocumented in the spec) metadata filter must not leak others.
    fly.on("GET", MACHINES, reply(200, [machine_json("m1"), machine_json("m2", config={"metadata": {}})]))
    assert [m.id for m in await client.list_machines(APP, metadata=OWNER.selector())] == ["m1"]


# --- waits -----------------------------------------------------------------------------------


@pytest.mark.looptime
async def test_wait_loops_over_server_deadlines(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    deadline = reply(
        408,
        {"error": "deadline_exceeded: machine failed to reach desired state, started, currently starting"},
    )
    fly.on("GET", f"{MACHINE}/wait", deadline, deadline, reply(200, {"ok": True, "state": "started"}))
    result = await client.wait_for_state(APP, "m1", "started", timeout=300)
    assert result.state == "started"
    waits = fly.calls("GET", f"{MACHINE}/wait")
    assert len(waits) == 3
    assert waits[0].url.params["timeout"] == "60"
    assert waits[0].url.params["state"] == "started"
    read_timeout = waits[0].extensions["timeout"]["read"]
    assert read_timeout == 60 + client.config.wait_margin


@pytest.mark.looptime
async def test_wait_gives_up_at_the_overall_deadline(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on(
        "GET",
        f"{MACHINE}/wait",
        reply(
            408,
            {"error": "deadline_exceeded: machine failed to reach desired state, started, currently created"},
        ),
    )
    with pytest.raises(WaitTimeout) as raised:
        await client.wait_for_state(APP, "m1", ["started"], timeout=5)
    assert raised.value.current_state == "created"
    assert fly.calls("GET", f"{MACHINE}/wait")[0].url.params["timeout"] == "5"


async def test_wait_stopped_needs_instance_id(client: FlyMachinesClient) -> None:
    with pytest.raises(ValueError, match="instance_id"):
        await client.wait_for_state(APP, "m1", "stopped")


async def test_wait_stopped_sends_instance_id(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", f"{MACHINE}/wait", reply(200, {"ok": True, "state": "stopped"}))
    await client.wait_for_state(APP, "m1", "stopped", instance_id="v1")
    assert fly.calls("GET", f"{MACHINE}/wait")[0].url.params["instance_id"] == "v1"


async def test_wait_destroyed_on_a_gone_machine_succeeds(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", f"{MACHINE}/wait", reply(404, {"error": "machine not found"}))
    assert (await client.wait_for_state(APP, "m1", "destroyed")).state == "destroyed"


async def test_wait_400_is_not_looped(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", f"{MACHINE}/wait", reply(400, {"error": "invalid_argument: bad state"}))
    with pytest.raises(InvalidConfig):
        await client.wait_for_state(APP, "m1", "started")
    assert len(fly.calls("GET", f"{MACHINE}/wait")) == 1


async def test_stop_and_wait_uses_the_instance_id(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", MACHINE, reply(200, machine_json(instance_id="v7")))
    fly.on("POST", f"{MACHINE}/stop", reply(200, {"ok": True}))
    fly.on("GET", f"{MACHINE}/wait", reply(200, {"ok": True, "state": "stopped"}))
    await client.stop_machine_and_wait(APP, "m1")
    assert fly.calls("GET", f"{MACHINE}/wait")[0].url.params["instance_id"] == "v7"


# --- destroy, volumes, leases ----------------------------------------------------------------


async def test_destroy_reports_already_gone(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("DELETE", MACHINE, reply(200, {"ok": True}), reply(404, {"error": "not_found: machine not found"}))
    assert await client.destroy_machine(APP, "m1", force=True) is True
    assert fly.calls("DELETE", MACHINE)[0].url.params["force"] == "true"
    assert await client.destroy_machine(APP, "m1") is False


async def test_delete_bound_volume_is_a_retryable_precondition(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    path = f"/v1/apps/{APP}/volumes/vol_1"
    fly.on(
        "DELETE", path, reply(412, {"error": "failed_precondition: volume is currently bound to machine: m1"})
    )
    with pytest.raises(Precondition) as raised:
        await client.delete_volume(APP, "vol_1")
    assert raised.value.reason is PreconditionReason.VOLUME_BOUND and raised.value.retryable
    assert len(fly.calls("DELETE", path)) == 1


async def test_volume_region_fallback(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    path = f"/v1/apps/{APP}/volumes"

    def by_region(request: httpx.Request) -> httpx.Response:
        region = json.loads(request.content)["region"]
        if region in ("iad", "ord"):
            return reply(412, {"error": f"no capacity available in {region}"})
        return reply(200, {"id": "vol_1", "name": "v", "region": region, "state": "created"})

    fly.on("POST", path, by_region)
    volume = await client.create_volume(APP, name="v", regions=["iad", "ord", "lhr"], size_gb=10)
    assert volume.region == "lhr"
    assert [json.loads(r.content)["region"] for r in fly.calls("POST", path)] == ["iad", "ord", "lhr"]
    with pytest.raises(InsufficientCapacity) as raised:
        await client.create_volume(APP, name="v", regions=["iad", "ord"])
    assert raised.value.scope is CapacityScope.REGION
    assert "iad, ord" in raised.value.message


async def test_volume_fallback_stops_on_other_errors(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    path = f"/v1/apps/{APP}/volumes"
    fly.on("POST", path, reply(400, {"error": "invalid size"}))
    with pytest.raises(InvalidConfig):
        await client.create_volume(APP, name="v", regions=["iad", "ord"])
    assert len(fly.calls("POST", path)) == 1


async def test_ambiguous_volume_create_is_resolved_by_name(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    path = f"/v1/apps/{APP}/volumes"
    fly.on("POST", path, reply(408, {}))
    now = "2999-01-01T00:00:00Z"
    fly.on(
        "GET",
        path,
        reply(
            200,
            [
                {"id": "vol_other_region", "name": "v", "region": "ord", "created_at": now},
                {
                    "id": "vol_deleted",
                    "name": "v",
                    "region": "iad",
                    "state": "pending_destroy",
                    "created_at": now,
                },
                {"id": "vol_old", "name": "v", "region": "iad", "created_at": "2020-01-01T00:00:00Z"},
                {"id": "vol_ours", "name": "v", "region": "iad", "state": "created", "created_at": now},
            ],
        ),
    )
    volume = await client.create_volume(APP, name="v", regions=["iad", "ord"])
    assert volume.id == "vol_ours"
    assert len(fly.calls("POST", path)) == 1


async def test_ambiguous_volume_create_keeps_looking_until_its_time_is_up(fly: ScriptedFly) -> None:
    """Bounded by time, not by a few tries: a list that shows the volume only after more looks
    than `create_resolve_attempts` still resolves the create (issue 18)."""
    path = f"/v1/apps/{APP}/volumes"
    fly.on("POST", path, reply(408, {}))
    now = "2999-01-01T00:00:00Z"
    found = [{"id": "vol_ours", "name": "v", "region": "iad", "state": "created", "created_at": now}]
    fly.on("GET", path, *[reply(200, [])] * 8, reply(200, found))
    async with make_client(fly, create_resolve_attempts=2, volume_resolve_timeout=5.0) as client:
        volume = await client.create_volume(APP, name="v", regions=["iad"])
    assert volume.id == "vol_ours"
    assert len(fly.calls("GET", path)) == 9
    assert len(fly.calls("POST", path)) == 1


async def test_ambiguous_volume_create_not_found_in_time_raises_and_never_resends(fly: ScriptedFly) -> None:
    path = f"/v1/apps/{APP}/volumes"
    fly.on("POST", path, reply(503, {}), reply(200, {"id": "vol_dup", "name": "v", "region": "iad"}))
    fly.on("GET", path, reply(200, []))
    async with make_client(fly, volume_resolve_timeout=0.2) as client:
        with pytest.raises(AmbiguousCreate) as raised:
            await client.create_volume(APP, name="v", regions=["iad"])
    assert raised.value.retryable and raised.value.ambiguous
    assert len(fly.calls("POST", path)) == 1
    looks = fly.times[1:]
    assert len(looks) >= 2 and looks[-1] - looks[0] >= 0.1


async def test_lease_context_acquires_and_releases(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    lease_path = f"{MACHINE}/lease"
    fly.on(
        "POST",
        lease_path,
        reply(200, {"status": "success", "data": {"nonce": "0123456789ab", "expires_at": 9}}),
    )
    fly.on("DELETE", lease_path, reply(500, {}))  # a failed release is logged, not raised
    fly.on("GET", MACHINE, reply(200, machine_json()))
    fly.on("POST", MACHINE, reply(200, machine_json(instance_id="v2")))

    def repair(machine: Any) -> MachineConfig:
        return machine.config.model_copy(update={"mounts": [Mount(volume="vol_9", path="/root")]})

    updated = await MachineLeases(client).update_machine(APP, "m1", repair, ttl=20)
    assert updated.instance_id == "v2"
    assert fly.calls("POST", lease_path)[0].url.params["ttl"] == "20"
    update = fly.calls("POST", MACHINE)[0]
    assert update.headers["fly-machine-lease-nonce"] == "0123456789ab"
    assert json.loads(update.content)["config"]["mounts"] == [{"volume": "vol_9", "path": "/root"}]
    assert json.loads(update.content)["config"]["metadata"] == OWNER.metadata()
    assert {r.headers["fly-machine-lease-nonce"] for r in fly.calls("DELETE", lease_path)} == {"0123456789ab"}


async def test_extend_volume(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    path = f"/v1/apps/{APP}/volumes/vol_1/extend"
    fly.on("PUT", path, reply(200, {"volume": {"id": "vol_1", "size_gb": 20}, "needs_restart": True}))
    result = await client.extend_volume(APP, "vol_1", 20)
    assert result.needs_restart and result.volume.size_gb == 20
    assert json.loads(fly.calls("PUT", path)[0].content) == {"size_gb": 20}


# --- rate limiting ---------------------------------------------------------------------------


@pytest.mark.looptime
async def test_limiter_paces_actions_per_machine(fly: ScriptedFly) -> None:
    fly.on("POST", f"{MACHINES}/m1/start", reply(200, {}))
    fly.on("POST", f"{MACHINES}/m2/start", reply(200, {}))
    limits = RateLimits(action_rate=1.0, action_burst=3, headroom=1.0, reserve=0)
    async with make_client(fly, rate_limits=limits) as client:
        start = asyncio.get_running_loop().time()
        await asyncio.gather(*(client.start_machine(APP, "m1") for _ in range(6)))
        await client.start_machine(APP, "m2")
    m1 = [t - start for t, r in zip(fly.times, fly.requests, strict=True) if "/m1/" in r.url.path]
    m2 = [t - start for t, r in zip(fly.times, fly.requests, strict=True) if "/m2/" in r.url.path]
    # A burst of 3, then one per second.
    assert m1[:3] == pytest.approx([0, 0, 0], abs=0.01)
    assert m1[5] >= 2.99
    for a, b in itertools.pairwise(m1[2:]):
        assert b - a >= 0.99
    # Another machine's bucket is its own (it only waited for m1's gather to finish).
    assert m2[0] == pytest.approx(m1[5], abs=0.01)


@pytest.mark.looptime
async def test_limiter_get_bucket_is_more_generous(fly: ScriptedFly) -> None:
    fly.on("GET", MACHINE, reply(200, machine_json()))
    limits = RateLimits(get_rate=5.0, get_burst=10, headroom=1.0, reserve=0)
    async with make_client(fly, rate_limits=limits) as client:
        start = asyncio.get_running_loop().time()
        await asyncio.gather(*(client.get_machine(APP, "m1") for _ in range(15)))
    elapsed = [t - start for t in fly.times]
    assert sum(1 for t in elapsed if t < 0.01) == 10
    assert max(elapsed) >= 0.99  # 5 more at 5/s


async def test_one_shared_client_per_process() -> None:
    config = FlyClientConfig(token=TOKEN, base_url="https://fly.test")
    try:
        shared = get_shared_client(config)
        assert get_shared_client(config) is shared
        with pytest.raises(RuntimeError):
            get_shared_client(FlyClientConfig(token="other", base_url="https://fly.test"))
    finally:
        await close_shared_client()
    assert get_shared_client(config) is not shared
    await close_shared_client()


async def test_lease_refresh_sends_the_nonce_and_release_ignores_a_lost_lease(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    lease_path = f"{MACHINE}/lease"
    fly.on("POST", lease_path, reply(200, {"nonce": "0123456789ab", "expires_at": 99}))  # flat shape
    fly.on(
        "DELETE",
        lease_path,
        reply(404, {"status": "error", "message": "lease not found", "code": "not_found"}),
    )
    refreshed = await MachineLeases(client).refresh(APP, "m1", "0123456789ab", ttl=13)
    assert refreshed.nonce == "0123456789ab" and refreshed.expires_at == 99
    sent = fly.calls("POST", lease_path)[0]
    assert sent.headers["fly-machine-lease-nonce"] == "0123456789ab"
    assert sent.url.params["ttl"] == "13" and json.loads(sent.content) == {"ttl": 13}
    await MachineLeases(client).release(APP, "m1", "0123456789ab")  # expired already: not an error


async def test_list_volumes_hides_soft_deleted_and_filters_by_name(
    fly: ScriptedFly, client: FlyMachinesClient
) -> None:
    fly.on(
        "GET",
        f"/v1/apps/{APP}/volumes",
        reply(
            200,
            [
                {"id": "vol_a", "name": "claw_x", "state": "created"},
                {"id": "vol_b", "name": "claw_x", "state": "pending_destroy"},
                {"id": "vol_c", "name": "other", "state": "created"},
            ],
        ),
    )
    assert [v.id for v in await client.list_volumes(APP, name="claw_x")] == ["vol_a"]
    assert [v.id for v in await client.list_volumes(APP, include_destroyed=True)] == [
        "vol_a",
        "vol_b",
        "vol_c",
    ]


async def test_path_parameters_are_escaped(fly: ScriptedFly, client: FlyMachinesClient) -> None:
    fly.on("GET", "/v1/apps/claw-app/machines/a/b", reply(200, machine_json("a/b")))  # decoded
    await client.get_machine(APP, "a/b")
    assert fly.requests[0].url.raw_path == b"/v1/apps/claw-app/machines/a%2Fb"
