"""`FlyTransport`: one exchange with the Fly Machines API, the retries around it, and the reading
of Fly's answers. `FlyMachinesClient` says *what* to send; this module says *how*.

Retry policy, per call (the reasons are in `docs/reference/fly-machines-api.md` §7/§10):

* GET (machine, lists, volume), DELETE by id, PUT extend, lease release/refresh, and update
  *with* a lease nonce are retried on 408, 429, 5xx and network errors (`Retry.SAFE`).
  Repeating them cannot duplicate anything: a repeated DELETE answers 404 (= done), and a
  leased update is safe to resend with the same nonce (flyctl does so).
* Create (machine, volume), start, stop, lease acquire and update without a lease are retried
  only on 429 and on failures to connect (`Retry.UNSENT`): both prove the request was never
  processed. Any other failure may hide a success (a "silent success" 408), so it is raised
  with `ambiguous=True`; for creates the client then *looks* for the object instead.
* Waits loop up to an overall deadline: a wait changes nothing, and the server's 408 only means
  "not yet".

Every repeat, of a request or of a whole client step (a wait, a start refused while the machine
settles, a GET right after a create), goes through `retrying`: `stamina`'s capped, jittered
exponential backoff. A Retry-After from a 429 replaces the computed wait (stamina's backoff
hook), clipped to `RetryPolicy.max_retry_after`. Every request first takes a token from the
client-side limiter (`FlyRateLimiter`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import quote

import aiohttp
import httpx
import stamina
from pydantic import ValidationError

from claw_operator.fly.config import FlyClientConfig, auth_header_value
from claw_operator.fly.errors import (
    FlyError,
    RateLimited,
    Timeout,
    Unavailable,
    UnexpectedResponse,
    WaitTimeout,
    classify,
)
from claw_operator.fly.observe import FlyRequest
from claw_operator.fly.ratelimit import FlyRateLimiter

__all__ = [
    "LEASE_NONCE_HEADER",
    "REQUEST_ID_HEADER",
    "AiohttpTransport",
    "Backoff",
    "FlyTransport",
    "Retry",
    "decode_json",
    "parse_as",
    "read_as",
    "retrying",
]

log = logging.getLogger("claw_operator.fly")

_T = TypeVar("_T")

# --- routes ---------------------------------------------------------------------------------------

# Route templates: logged and reported instead of concrete URLs (bounded cardinality, and the
# same names flysim's /_sim/stats uses).
R_APP: Final = "/v1/apps/{app}"
R_MACHINES: Final = "/v1/apps/{app}/machines"
R_MACHINE: Final = "/v1/apps/{app}/machines/{id}"
R_START: Final = "/v1/apps/{app}/machines/{id}/start"
R_STOP: Final = "/v1/apps/{app}/machines/{id}/stop"
R_WAIT: Final = "/v1/apps/{app}/machines/{id}/wait"
R_LEASE: Final = "/v1/apps/{app}/machines/{id}/lease"
R_VOLUMES: Final = "/v1/apps/{app}/volumes"
R_VOLUME: Final = "/v1/apps/{app}/volumes/{id}"
R_VOLUME_EXTEND: Final = "/v1/apps/{app}/volumes/{id}/extend"

# The operation each route and method performs, as reported to `FlyClientConfig.on_request`.
OPERATIONS: Final[Mapping[str, Mapping[str, str]]] = {
    R_APP: {"GET": "get_app"},
    R_MACHINES: {"GET": "list_machines", "POST": "create_machine"},
    R_MACHINE: {"GET": "get_machine", "POST": "update_machine", "DELETE": "destroy_machine"},
    R_START: {"POST": "start_machine"},
    R_STOP: {"POST": "stop_machine"},
    R_WAIT: {"GET": "wait_machine"},
    R_LEASE: {"POST": "lease", "DELETE": "release_lease"},  # POST: acquire or refresh
    R_VOLUMES: {"GET": "list_volumes", "POST": "create_volume"},
    R_VOLUME: {"GET": "get_volume", "DELETE": "delete_volume"},
    R_VOLUME_EXTEND: {"PUT": "extend_volume"},
}

LEASE_NONCE_HEADER: Final = "fly-machine-lease-nonce"
REQUEST_ID_HEADER: Final = "fly-request-id"


def _path(route: str, **params: str) -> str:
    return route.format(**{k: quote(v, safe="") for k, v in params.items()})


# --- the one retry helper -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped, jittered exponential backoff between repeats (seconds)."""

    initial: float
    max: float
    jitter: float


