"""py-spy profiles of a benchmark's process, phase by phase, summarised as text.

`Profiler(pid, directory)` samples the process with `py-spy record` (collapsed stacks, the
`raw` format, which `speedscope.app` and `flamegraph.pl` both read) between `start(phase)` and
`stop()`; `summarise(path)` turns one recording into where the time went: the share of samples
by package of the innermost frame (self time), and the top frames by self and inclusive time.
Not a benchmark itself (`make bench` skips it).

    python benchmarks/profiling.py /tmp/profile/ramp.txt     # summarise a saved recording
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Packages by the start of their file path as py-spy prints it (relative to site-packages or
# the standard library), first match wins (the innermost frame's file).
PACKAGES: tuple[tuple[str, str], ...] = (
    ("kube/", "claw_operator.kube"),
    ("edge/", "claw_operator.edge"),
    ("lifecycle/", "claw_operator.lifecycle"),
    ("fly/", "claw_operator.fly"),
    ("api/", "claw_operator.api"),
    ("claw_operator/", "claw_operator (other)"),
    ("cli.py", "claw_operator (other)"),
    ("kopf/", "kopf"),
    ("kubernetes/", "kubernetes (sync client)"),
    ("urllib3/", "urllib3"),
    ("http/client", "urllib3"),
    ("httpcore/", "httpcore"),
    ("anyio/", "httpcore"),
    ("httpx/", "httpx"),
    ("h11/", "httpx"),
    ("aiohttp/", "aiohttp"),
    ("yarl/", "aiohttp"),
    ("multidict/", "aiohttp"),
    ("pydantic", "pydantic"),
    ("stamina/", "stamina"),
    ("tenacity/", "stamina"),
    ("prometheus_client/", "prometheus_client"),
    ("uvloop/", "uvloop"),
    ("asyncio/", "asyncio"),
    ("selectors.py", "asyncio"),
    ("concurrent/futures", "threads"),
    ("threading.py", "threads"),
    ("queue.py", "threads"),
    ("logging/", "logging"),
    ("json/", "json"),
    ("copy.py", "copy (deepcopy)"),
    ("ssl.py", "ssl"),
    ("socket.py", "socket"),
)


# Frames on every stack (the loop, `cli.main`): left out of the inclusive ranking.
SCAFFOLDING = frozenset({"asyncio", "claw_operator (other)", "other", "uvloop"})


def package_of(file: str) -> str:
    path = _short(file)
    for fragment, name in PACKAGES:
        if path.startswith(fragment) or f"/{fragment}" in path:
            return name
    return "other"


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for raw in stack.split(";"):
        match = FRAME.match(raw.strip())
        if match is None:
            continue  # "process …", "thread (0x…)"
        frames.append((match["function"], match["file"]))
    return frames


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Where the samples of one collapsed-stack recording went."""
    by_package: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        function, file = frames[-1]
        by_package[package_of(file)] += count
        self_time[f"{function} ({_short(file)})"] += count
        # Inclusive time of the frames that say something: not the event loop's and the
        # interpreter's own, which every stack goes through.
        for name in {
            f"{function} ({_short(file)})"
            for function, file in frames
            if package_of(file) not in SCAFFOLDING and not file.startswith("<frozen")
        }:
            inclusive[name] += count

    def shares(counter: Counter[str], limit: int) -> list[list[Any]]:
        return [[name, round(100.0 * count / total, 1)] for name, count in counter.most_common(limit)]

    return {
        "samples": total,
        "self_by_package_percent": shares(by_package, len(by_package)),
        "top_self_percent": shares(self_time, top),
        "top_inclusive_percent": shares(inclusive, top),
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "lib/python3", "operator/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


class Profiler:
    """`py-spy record` of one process, one recording per phase."""

    def __init__(self, pid: int, directory: Path, rate: int = 100) -> None:
        self.pid, self.directory, self.rate = pid, directory, rate
        self.directory.mkdir(parents=True, exist_ok=True)
        self._running: tuple[str, subprocess.Popen[bytes]] | None = None
        self.summaries: dict[str, Any] = {}
        executable = Path(sys.executable).parent / "py-spy"
        self._py_spy = str(executable) if executable.exists() else shutil.which("py-spy")
        if self._py_spy is None:
            raise RuntimeError("py-spy is not installed (it is in the dev extra: make install)")

    def start(self, phase: str, pid: int | None = None) -> None:
        self.stop()
        if pid is not None:
            self.pid = pid
        output = self.directory / f"{phase}.txt"
        process = subprocess.Popen(
            [
                self._py_spy,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                # Only the thread holding the GIL: the samples are the process's Python CPU time
                # (idle waits and threads blocked on I/O or the GIL are left out).
                "--gil",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._running = (phase, process)

    def stop(self) -> None:
        if self._running is None:
            return
        phase, process = self._running
        self._running = None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        output = self.directory / f"{phase}.txt"
        if output.exists():
            self.summaries[phase] = summarise(output)


def main() -> int:
    for argument in sys.argv[1:]:
        print(json.dumps({argument: summarise(Path(argument))}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
