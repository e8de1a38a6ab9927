"""Configuration of the Fly Machines client: where, who, how long, how fast.

The operator's `run` command builds one `FlyClientConfig` from its flags and the environment
(`FLY_API_TOKEN`, `FLY_API_URL`); tests point `base_url` at flysim. "§N" is a section of
`docs/reference/fly-machines-api.md`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from claw_operator.fly.observe import RequestObserver

__all__ = [
    "DEFAULT_BASE_URL",
    "FlyClientConfig",
    "FlyClientOptions",
    "RateLimits",
    "RetryPolicy",
    "auth_header_value",
]

DEFAULT_BASE_URL: Final = "https://api.machines.dev"
# The wait endpoint accepts whole seconds in [1, 60] (§4); more is a 400.
MAX_WAIT_SERVER_TIMEOUT: Final = 60


def auth_header_value(token: str) -> str:
    """The `Authorization` header for a token (§1): a token that already names its scheme
    (`FlyV1 fm2_…` as printed by `fly tokens create`, or `Bearer …`) is sent as given; anything
    else is a bearer token."""
    token = token.strip()
    if token.startswith(("FlyV1 ", "Bearer ")):
        return token
    return f"Bearer {token}"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Client-side token buckets matching Fly's documented limits (§7): every action (create,
    start, stop, update, wait, lease, list, delete …) is limited per machine (or per app for
    app-level actions) to `action_rate`/s with bursts of `action_burst`; reading one object to
    `get_rate`/s with bursts of `get_burst`.

    The client keeps a safety margin below those numbers, because Fly counts *arrivals* while
    the client paces *sends*: a burst delayed on the way (new connections, a busy event loop)
    reaches Fly's bucket while it is full and cannot bank the refill it missed, so the next
    paced request can find it empty. `reserve` tokens of Fly's burst are left unused (one token
    absorbs up to 1/rate seconds of such delay) and `headroom` (< 1) runs the client slightly
    slower than Fly's refill so that the margin never erodes.
    """

    enabled: bool = True
    action_rate: float = 1.0
    action_burst: int = 3
    get_rate: float = 5.0
    get_burst: int = 10
    headroom: float = 0.9
    reserve: int = 1
    # Buckets are per machine; forget idle ones beyond this many so a long-lived operator does
    # not keep a bucket for every machine it ever touched. An idle bucket is full again, the
    # same as a new one: forgetting it changes no pacing, and at ~1 KiB each a bucket per
    # machine of a large fleet would be a tenth of the operator's memory (issue 13).
    max_buckets: int = 1_000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped, jittered exponential backoff for the calls that are safe to repeat (GET,
    DELETE-by-id, PUT, lease-protected update). Handed to `stamina`."""

    attempts: int = 5
    # Overall budget for one call including its retries (seconds).
    timeout: float = 60.0
    wait_initial: float = 0.2
    wait_max: float = 5.0
    wait_jitter: float = 0.5
    # A Retry-After longer than this is clipped: a reconcile should requeue rather than block.
    max_retry_after: float = 30.0


@dataclass(frozen=True, slots=True)
class FlyClientOptions:
    """How an embedding tunes the client beyond where, who and the wait's server timeout: the
    operator's defaults for a fleet (its connection pool), the tests' short retries and open
    limiter, the demo's. A field left None keeps `FlyClientConfig`'s value (or the embedding's
    own default); `overrides()` names the others, as `FlyClientConfig` keyword arguments."""

    timeout: float | None = None
    connect_timeout: float | None = None
    max_connections: int | None = None
    max_keepalive_connections: int | None = None
    rate_limits: RateLimits | None = None
    retry: RetryPolicy | None = None
    create_resolve_attempts: int | None = None
    create_resolve_delay: float | None = None
    volume_resolve_timeout: float | None = None

    def overrides(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }

    def over(self, defaults: FlyClientOptions) -> FlyClientOptions:
        """These options, with `defaults` where a field is None."""
        return dataclasses.replace(defaults, **self.overrides())


@dataclass(frozen=True, slots=True)
class FlyClientConfig:
    token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    # Per-call timeouts (seconds). `wait` gets its server timeout plus `wait_margin` (§10).
    timeout: float = 30.0
    connect_timeout: float = 10.0
    wait_margin: float = 15.0
    wait_server_timeout: int = MAX_WAIT_SERVER_TIMEOUT
    max_connections: int = 100
    max_keepalive_connections: int = 20
    rate_limits: RateLimits = field(default_factory=RateLimits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # After an ambiguous create, how many times to look for the object by its tag, and the pause
    # between looks (Fly's list is eventually consistent).
    create_resolve_attempts: int = 4
    create_resolve_delay: float = 0.5
    # A volume create is resolved by time, not by a few tries: volume names are not unique, so
    # nothing on Fly stops a second create, and its list may miss a new volume for a while.
    # The looks go on (the pause doubling up to `retry.wait_max`) until this many seconds.
    volume_resolve_timeout: float = 30.0
    user_agent: str = "claw-operator"
    # Called with a `FlyRequest` after every HTTP exchange (the operator's metrics); must not
    # raise or block.
    on_request: RequestObserver | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.token.strip():
            raise ValueError("a Fly API token is required")
        if not 1 <= self.wait_server_timeout <= MAX_WAIT_SERVER_TIMEOUT:
            raise ValueError(f"wait_server_timeout must be within [1, {MAX_WAIT_SERVER_TIMEOUT}]")

    @property
    def origin(self) -> str:
        """The base URL without a trailing `/v1`: routes carry their `/v1` prefix themselves, so
        both `https://api.machines.dev` and `https://api.machines.dev/v1` work."""
        base = self.base_url.rstrip("/")
        return base.removesuffix("/v1")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        base_url: str | None = None,
        **overrides: Any,
    ) -> FlyClientConfig:
        """Build from `FLY_API_TOKEN` / `FLY_API_URL`. Explicit arguments win: `token`, then
        the contents of `token_file` (`--fly-token-file`), then the environment."""
        source = os.environ if env is None else env
        if token is not None:
            resolved_token = token
        elif token_file is not None:
            resolved_token = Path(token_file).read_text(encoding="utf-8").strip()
        else:
            resolved_token = source.get("FLY_API_TOKEN", "")
        resolved_url = base_url or source.get("FLY_API_URL") or DEFAULT_BASE_URL
        return cls(token=resolved_token, base_url=resolved_url, **overrides)
