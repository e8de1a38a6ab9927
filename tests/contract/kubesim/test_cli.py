"""`claw-operator kubesim`: serves, applies `--crds`, writes the kubeconfig, prints the export
line, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import CRD_PATH

from .kubectl import Kubectl, requires_kubectl


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@requires_kubectl
def test_kubesim_command_serves_kubectl_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubesim.kubeconfig"
    command = [sys.executable, "-m", "claw_operator.cli", "kubesim", "--port", str(free_port())]
    command += ["--kubeconfig", str(kubeconfig), "--crds", str(CRD_PATH.parent)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == f"export KUBECONFIG={kubeconfig.resolve()}"
        kubectl = Kubectl(kubeconfig, tmp_path / "cache")
        assert "clawinstances.claw.dev" in kubectl.run("get", "crd").stdout
        assert kubectl.run("get", "claw").returncode == 0
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=15) == 0
    finally:
        server.kill()
        server.wait()


def test_kubesim_command_refuses_a_missing_crd_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "claw_operator.cli", "kubesim", "--crds", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "no such CRD" in result.stderr