async def retrying(
    attempt: Callable[[], Awaitable[_T]],
    *,
    on: Callable[[Exception], bool | float],
    backoff: Backoff,
    deadline: float | None = None,
    attempts: int | None = None,
    timeout: float | None = None,
) -> _T:
    """`await attempt()`, repeated after a failure for which `on(error)` answers True (or a
    wait in seconds, which replaces the backoff's), until it returns; the last error is raised.

    `deadline` (the running loop's clock) ends the repeats once passed; `attempts` and
    `timeout` (seconds overall) are stamina's own bounds."""
    async for repeat in stamina.retry_context(
        on=on if deadline is None else _before(deadline, on),
        attempts=attempts,
        timeout=timeout,
        wait_initial=backoff.initial,
        wait_max=backoff.max,
        wait_jitter=backoff.jitter,
    ):
        with repeat:
            return await attempt()
    raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover


def _before(deadline: float, on: Callable[[Exception], bool | float]) -> Callable[[Exception], bool | float]:
    loop = asyncio.get_running_loop()

    def hook(exc: Exception) -> bool | float:
        return loop.time() < deadline and on(exc)

    return hook


class Retry(enum.Enum):
    """Which failures a request may be sent again after (see the module docstring)."""

    SAFE = "safe"  # repeatable: 408/429/5xx/network
    UNSENT = "unsent"  # only failures proving the request was not processed: 429, connect errors


# --- reading Fly's answers ------------------------------------------------------------------------


def decode_json(response: httpx.Response, *, route: str) -> Any:
    """The response body as JSON; a body that is not JSON is Fly's fault (`UnexpectedResponse`)."""
    try:
        return response.json()
    except ValueError as exc:
        raise _unexpected("Fly answered with a body that is not JSON", response, route) from exc


def parse_as(parse: Callable[[Any], _T], data: Any, response: httpx.Response, *, route: str) -> _T:
    """`parse(data)`, with a response that does not fit the model reported as Fly's fault
    (`UnexpectedResponse`), not as a pydantic error escaping the client's error contract."""
    try:
        return parse(data)
    except ValidationError as exc:
        message = f"Fly's answer does not fit the expected shape ({exc.error_count()} errors)"
        raise _unexpected(message, response, route) from exc


def _unexpected(message: str, response: httpx.Response, route: str) -> UnexpectedResponse:
    return UnexpectedResponse(
        message,
        status=response.status_code,
        request_id=response.headers.get(REQUEST_ID_HEADER),
        method=response.request.method,
        route=route,
        body=response.text,
    )


def read_as(parse: Callable[[Any], _T], response: httpx.Response, *, route: str) -> _T:
    """The response body, decoded as JSON and parsed by `parse`."""
    return parse_as(parse, decode_json(response, route=route), response, route=route)


