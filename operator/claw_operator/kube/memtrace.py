"""A diagnostic, not a feature: where the operator's memory goes (issue 13's memory goal).

With `CLAW_OPERATOR_TRACEMALLOC=PREFIX` in its environment, `claw-operator run` starts
`tracemalloc` (`CLAW_OPERATOR_TRACEMALLOC_FRAMES` frames per traceback, 12 by default) and,
on each SIGUSR2, writes `PREFIX.PID.N.snapshot` (`tracemalloc.Snapshot.dump`, for any grouping
later: `python benchmarks/memprofile.py PREFIX.PID.N.snapshot`) and `PREFIX.PID.N.txt` (the top
allocations by file and line and by traceback). Unset, nothing is imported or installed.
tracemalloc slows every allocation: never in production, only under a benchmark.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path

ENV = "CLAW_OPERATOR_TRACEMALLOC"
FRAMES_ENV = "CLAW_OPERATOR_TRACEMALLOC_FRAMES"
TOP = 40


def install_from_env() -> bool:
    """Start tracing and install the SIGUSR2 dump when `CLAW_OPERATOR_TRACEMALLOC` is set."""
    prefix = os.environ.get(ENV)
    if not prefix:
        return False
    tracemalloc.start(int(os.environ.get(FRAMES_ENV, "12")))
    counter = {"n": 0}

    def dump(signum: int, frame: object) -> None:
        counter["n"] += 1
        write(Path(f"{prefix}.{os.getpid()}.{counter['n']}"))

    signal.signal(signal.SIGUSR2, dump)
    return True


def write(stem: Path) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    snapshot.dump(f"{stem}.snapshot")
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    lines = [f"traced: {total / 1024 / 1024:.1f} MiB", "", "by line:"]
    lines += [str(stat) for stat in snapshot.statistics("lineno")[:TOP]]
    lines += ["", "by traceback:"]
    for stat in snapshot.statistics("traceback")[:TOP]:
        lines.append(f"{stat.size / 1024:.0f} KiB in {stat.count} blocks")
        lines += [f"    {line}" for line in stat.traceback.format()]
    Path(f"{stem}.txt").write_text("\n".join(lines) + "\n")  # last: the dump is complete
