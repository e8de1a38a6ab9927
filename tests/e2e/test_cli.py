"""The `claw-operator` command as a user runs it."""

import subprocess
import sys
from pathlib import Path

import pytest

from claw_operator.cli import build_parser
from claw_operator.kube.config import config_from_flags

CLI = [str(Path(sys.executable).parent / "claw-operator")]


def test_help_lists_the_subcommands() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True)
    for command in ("run", "demo", "flysim", "kubesim"):
        assert f"\n    {command} " in result.stdout, result.stdout


@pytest.mark.parametrize(
    "flag",
    [
        "--default-app",
        "--fly-api-url",
        "--fly-token-file",
        "--metrics-port",
        "--watch-stale-after",
        "--log-format",
        "--poll-starting",
        "--poll-running",
        "--poll-destroying",
        "--poll-idle",
        "--poll-jitter",
        "--starting-timeout",
        "--stopped-threshold",
        "--fly-wait-timeout",
    ],
)
def test_run_has_the_architecture_flags(flag: str) -> None:
    result = subprocess.run([*CLI, "run", "--help"], capture_output=True, text=True, check=True)
    assert flag in result.stdout


def test_run_timing_defaults_are_kiloclaws() -> None:
    args = build_parser().parse_args(["run"])
    timings = config_from_flags(vars(args), {"FLY_API_TOKEN": "fo1_x"}).timings
    seconds = [
        t.total_seconds()
        for t in (timings.poll_starting, timings.poll_running, timings.poll_destroying, timings.poll_idle)
    ]
    assert seconds == [60, 300, 60, 1800]
    assert (
        timings.poll_jitter.total_seconds(),
        timings.starting_timeout.total_seconds(),
        timings.stopped_threshold,
        timings.fly_wait_timeout.total_seconds(),
    ) == (60, 300, 5, 60)


def test_kubesim_tls_serves_https_that_kubectl_verifies(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    server = subprocess.Popen(
        [*CLI, "kubesim", "--tls", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "export KUBECONFIG=..." once it serves
        assert line.startswith("export KUBECONFIG="), line
        assert "certificate-authority-data" in kubeconfig.read_text()
        got = subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), "get", "namespaces", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert got.returncode == 0, got.stderr
        assert "namespace/default" in got.stdout
        assert "https://" in kubeconfig.read_text()
    finally:
        server.terminate()
        server.wait(10)


# A Python without the `[sandbox]` extra: cel-python (kubesim's CEL rules) cannot be imported.
WITHOUT_SANDBOX = """
import sys
sys.modules["celpy"] = None
from claw_operator.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["kubesim", "demo"])
def test_the_simulators_say_how_to_install_the_sandbox_extra_when_it_is_missing(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SANDBOX, command], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"claw-operator {command}: needs the sandbox extra (no module 'celpy'): "
        "pip install 'claw-operator[sandbox]'"
    ]


def test_the_operator_never_imports_the_simulators_dependencies() -> None:
    # jsonpatch is not blocked: kopf itself depends on it.
    probe = (
        "import sys\n"
        "for name in ('celpy', 'jsonschema'): sys.modules[name] = None\n"
        "import claw_operator.cli, claw_operator.kube.runner, claw_operator.kube.handlers\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
