"""Operator configuration: the token, the timing flags, and their errors."""

from datetime import timedelta
from pathlib import Path

import pytest

from claw_operator.kube.config import ConfigError, OperatorConfig, read_token, timings_from_seconds

DEFAULTS = dict(
    poll_starting=60,
    poll_running=300,
    poll_destroying=60,
    poll_idle=1800,
    poll_jitter=60,
    starting_timeout=300,
    stopped_threshold=5,
    fly_wait_timeout=60,
)


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
    timings = timings_from_seconds(**DEFAULTS)
    assert timings.poll_running == timedelta(minutes=5)
    assert timings.starting_timeout == timedelta(minutes=5)
    assert timings.stopped_threshold == 5


@pytest.mark.parametrize(
    ("override", "flag"),
    [
        ({"poll_running": 0}, "--poll-running"),
        ({"starting_timeout": -1}, "--starting-timeout"),
        ({"poll_jitter": -1}, "--poll-jitter"),
        ({"stopped_threshold": 0}, "--stopped-threshold"),
    ],
)
def test_bad_timing_names_the_flag(override: dict[str, float], flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        timings_from_seconds(**{**DEFAULTS, **override})


def test_config_repr_hides_the_token() -> None:
    assert "s3cr3t" not in repr(OperatorConfig(fly_token="s3cr3t"))
