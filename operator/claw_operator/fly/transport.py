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
import json as jsonlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import httpx
import stamina
import yarl
from pydantic import BaseModel, ValidationError

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
    "Exchange",
    "FlyResponse",
    "FlyTransport",
    "HttpxExchange",
    "Retry",
    "decode_json",
    "parse_as",
    "read_as",
    "read_model",
    "retrying",
]

log = logging.getLogger("claw_operator.fly")

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)

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

_OPERATION_NAMES: Final[Mapping[tuple[str, str], str]] = {
    (route, method): name for route, names in OPERATIONS.items() for method, name in names.items()
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


class FlyResponse:
    """One answer of Fly, read whole: what the client and its errors read of it (the status, the
    headers, the body) and the method of the request it answers."""

    __slots__ = ("content", "headers", "method", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, method: str) -> None:
        self.status_code = status_code
        # Case-insensitive (aiohttp's `CIMultiDictProxy`, or `httpx.Headers`).
        self.headers = headers
        self.content = content
        self.method = method

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON (`ValueError` when it is not)."""
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<FlyResponse [{self.status_code}] to {self.method}>"


def decode_json(response: FlyResponse, *, route: str) -> Any:
    """The response body as JSON; a body that is not JSON is Fly's fault (`UnexpectedResponse`)."""
    try:
        return response.json()
    except ValueError as exc:
        raise _unexpected("Fly answered with a body that is not JSON", response, route) from exc


def parse_as(parse: Callable[[Any], _T], data: Any, response: FlyResponse, *, route: str) -> _T:
    """`parse(data)`, with a response that does not fit the model reported as Fly's fault
    (`UnexpectedResponse`), not as a pydantic error escaping the client's error contract."""
    try:
        return parse(data)
    except ValidationError as exc:
        message = f"Fly's answer does not fit the expected shape ({exc.error_count()} errors)"
        raise _unexpected(message, response, route) from exc


def _unexpected(message: str, response: FlyResponse, route: str) -> UnexpectedResponse:
    return UnexpectedResponse(
        message,
        status=response.status_code,
        request_id=response.headers.get(REQUEST_ID_HEADER),
        method=response.method,
        route=route,
        body=response.text,
    )


def read_as(parse: Callable[[Any], _T], response: FlyResponse, *, route: str) -> _T:
    """The response body, decoded as JSON and parsed by `parse`."""
    return parse_as(parse, decode_json(response, route=route), response, route=route)


def read_model(model: type[_M], response: FlyResponse, *, route: str) -> _M:
    """The response body as `model`, in one step (pydantic reads the JSON itself: no dict of
    it is built first, issue 13), failing as `read_as(model.model_validate, ...)` fails: a
    body that is not JSON, or that does not fit the model, is Fly's fault (`UnexpectedResponse`)."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors(include_url=False)):
            raise _unexpected("Fly answered with a body that is not JSON", response, route) from exc
        message = f"Fly's answer does not fit the expected shape ({exc.error_count()} errors)"
        raise _unexpected(message, response, route) from exc


# --- the connection pool --------------------------------------------------------------------------

# Parsed URLs kept (`AiohttpTransport._url`): a few per Fly object, for the fleet of one process.
_URL_CACHE_SIZE: Final = 16384


class Exchange(Protocol):
    """One HTTP exchange, the body read whole. A failure is raised as the httpx exception
    `_transport_error` classifies: a failure to connect (`httpx.ConnectError`,
    `httpx.ConnectTimeout`, `httpx.PoolTimeout`: nothing was sent), a timeout waiting for the
    answer, and a connection lost mid-exchange (`httpx.RemoteProtocolError`, `httpx.ReadError`:
    the request may have landed)."""

    async def __call__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> FlyResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """The Fly client's connection pool (the default `Exchange` of `FlyTransport`): aiohttp.

    Why (issue 13): httpcore's pool scans every connection it holds on each request (to assign
    requests to connections and to find expired ones), so with the few hundred connections a
    starting fleet holds open — every machine wait is a long poll of seconds — a fifth of the
    operator's CPU went to that bookkeeping. aiohttp's connector keeps idle connections per host
    in a queue: taking or returning one costs the same whatever the pool's size. Requests go to
    aiohttp directly: building httpx's request and response objects around each exchange was
    half the CPU of a periodic check's Fly GET.

    `max_connections` bounds the pool; aiohttp has no separate cap on idle connections, so
    `max_keepalive_connections` is not applied: an idle connection is closed after 15 s instead.
    `timeout` bounds each wait: for a connection from the pool, for the socket to connect
    (`connect_timeout`), for each read of the answer.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        max_keepalive_connections: int | None = None,
        connect_timeout: float = 10.0,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._limit = max_connections
        self._connect_timeout = connect_timeout
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._session: aiohttp.ClientSession | None = None
        # The headers of nearly every request, given to the session once: a request passed
        # exactly this mapping (the same object) sends them without aiohttp merging a copy of
        # them into its defaults again (issue 13). Any other mapping is sent as given.
        self._default_headers = default_headers
        self._sends_user_agent = any(name.lower() == "user-agent" for name in default_headers or {})
        self._urls: dict[str, yarl.URL] = {}

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, on the running loop (a client is bound to the loop it is used on).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=15.0),
                auto_decompress=True,
                # Never aiohttp's own User-Agent. The client's default headers carry one (then
                # nothing needs skipping: a skip list costs aiohttp a copy of the headers per
                # request).
                skip_auto_headers=None if self._sends_user_agent else ("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),  # Fly sets no cookies
                headers=self._default_headers,
            )
        return self._session

    def _url(self, url: str) -> yarl.URL | str:
        """The parsed URL of a request without a query (a machine's or a volume's GET, its
        start, stop, destroy), parsed once: aiohttp would parse the string on every request.
        URLs with a query (waits, lists) are mostly one-offs and go as strings."""
        if "?" in url:
            return url
        found = self._urls.get(url)
        if found is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()  # a fleet's worth; beyond it, start over
            found = self._urls[url] = yarl.URL(url)
        return found

    def _timeout(self, timeout: float) -> aiohttp.ClientTimeout:
        found = self._timeouts.get(timeout)
        if found is None:
            found = aiohttp.ClientTimeout(
                total=None, connect=timeout, sock_connect=self._connect_timeout, sock_read=timeout
            )
            if len(self._timeouts) < 64:  # a handful of distinct timeouts (calls, waits)
                self._timeouts[timeout] = found
        return found

    async def __call__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> FlyResponse:
        try:
            async with self._client().request(
                method,
                self._url(url),
                headers=None if headers is self._default_headers else headers,
                data=body,
                timeout=self._timeout(timeout),
                allow_redirects=False,
                compress=None,
            ) as answer:
                content = await answer.read()
                return FlyResponse(answer.status, answer.headers, content, method)
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timeout") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc) or "connect failed") from exc
        except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timeout") from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected") from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxExchange:
    """An `Exchange` over an httpx transport: the tests' `httpx.MockTransport`, or any other
    (`FlyMachinesClient(transport=...)`)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, config: FlyClientConfig) -> None:
        self._connect_timeout = config.connect_timeout
        self._http = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive_connections,
            ),
            transport=transport,
            follow_redirects=False,
        )

    async def __call__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> FlyResponse:
        response = await self._http.request(
            method,
            url,
            headers=headers,
            content=body,
            timeout=httpx.Timeout(timeout, connect=self._connect_timeout),
        )
        return FlyResponse(response.status_code, response.headers, response.content, method)

    async def aclose(self) -> None:
        await self._http.aclose()


def _json_body(value: Any) -> bytes:
    """A JSON request body, encoded as httpx encodes `json=`."""
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


# --- the transport --------------------------------------------------------------------------------


class FlyTransport:
    """The connection pool, the rate-limit buckets and the request observer of one client."""

    def __init__(self, config: FlyClientConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self.limiter = FlyRateLimiter(config.rate_limits)
        self._origin = config.origin
        # (route, app, object id) -> its URL (without the query): quoting and formatting each
        # path anew was a fiftieth of a periodic check (issue 13).
        self._urls: dict[tuple[str, str, str | None], str] = {}
        self._headers: dict[str, str] = {
            "Authorization": auth_header_value(config.token),
            "Accept": "application/json",
            "User-Agent": config.user_agent,
        }
        self._exchange: Exchange = (
            AiohttpTransport(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive_connections,
                connect_timeout=config.connect_timeout,
                default_headers=self._headers,
            )
            if transport is None
            else HttpxExchange(transport, config)
        )

    async def aclose(self) -> None:
        await self._exchange.aclose()

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
    ) -> FlyResponse:
        """One HTTP exchange: rate-limit, send, log, classify. Never retries."""
        url = self._urls.get((route, app, object_id))
        if url is None:
            url = self._origin + (
                _path(route, app=app) if object_id is None else _path(route, app=app, id=object_id)
            )
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()  # a fleet's worth; beyond it, start over
            self._urls[(route, app, object_id)] = url
        if params:
            url += "?" + urlencode(list(params.items()) if isinstance(params, Mapping) else params)
        headers = self._headers
        body: bytes | None = None
        if lease_nonce or json is not None:
            headers = dict(headers)
            if lease_nonce:
                headers[LEASE_NONCE_HEADER] = lease_nonce
            if json is not None:
                body = _json_body(json)
                headers["Content-Type"] = "application/json"
        mutating = method != "GET"
        async with self.limiter.bucket(action, object_id or app):
            started = time.perf_counter()
            try:
                response = await self._exchange(
                    method, url, headers, body, self._config.timeout if timeout is None else timeout
                )
            except httpx.TransportError as exc:
                error = _transport_error(exc, method=method, route=route, mutating=mutating)
                duration = time.perf_counter() - started
                self._report(method, route, None, duration, type(error).__name__)
                if log.isEnabledFor(logging.WARNING):
                    _log_call(
                        logging.WARNING,
                        "fly %s %s failed: %s (%s)",
                        (method, route, type(exc).__name__, error.message),
                        method,
                        route,
                        app,
                        object_id,
                        None,
                        round(duration * 1000, 1),
                        None,
                        type(error).__name__,
                    )
                raise error from exc
        duration = time.perf_counter() - started
        status = response.status_code
        if 200 <= status < 300:
            if self._config.on_request is not None:
                self._report(method, route, status, duration, None)
            if log.isEnabledFor(logging.INFO):
                duration_ms = round(duration * 1000, 1)
                _log_call(
                    logging.INFO,
                    "fly %s %s -> %d in %.1fms",
                    (method, route, status, duration_ms),
                    method,
                    route,
                    app,
                    object_id,
                    status,
                    duration_ms,
                    response.headers.get(REQUEST_ID_HEADER),
                )
            return response
        request_id = response.headers.get(REQUEST_ID_HEADER)
        error = classify(
            status,
            response.text,
            method=method,
            route=route,
            request_id=request_id,
            retry_after=response.headers.get("retry-after"),
        )
        self._report(method, route, status, duration, type(error).__name__)
        if log.isEnabledFor(logging.WARNING):
            duration_ms = round(duration * 1000, 1)
            _log_call(
                logging.WARNING,
                "fly %s %s -> %d in %.1fms: %s",
                (method, route, status, duration_ms, error.message),
                method,
                route,
                app,
                object_id,
                status,
                duration_ms,
                request_id,
                type(error).__name__,
            )
        raise error

    async def call(self, mode: Retry, method: str, route: str, **kwargs: Any) -> FlyResponse:
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
        operation = _OPERATION_NAMES.get((route, method)) or f"{method} {route}"
        try:
            observer(FlyRequest(operation, method, route, status, duration, error))
        except Exception:  # an observer's bug must never fail a Fly call
            log.exception("the Fly request observer failed")


def _log_call(
    level: int,
    message: str,
    args: tuple[Any, ...],
    method: str,
    route: str,
    app: str,
    object_id: str | None,
    status: int | None,
    duration_ms: float,
    request_id: str | None,
    error: str | None = None,
) -> None:
    """The one record of a Fly call (`docs/fly-client.md`, *Logging*), with its structured
    fields. Built and handled as `Logger.log(..., extra=fields)` would, less the caller lookup
    (a walk up the stack per call; the record names `FlyTransport.send` instead) and the
    merging of `extra` key by key: a few percent of a periodic check (issue 13). The caller
    checks the level first."""
    record = log.makeRecord(log.name, level, __file__, 0, message, args, None, "send")
    fields = vars(record)
    fields["fly_method"] = method
    fields["fly_route"] = route
    fields["fly_app"] = app
    fields["fly_object_id"] = object_id
    fields["fly_status"] = status
    fields["fly_duration_ms"] = duration_ms
    fields["fly_request_id"] = request_id
    if error is not None:
        fields["fly_error"] = error
    log.handle(record)


def _transport_error(exc: httpx.TransportError, *, method: str, route: str, mutating: bool) -> FlyError:
    where: dict[str, Any] = {"method": method, "route": route}
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing reached Fly: never ambiguous, whatever the method.
        return Unavailable(f"could not connect to Fly: {type(exc).__name__}", ambiguous=False, **where)
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"no answer from Fly in time: {type(exc).__name__}", ambiguous=mutating, **where)
    # Reset, protocol error, or a connection closed mid-exchange: the request may have landed.
    return Unavailable(f"connection to Fly failed: {type(exc).__name__}", ambiguous=mutating, **where)
