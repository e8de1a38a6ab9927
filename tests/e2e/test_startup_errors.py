"""`claw-operator run` misconfigured at start: one line naming the problem and the fix, and a
non-zero exit; for what can heal, a retrying log line while /readyz fails. Never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from claw_operator.sim.flysim import FlySimThread
from claw_operator.sim.kubesim import KubeSimThread
from tests.conftest import REPO

CLI = str(Path(sys.executable).parent / "claw-operator")
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "FLY_API_TOKEN", "FLY_APP")}
    return {**env, "FLY_API_TOKEN": "fo1_startup-test", **extra}


def run_to_exit(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [CLI, "run", "--metrics-port", "0", *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr + result.stdout
    return result


@contextmanager
def running(*args: str, **env: str) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port = _free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"claw-startup-{port}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [CLI, "run", "--metrics-port", str(port), "--log-format", "text", *args],
            env=_env(**env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield process, port, log
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        assert "Traceback" not in log.read_text()
        log.unlink(missing_ok=True)


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def readyz(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_a_missing_kubeconfig_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_to_exit(KUBECONFIG=str(tmp_path / "nonexistent"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("claw-operator run: no usable Kubernetes configuration")
    assert "pass --kubeconfig PATH, set KUBECONFIG" in lines[0]


def test_a_malformed_kubeconfig_is_one_line_and_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("clusters: [")
    result = run_to_exit("--kubeconfig", str(broken))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"(--kubeconfig {broken})" in result.stderr


def test_a_cluster_without_the_crd_is_one_line_and_exit_2(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    with KubeSimThread(kubeconfig=kubeconfig):
        result = run_to_exit("--kubeconfig", str(kubeconfig))
    assert result.returncode == 2
    assert "the ClawInstance CRD (clawinstances.claw.dev) is not installed" in result.stderr
    assert "kubectl apply -f crds/clawinstances.yaml" in result.stderr


def test_rbac_forbidding_the_list_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """The apiserver answers the ServiceAccount's list with RBAC's 403 (kubesim's `forbidden`
    partition, worded as the RBAC authorizer words it)."""
    with KubeSimThread(crds=REPO / "crds", kubeconfig=tmp_path / "admin") as kube:
        denied = kube.write_kubeconfig(tmp_path / "denied", token="operator-without-rbac")
        made = httpx.post(
            f"{kube.base_url}/_kubesim/partitions",
            json={"token": "operator-without-rbac", "mode": "forbidden", "resource": "clawinstances"},
            timeout=5,
        )
        assert made.status_code == 201
        result = run_to_exit("--kubeconfig", str(denied))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    # The start-up log lines, then one line with the problem and its fix.
    errors = [x for x in lines if x.startswith("claw-operator run:")]
    assert errors == [lines[-1]], result.stderr
    assert lines[-1].startswith("claw-operator run: RBAC forbids listing clawinstances.claw.dev cluster-wide")
    assert 'cannot list resource "clawinstances" in API group "claw.dev"' in lines[-1]
    assert "grant get, list, watch and patch on them" in lines[-1]


def test_an_unreachable_apiserver_is_retried_with_a_clear_line_while_readyz_fails(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    with KubeSimThread(crds=REPO / "crds", kubeconfig=kubeconfig) as kube:
        text = kubeconfig.read_text().replace(kube.base_url, UNREACHABLE)
    kubeconfig.write_text(text)
    with running("--kubeconfig", str(kubeconfig)) as (process, port, log):
        wait_for(lambda: "cannot reach the Kubernetes API" in log.read_text())
        assert process.poll() is None  # still there, waiting for the apiserver
        assert readyz(port) == 503
        line = next(x for x in log.read_text().splitlines() if "cannot reach" in x)
        assert f"cannot reach the Kubernetes API at {UNREACHABLE}" in line
        assert "retrying in 2s (/readyz fails meanwhile)" in line


def test_a_fly_api_that_does_not_answer_is_retried_while_readyz_fails(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    with (
        KubeSimThread(crds=REPO / "crds", kubeconfig=kubeconfig),
        running("--kubeconfig", str(kubeconfig), "--fly-api-url", UNREACHABLE) as (process, port, log),
    ):
        wait_for(lambda: "does not answer" in log.read_text(), timeout=40)
        assert process.poll() is None
        assert readyz(port) == 503
        assert f"the Fly API at {UNREACHABLE} does not answer" in log.read_text()


def test_a_token_fly_refuses_is_named_with_its_fix_and_the_operator_runs_on(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    with (
        KubeSimThread(crds=REPO / "crds", kubeconfig=kubeconfig),
        FlySimThread(profile="fast", token="fo1_the-right-one") as fly,
        running("--kubeconfig", str(kubeconfig), "--fly-api-url", fly.base_url) as (process, port, log),
    ):
        wait_for(lambda: "Fly refuses the token" in log.read_text())
        wait_for(lambda: readyz(port) == 200)
        assert process.poll() is None
        assert "set a valid FLY_API_TOKEN" in log.read_text()
        assert "fo1_startup-test" not in log.read_text()


@pytest.mark.parametrize("flag", ["--poll-running", "--starting-timeout"])
def test_a_bad_flag_value_is_one_line_and_exit_2(flag: str) -> None:
    result = run_to_exit(flag, "0")
    assert result.returncode == 2
    assert result.stderr.strip() == f"claw-operator run: {flag} must be > 0 seconds (got 0.0)"