# --- the connection pool --------------------------------------------------------------------------


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's client API over aiohttp's connection pool (the default transport of `FlyTransport`).

    Why (issue 13): httpcore's pool scans every connection it holds on each request (to assign
    requests to connections and to find expired ones), so with the few hundred connections a
    starting fleet holds open — every machine wait is a long poll of seconds — a fifth of the
    operator's CPU went to that bookkeeping. aiohttp's connector keeps idle connections per host
    in a queue: taking or returning one costs the same whatever the pool's size. httpx stays the
    client's interface (requests, responses, errors, and the mock transport of the tests).

    `max_connections` bounds the pool; aiohttp has no separate cap on idle connections, so
    `max_keepalive_connections` is not applied: an idle connection is closed after 15 s instead.

    Errors are raised as the httpx exceptions `_transport_error` classifies: a failure to connect
    (`ConnectError`, `ConnectTimeout`: nothing was sent), a read timeout, and a connection lost
    mid-exchange (`RemoteProtocolError`, `ReadError`: the request may have landed).
    """

    def __init__(self, *, max_connections: int, max_keepalive_connections: int | None = None) -> None:
        self._limit = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, on the running loop (a client is bound to the loop it is used on).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=15.0),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        read = timeouts.get("read")
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=read,
        )
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        body = request.content if request.method not in ("GET", "HEAD") else None
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
                compress=None,
            ) as answer:
                content = await answer.read()
                raw_headers = list(answer.raw_headers)
                status = answer.status
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc) or "connect failed", request=request) from exc
        except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        # The body is read whole, so httpx must not decode it again.
        raw_headers = [(k, v) for k, v in raw_headers if k.lower() != b"content-encoding"]
        return httpx.Response(status, headers=raw_headers, content=content, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# --- the transport --------------------------------------------------------------------------------


class FlyTransport:
    """The connection pool, the rate-limit buckets and the request observer of one client."""

    def __init__(self, config: FlyClientConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self.limiter = FlyRateLimiter(config.rate_limits)
        if transport is None:
            transport = AiohttpTransport(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive_connections,
            )
        self._http = httpx.AsyncClient(
            base_url=config.origin,
            headers={
                "Authorization": auth_header_value(config.token),
                "Accept": "application/json",
                "User-Agent": config.user_agent,
            },
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive_connections,
            ),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        method: str,
        route: str,
        *,
        action: str,
        app: str,
        object_id: str | None = None,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        json: Any = None,
        lease_nonce: str | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One HTTP exchange: rate-limit, send, log, classify. Never retries."""
        path_params = {"app": app} if object_id is None else {"app": app, "id": object_id}
        url = _path(route, **path_params)
        headers = {LEASE_NONCE_HEADER: lease_nonce} if lease_nonce else None
        query: httpx.QueryParams | None = None
        if params:
            query = httpx.QueryParams(params if isinstance(params, Mapping) else tuple(params))
        request_timeout: httpx.Timeout | None = (
            httpx.Timeout(timeout, connect=self._config.connect_timeout) if timeout is not None else None
        )
        mutating = method != "GET"
        fields: dict[str, Any] = {
            "fly_method": method,
            "fly_route": route,
            "fly_app": app,
            "fly_object_id": object_id,
        }
        async with self.limiter.bucket(action, object_id or app):
            started = time.perf_counter()
            try:
                if request_timeout is not None:
                    response = await self._http.request(
                        method, url, params=query, json=json, headers=headers, timeout=request_timeout
                    )
                else:
                    response = await self._http.request(method, url, params=query, json=json, headers=headers)
            except httpx.TransportError as exc:
                error = _transport_error(exc, method=method, route=route, mutating=mutating)
                fields.update(
                    fly_status=None,
                    fly_duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    fly_request_id=None,
                    fly_error=type(error).__name__,
                )
                self._report(method, route, None, time.perf_counter() - started, type(error).__name__)
                log.warning(
                    "fly %s %s failed: %s (%s)",
                    method,
                    route,
                    type(exc).__name__,
                    error.message,
                    extra=fields,
                )
                raise error from exc
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        request_id = response.headers.get(REQUEST_ID_HEADER)
        fields.update(fly_status=response.status_code, fly_duration_ms=duration_ms, fly_request_id=request_id)
        if response.is_success:
            self._report(method, route, response.status_code, time.perf_counter() - started, None)
            log.info(
                "fly %s %s -> %d in %.1fms", method, route, response.status_code, duration_ms, extra=fields
            )
            return response
        error = classify(
            response.status_code,
            response.text,
            method=method,
            route=route,
            request_id=request_id,
            retry_after=response.headers.get("retry-after"),
        )
        fields["fly_error"] = type(error).__name__
        self._report(method, route, response.status_code, time.perf_counter() - started, fields["fly_error"])
        log.warning(
            "fly %s %s -> %d in %.1fms: %s",
            method,
            route,
            response.status_code,
            duration_ms,
            error.message,
            extra=fields,
        )
        raise error

    async def call(self, mode: Retry, method: str, route: str, **kwargs: Any) -> httpx.Response:
        """`send` under the retry policy `mode` (see the module docstring)."""
        policy = self._config.retry
        if policy.attempts <= 1:
            return await self.send(method, route, **kwargs)
        # The first attempt is sent outside stamina: nearly every call succeeds at once, and a
        # retry context per call (a tenacity controller, its hooks) cost a twentieth of a
        # periodic check (issue 13). A failure it may repeat enters the same schedule stamina
        # would have run: the first wait (the hook's, or the backoff's first step), then the
        # remaining attempts with the backoff one step further, within what is left of the budget.
        loop = asyncio.get_running_loop()
        started = loop.time()
        hook = self._retry_hook(mode)
        try:
            return await self.send(method, route, **kwargs)
        except Exception as exc:
            verdict = hook(exc)
            if verdict is False:
                raise
            first_wait = (
                verdict
                if not isinstance(verdict, bool)
                else min(policy.wait_max, policy.wait_initial + random.uniform(0, policy.wait_jitter))
            )
            left = policy.timeout - (loop.time() - started) - first_wait
            if left <= 0:
                raise
        await asyncio.sleep(first_wait)
        return await retrying(
            lambda: self.send(method, route, **kwargs),
            on=hook,
            backoff=Backoff(
                min(policy.wait_initial * 2, policy.wait_max), policy.wait_max, policy.wait_jitter
            ),
            attempts=policy.attempts - 1,
            timeout=left,
        )

    def _retry_hook(self, mode: Retry) -> Callable[[Exception], bool | float]:
        cap = self._config.retry.max_retry_after

        def hook(exc: Exception) -> bool | float:
            if not isinstance(exc, FlyError) or isinstance(exc, WaitTimeout):
                return False
            if isinstance(exc, RateLimited):
                # A 429 is answered before anything happens, so even a create may be resent.
                if exc.retry_after is None:
                    return True
                # Honour the server's wait (at least that long), plus a little jitter so a fleet
                # told "1 s" does not come back in one burst.
                wait = min(exc.retry_after, cap)
                return wait + random.uniform(0, 0.1 * wait)
            if mode is Retry.SAFE:
                return isinstance(exc, Timeout | Unavailable)
            # UNSENT: only a failure to connect proves the request never reached Fly.
            return isinstance(exc, Unavailable) and not exc.ambiguous

        return hook

    def _report(
        self, method: str, route: str, status: int | None, duration: float, error: str | None
    ) -> None:
        observer = self._config.on_request
        if observer is None:
            return
        operation = OPERATIONS.get(route, {}).get(method, f"{method} {route}")
        try:
            observer(FlyRequest(operation, method, route, status, duration, error))
        except Exception:  # an observer's bug must never fail a Fly call
            log.exception("the Fly request observer failed")


def _transport_error(exc: httpx.TransportError, *, method: str, route: str, mutating: bool) -> FlyError:
    where: dict[str, Any] = {"method": method, "route": route}
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing reached Fly: never ambiguous, whatever the method.
        return Unavailable(f"could not connect to Fly: {type(exc).__name__}", ambiguous=False, **where)
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"no answer from Fly in time: {type(exc).__name__}", ambiguous=mutating, **where)
    # Reset, protocol error, or a connection closed mid-exchange: the request may have landed.
    return Unavailable(f"connection to Fly failed: {type(exc).__name__}", ambiguous=mutating, **where)
