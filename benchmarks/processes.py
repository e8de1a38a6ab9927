"""The sandbox's processes for the benchmarks: kubesim, flysim and the operator, each started as
`python -m claw_operator.cli ...` in its own session (so a kill reaches it and only it), with
its output in a log file. Shared by `fleet.py` and `chaos.py`; not a benchmark itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None, *, script: Path | None = None
) -> subprocess.Popen[bytes]:
    """`python -m claw_operator.cli ARGS` (or `python SCRIPT ARGS`), output appended to `log`."""
    handle = log.open("ab")
    program = [str(script)] if script is not None else ["-m", "claw_operator.cli"]
    return subprocess.Popen(
        [sys.executable, *program, *args],
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
    )


async def wait_for_line(log: Path, prefix: str, process: subprocess.Popen[bytes], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.name}: exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{log.name}: no line starting with {prefix!r}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's session, SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@dataclass(frozen=True)
class Simulators:
    """kubesim and flysim, started and answering."""

    kubeconfig: Path
    kube_url: str
    fly_url: str


@contextlib.asynccontextmanager
async def simulators(workdir: Path, flysim_args: list[str]) -> AsyncIterator[Simulators]:
    """kubesim (our CRDs, its kubeconfig in `workdir`) and flysim (`flysim --port 0
    FLYSIM_ARGS`), logs in `workdir`; stopped on the way out."""
    kubeconfig = workdir / "kubeconfig"
    kube_log, fly_log = workdir / "kubesim.log", workdir / "flysim.log"
    kubesim = spawn(
        [
            "kubesim",
            "--port",
            str(free_port()),
            "--kubeconfig",
            str(kubeconfig),
            "--crds",
            str(REPO / "crds"),
        ],
        kube_log,
    )
    flysim = spawn(["flysim", "--port", "0", *flysim_args], fly_log)
    try:
        await wait_for_line(kube_log, "export KUBECONFIG=", kubesim)
        fly_url = await wait_for_line(fly_log, "FLY_API_URL=", flysim)
        kube_url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        yield Simulators(kubeconfig, kube_url, fly_url)
    finally:
        stop(flysim)
        stop(kubesim)


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """`kill -9`: no shutdown, no cleanup, whatever the process was doing (the chaos run's crash)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@dataclass
class ProcSample:
    rss_mib: float
    peak_rss_mib: float
    cpu_seconds: float


def sample(pid: int) -> ProcSample:
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    stat = Path(f"/proc/{pid}/stat").read_text()
    parts = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(parts[11]) + int(parts[12])) / CLK_TCK  # utime + stime
    return ProcSample(
        rss_mib=int(fields["VmRSS"].split()[0]) / 1024,
        peak_rss_mib=int(fields["VmHWM"].split()[0]) / 1024,
        cpu_seconds=cpu,
    )
