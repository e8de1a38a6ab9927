"""`claw-operator demo`: the tour and the interactive sandbox, run as a user runs them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [str(Path(sys.executable).parent / "claw-operator")]


def _section(output: str, step: int) -> str:
    start = output.index(f"Step {step}/5")
    end = output.find(f"Step {step + 1}/5", start)
    return output[start : end if end != -1 else len(output)]


@pytest.mark.slow(70)
@pytest.mark.timeout(180)
def test_the_tour_shows_each_steps_condition_and_event(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "demo", "--tour", "--profile", "fast", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"

    create = _section(output, 1)
    assert "$ kubectl apply -f" in create
    assert "clawinstance.claw.dev/minimal condition met" in create
    assert re.search(r"minimal\s+Running\s+True", create)
    assert "Ready=True (Running)" in create
    assert re.search(r"Normal\s+Started\s", create)

    failure = _section(output, 2)
    assert re.search(r"flaky\s+Stopped\s+False", failure)
    assert "StartFailed=True (InsufficientCapacity)" in failure
    assert re.search(r"Warning\s+StartFailed\s.*insufficient memory", failure)
    # ... and its recovery
    assert re.search(r"flaky\s+Running\s+True", failure)
    assert "StartFailed=False (Started)" in failure
    assert re.search(r"Normal\s+MachineCreated\s", failure)

    drift = _section(output, 3)
    assert "Reconciling=False (Paused)" in drift
    assert "MountRepaired=True (MountRepaired)" in drift
    assert "Restarting=False (RestartSucceeded)" in drift
    assert re.search(r"Normal\s+Restarting\s+.*MountRepair: from vol_\w+:/data to vol_\w+:/root", drift)
    assert re.search(r"Normal\s+MountRepaired\s", drift)

    restart = _section(output, 4)
    # The in-flight condition is transient (a fast restart may already be over when kubectl
    # reads it); the Restarting Event is what stays.
    assert re.search(r"Normal\s+Restarting\s+.*RestartRequested: spec.restartedAt changed", restart)
    assert "Restarting=False (RestartSucceeded)" in restart
    assert re.search(r"Normal\s+Restarted\s+.*\(RestartRequested\)", restart)

    delete = _section(output, 5)
    assert re.search(r"minimal\s+Destroying", delete) or "condition met" in delete
    assert "No resources found" in delete
    assert re.search(r"Normal\s+Destroyed\s", delete)
    assert "Fly: 0 machines and 0 volumes left" in delete
    assert "make sandbox" in output
    # The operator's own logs went to the file, not the terminal.
    assert (tmp_path / "operator.log").read_text()
    assert "fly GET" not in output
    # It ends with a picture of the whole tour, kept in the workdir, and says where.
    picture = re.search(
        r"Timeline of the tour \(phases, conditions, Fly's machine states\): (\S+\.png)", output
    )
    assert picture, output[-600:]
    assert Path(picture.group(1)).parent == tmp_path
    assert Path(picture.group(1)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(120)
def test_the_sandbox_prints_what_to_try_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*CLI, "demo", "--profile", "fast", "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        printed = "".join(lines)
        assert "Ctrl-C stops everything" in printed, printed
        match = re.search(r"export KUBECONFIG=(\S+)", printed)
        assert match, printed
        for verb in ("get", "describe", "wait", "annotate", "delete"):
            assert f"kubectl {verb} " in printed
        env = {**os.environ, "KUBECONFIG": match.group(1)}
        cache = ["--cache-dir", str(tmp_path / "test-cache")]
        waited = subprocess.run(
            ["kubectl", *cache, "wait", "--for=condition=Ready", "clawinstance/minimal", "--timeout=60s"],
            capture_output=True,
            text=True,
            env=env,
            timeout=70,
            check=False,
        )
        assert waited.returncode == 0, waited.stdout + waited.stderr
        got = subprocess.run(
            ["kubectl", *cache, "get", "clawinstances"], capture_output=True, text=True, env=env, check=True
        )
        assert re.search(r"minimal\s+Running\s+True", got.stdout), got.stdout

        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=30)
        assert process.returncode == 0, rest + errors
        assert "Stopped." in rest
        assert "Traceback" not in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
