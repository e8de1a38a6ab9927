"""The operator's configuration, from `claw-operator run` flags and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from claw_operator.fly import FlyClientOptions
from claw_operator.lifecycle.model import Timings


class ConfigError(Exception):
    """The operator cannot start with this configuration (message says what to fix)."""


@dataclass(frozen=True)
class OperatorConfig:
    fly_api_url: str = "https://api.machines.dev"
    fly_token: str = field(default="", repr=False)  # never printed
    default_app: str | None = None
    namespaces: tuple[str, ...] = ()  # empty = all namespaces
    metrics_port: int | None = 8080  # /metrics, /healthz, /readyz; None = not served
    metrics_host: str = "0.0.0.0"
    # Liveness fails when the watch owes an event for longer than this (see kube/health.py).
    watch_stale_after: float = 600.0
    log_format: str = "text"
    timings: Timings = field(default_factory=Timings)
    kubeconfig: str | None = None
    # The Fly client's tuning (pool, retry policy, limiter rates…) over the operator's defaults
    # (`runner.FLEET_FLY_CLIENT`); tests shorten the retries.
    fly_client_options: FlyClientOptions = field(default_factory=FlyClientOptions)


def read_token(token_file: str | None, environ: dict[str, str] | None = None) -> str:
    """The Fly token from --fly-token-file, else env FLY_API_TOKEN; ConfigError if neither."""
    env = os.environ if environ is None else environ
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --fly-token-file {token_file}: {exc.strerror}") from exc
        if not token:
            raise ConfigError(f"--fly-token-file {token_file} is empty")
        return token
    token = env.get("FLY_API_TOKEN", "").strip()
    if not token:
        raise ConfigError("no Fly token: set FLY_API_TOKEN or pass --fly-token-file PATH")
    return token


def timings_from_seconds(
    *,
    poll_starting: float,
    poll_running: float,
    poll_destroying: float,
    poll_idle: float,
    poll_jitter: float,
    starting_timeout: float,
    stopped_threshold: int,
    fly_wait_timeout: float,
    crash_window: float = 600,
    crash_backoff: float = 10,
    crash_backoff_max: float = 300,
) -> Timings:
    for flag, value in (
        ("--poll-starting", poll_starting),
        ("--poll-running", poll_running),
        ("--poll-destroying", poll_destroying),
        ("--poll-idle", poll_idle),
        ("--starting-timeout", starting_timeout),
        ("--fly-wait-timeout", fly_wait_timeout),
        ("--crash-window", crash_window),
        ("--crash-backoff", crash_backoff),
        ("--crash-backoff-max", crash_backoff_max),
    ):
        if value <= 0:
            raise ConfigError(f"{flag} must be > 0 seconds (got {value})")
    if poll_jitter < 0:
        raise ConfigError(f"--poll-jitter must be >= 0 seconds (got {poll_jitter})")
    if stopped_threshold < 1:
        raise ConfigError(f"--stopped-threshold must be >= 1 (got {stopped_threshold})")
    if crash_backoff_max < crash_backoff:
        raise ConfigError(
            f"--crash-backoff-max must be >= --crash-backoff (got {crash_backoff_max} < {crash_backoff})"
        )
    return Timings(
        poll_starting=timedelta(seconds=poll_starting),
        poll_running=timedelta(seconds=poll_running),
        poll_destroying=timedelta(seconds=poll_destroying),
        poll_idle=timedelta(seconds=poll_idle),
        poll_jitter=timedelta(seconds=poll_jitter),
        starting_timeout=timedelta(seconds=starting_timeout),
        stopped_threshold=stopped_threshold,
        fly_wait_timeout=timedelta(seconds=fly_wait_timeout),
        crash_window=timedelta(seconds=crash_window),
        crash_backoff=timedelta(seconds=crash_backoff),
        crash_backoff_cap=timedelta(seconds=crash_backoff_max),
    )
