"""The operator's configuration, from `claw-operator run` flags and the environment.

Every default is stated once, here (`OperatorConfig`) or in `lifecycle.model.Timings`: the CLI
declares none (a flag not given is absent, `config_from_flags` keeps the default), and the
chart's values and the README's tables are pinned to these by tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from claw_operator.fly import FlyClientOptions
from claw_operator.fly.config import DEFAULT_BASE_URL
from claw_operator.lifecycle.model import Timings
from claw_operator.lifecycle.shards import ShardTimings


class ConfigError(Exception):
    """The operator cannot start with this configuration (message says what to fix)."""


@dataclass(frozen=True)
class OperatorConfig:
    fly_api_url: str = DEFAULT_BASE_URL
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
    # `--shards auto`: several replicas share the fleet through Leases (kube/shards.py);
    # "off": this process reconciles every instance (one replica only).
    shards: str = "off"
    shard_timings: ShardTimings = field(default_factory=ShardTimings)
    shard_identity: str | None = None  # default: POD_NAME, else the hostname
    shard_namespace: str | None = None  # where the Leases live; default: the operator's namespace


# `claw-operator run` flags that set the OperatorConfig field of their name when given; the
# timing flags set the Timings field of their name.
_CONFIG_FLAGS: Final = ("fly_api_url", "metrics_port", "watch_stale_after", "log_format")
_TIMING_FIELDS: Final = frozenset(f.name for f in fields(Timings))


def config_from_flags(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> OperatorConfig:
    """The configuration of `claw-operator run`, from its parsed flags (by destination name; a
    flag not given is absent and keeps its default) and the environment (FLY_API_TOKEN, FLY_APP)."""
    env = os.environ if environ is None else environ
    config = OperatorConfig(
        fly_token=read_token(flags.get("fly_token_file"), env),
        default_app=flags.get("default_app") or env.get("FLY_APP") or None,
        namespaces=tuple(flags.get("namespaces") or ()),
        kubeconfig=flags.get("kubeconfig"),
        timings=timings_from_seconds(**{name: v for name, v in flags.items() if name in _TIMING_FIELDS}),
        **{name: flags[name] for name in _CONFIG_FLAGS if name in flags},
    )
    if config.watch_stale_after <= 0:
        raise ConfigError(f"--watch-stale-after must be > 0 seconds (got {config.watch_stale_after})")
    return replace(
        config,
        shards=flags.get("shards") or config.shards,
        shard_timings=shard_timings_from_seconds(
            **{name: flags[name] for name in _SHARD_TIMING_FLAGS if name in flags}
        ),
        shard_identity=flags.get("shard_identity"),
        shard_namespace=flags.get("shard_namespace"),
    )


# `--shard-lease-duration` etc. and the ShardTimings field each sets.
_SHARD_TIMING_FLAGS: Final = {
    "shard_lease_duration": "lease_duration",
    "shard_renew_deadline": "renew_deadline",
    "shard_retry_period": "retry_period",
}


def shard_timings_from_seconds(**given: float) -> ShardTimings:
    """`ShardTimings` from the `--shard-*` flags given (by destination name, in seconds); a flag
    not given keeps ShardTimings' default (client-go's: 15, 10, 2)."""
    try:
        return replace(
            ShardTimings(),
            **{_SHARD_TIMING_FLAGS[name]: timedelta(seconds=value) for name, value in given.items()},
        )
    except ValueError as exc:
        raise ConfigError(f"--shard-*: {exc}") from exc


def read_token(token_file: str | None, environ: Mapping[str, str] | None = None) -> str:
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


def timings_from_seconds(**given: float) -> Timings:
    """`Timings` from `claw-operator run`'s timing flags: each given under the name of the
    field it sets (`--crash-backoff-max` is `crash_backoff_max`), in seconds, except
    `stopped_threshold` (a count). A field not given keeps `Timings`' default: the one place the
    operator's defaults are stated (the CLI declares none, the chart and README are pinned to it)."""
    unknown = sorted(given.keys() - _TIMING_FIELDS)
    if unknown:
        raise TypeError(f"not a Timings field: {', '.join(unknown)}")
    for name, value in given.items():
        flag = "--" + name.replace("_", "-")
        if name == "stopped_threshold":
            if value < 1:
                raise ConfigError(f"{flag} must be >= 1 (got {value})")
        elif name == "poll_jitter":
            if value < 0:
                raise ConfigError(f"{flag} must be >= 0 seconds (got {value})")
        elif value <= 0:
            raise ConfigError(f"{flag} must be > 0 seconds (got {value})")
    values: dict[str, Any] = {
        name: int(value) if name == "stopped_threshold" else timedelta(seconds=value)
        for name, value in given.items()
    }
    timings = replace(Timings(), **values)
    if timings.crash_backoff_max < timings.crash_backoff:
        raise ConfigError(
            "--crash-backoff-max must be >= --crash-backoff (got "
            f"{timings.crash_backoff_max.total_seconds()} < {timings.crash_backoff.total_seconds()})"
        )
    return timings
