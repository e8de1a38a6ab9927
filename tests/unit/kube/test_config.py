"""Operator configuration: the token, the timing flags, and their errors."""

import argparse
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest

from claw_operator.cli import build_parser
from claw_operator.kube.config import (
    ConfigError,
    OperatorConfig,
    config_from_flags,
    read_token,
    timings_from_seconds,
)
from claw_operator.lifecycle.model import Timings

ENV = {"FLY_API_TOKEN": "fo1_abc"}


def test_token_from_env() -> None:
    assert read_token(None, {"FLY_API_TOKEN": " fo1_abc \n"}) == "fo1_abc"


def test_token_file_wins_over_env(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("FlyV1 fm2_xyz\n")
    assert read_token(str(path), {"FLY_API_TOKEN": "other"}) == "FlyV1 fm2_xyz"


def test_missing_token_says_how_to_fix() -> None:
    with pytest.raises(ConfigError, match="FLY_API_TOKEN or pass --fly-token-file"):
        read_token(None, {})


def test_unreadable_or_empty_token_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read --fly-token-file"):
        read_token(str(tmp_path / "absent"), {})
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        read_token(str(empty), {})


def test_timings_default_to_kiloclaw() -> None:
    timings = timings_from_seconds()
    assert timings == Timings()
    assert timings.poll_running == timedelta(minutes=5)
    assert timings.starting_timeout == timedelta(minutes=5)
    assert timings.stopped_threshold == 5


def test_a_flag_not_given_keeps_the_one_default() -> None:
    """The CLI states no default: `run` with no flags is `OperatorConfig()`'s configuration."""
    config = config_from_flags(vars(build_parser().parse_args(["run"])), ENV)
    assert config == OperatorConfig(fly_token="fo1_abc")
    given = config_from_flags(vars(build_parser().parse_args(["run", "--crash-backoff-max", "30"])), ENV)
    assert given.timings == Timings(crash_backoff_max=timedelta(seconds=30))


def test_every_timing_flag_sets_the_timings_field_of_its_name() -> None:
    """A timing flag whose name were no Timings field would be ignored by `config_from_flags`."""
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    group = next(g for g in commands.choices["run"]._action_groups if (g.title or "").startswith("timing"))
    dests = [action.dest for action in group._group_actions]
    assert len(dests) >= 11
    names = {field.name for field in fields(Timings)}
    assert [dest for dest in dests if dest not in names] == []
    flags = {dest: 7 for dest in dests}
    timings = config_from_flags(flags, ENV).timings
    assert all(getattr(timings, dest) in (7, timedelta(seconds=7)) for dest in dests)


def test_unknown_timing_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="poll_sometimes"):
        timings_from_seconds(poll_sometimes=1)


@pytest.mark.parametrize(
    ("override", "flag"),
    [
        ({"poll_running": 0}, "--poll-running"),
        ({"starting_timeout": -1}, "--starting-timeout"),
        ({"poll_jitter": -1}, "--poll-jitter"),
        ({"stopped_threshold": 0}, "--stopped-threshold"),
        ({"crash_backoff": 400}, "--crash-backoff-max must be >= --crash-backoff"),
    ],
)
def test_bad_timing_names_the_flag(override: dict[str, float], flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        timings_from_seconds(**override)


def test_bad_watch_stale_after_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--watch-stale-after"):
        config_from_flags({"watch_stale_after": 0}, ENV)


def test_config_repr_hides_the_token() -> None:
    assert "s3cr3t" not in repr(OperatorConfig(fly_token="s3cr3t"))


def _run_flags(*argv: str) -> dict[str, object]:
    return vars(build_parser().parse_args(["run", *argv]))


def test_shards_default_off_with_client_go_timings() -> None:
    config = config_from_flags(_run_flags(), {"FLY_API_TOKEN": "t"})
    assert config.shards == "off" and config.shard_identity is None and config.shard_namespace is None
    timings = config.shard_timings
    assert (timings.lease_duration, timings.renew_deadline, timings.retry_period) == (
        timedelta(seconds=15),
        timedelta(seconds=10),
        timedelta(seconds=2),
    )


def test_shard_flags_set_the_ring() -> None:
    flags = _run_flags(
        "--shards=auto",
        "--shard-lease-duration=4",
        "--shard-renew-deadline=3",
        "--shard-retry-period=0.5",
        "--shard-identity=pod-a",
        "--shard-namespace=claw-system",
    )
    config = config_from_flags(flags, {"FLY_API_TOKEN": "t"})
    assert (config.shards, config.shard_identity, config.shard_namespace) == ("auto", "pod-a", "claw-system")
    assert config.shard_timings.lease_duration == timedelta(seconds=4)
    assert config.shard_timings.retry_period == timedelta(seconds=0.5)


def test_shard_timings_that_do_not_nest_are_refused() -> None:
    with pytest.raises(ConfigError, match="lease duration > renew deadline"):
        config_from_flags(_run_flags("--shard-renew-deadline=20"), {"FLY_API_TOKEN": "t"})
