"""Config and the auth header rule of fly-machines-api.md §1."""

from pathlib import Path

import pytest

from claw_operator.fly import FlyClientConfig, auth_header_value


@pytest.mark.parametrize(
    ("token", "header"),
    [
        ("fm2_abc", "Bearer fm2_abc"),
        ("plain-token", "Bearer plain-token"),
        ("FlyV1 fm2_abc,fm2_def", "FlyV1 fm2_abc,fm2_def"),
        ("Bearer already", "Bearer already"),
        ("Bearer FlyV1 fm2_abc", "Bearer FlyV1 fm2_abc"),
        ("  fm1r_x \n", "Bearer fm1r_x"),
    ],
)
def test_auth_header_rule(token: str, header: str) -> None:
    assert auth_header_value(token) == header


def test_config_repr_never_shows_the_token() -> None:
    config = FlyClientConfig(token="s3cr3t-token")
    assert "s3cr3t" not in repr(config)
    assert "s3cr3t" not in str(config)


def test_from_env_reads_token_and_url() -> None:
    config = FlyClientConfig.from_env({"FLY_API_TOKEN": "t", "FLY_API_URL": "http://127.0.0.1:4280/v1/"})
    assert config.token == "t"
    assert config.origin == "http://127.0.0.1:4280"
    default = FlyClientConfig.from_env({"FLY_API_TOKEN": "t"})
    assert default.origin == "https://api.machines.dev"


def test_missing_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token"):
        FlyClientConfig.from_env({})


def test_wait_server_timeout_must_fit_flys_range() -> None:
    with pytest.raises(ValueError):
        FlyClientConfig(token="t", wait_server_timeout=61)


def test_token_file_wins_over_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("FlyV1 fm2_from_file\n")
    config = FlyClientConfig.from_env(
        {"FLY_API_TOKEN": "from-env"}, token_file=token_file, wait_server_timeout=30
    )
    assert config.token == "FlyV1 fm2_from_file"
    assert config.wait_server_timeout == 30
    assert FlyClientConfig.from_env({"FLY_API_TOKEN": "from-env"}, token="explicit").token == "explicit"
