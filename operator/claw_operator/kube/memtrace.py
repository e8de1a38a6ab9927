"""A diagnostic, not a feature: where the operator's memory goes (issue 13's memory goal).

With `CLAW_OPERATOR_TRACEMALLOC=PREFIX` in its environment, `claw-operator run` starts
`tracemalloc` (`CLAW_OPERATOR_TRACEMALLOC_FRAMES` frames per traceback, 12 by default) and,
on each SIGUSR2, writes `PREFIX.PID.N.snapshot` (`tracemalloc.Snapshot.dump`, for any grouping
later: `python benchmarks/memprofile.py PREFIX.PID.N.snapshot`) and `PREFIX.PID.N.txt` (the top
allocations by file and line and by traceback). Unset, nothing is imported or installed.
tracemalloc slows every allocation: never in production, only under a benchmark.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import tracemalloc
import types
from collections import Counter
from pathlib import Path

ENV = "CLAW_OPERATOR_TRACEMALLOC"
FRAMES_ENV = "CLAW_OPERATOR_TRACEMALLOC_FRAMES"
HOLDERS_ENV = "CLAW_OPERATOR_TRACEMALLOC_HOLDERS"  # file suffixes: who holds what they allocated
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


# The dump's own allocations: formatting tracebacks fills `linecache` with the source files of
# every frame shown (~14 KB per instance of a fleet's first dump, kept by every later one), and
# tracemalloc's own. Left out of every snapshot written (and of memprofile.py's comparisons).
OWN = (f"*{os.sep}claw_operator{os.sep}kube{os.sep}memtrace.py", tracemalloc.__file__)


def own_filters() -> list[tracemalloc.Filter]:
    """Filters that drop every trace allocated under the dump itself (any frame)."""
    return [tracemalloc.Filter(False, pattern, all_frames=True) for pattern in OWN]


def write(stem: Path) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces(own_filters())
    snapshot.dump(f"{stem}.snapshot")
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    lines = [f"traced: {total / 1024 / 1024:.1f} MiB", "", "by line:"]
    lines += [str(stat) for stat in snapshot.statistics("lineno")[:TOP]]
    lines += ["", "by traceback:"]
    for stat in snapshot.statistics("traceback")[:TOP]:
        lines.append(f"{stat.size / 1024:.0f} KiB in {stat.count} blocks")
        lines += [f"    {line}" for line in stat.traceback.format()]
    counts = Counter(type(obj).__qualname__ for obj in gc.get_objects())
    lines += ["", "live objects by type (gc-tracked):"]
    lines += [f"  {count:8d}  {name}" for name, count in counts.most_common(TOP)]
    for marker in os.environ.get(HOLDERS_ENV, "").split(","):
        if marker:
            lines += ["", *holders(marker)]
    Path(f"{stem}.txt").write_text("\n".join(lines) + "\n")  # last: the dump is complete


def _describe(obj: object) -> str:
    if isinstance(obj, dict):
        return f"dict{sorted(map(str, obj))[:6]}"
    if isinstance(obj, types.FrameType):
        return f"frame {obj.f_code.co_filename.rsplit('/', 2)[-1]}:{obj.f_lineno} {obj.f_code.co_name}"
    if isinstance(obj, types.CoroutineType):
        return f"coroutine {obj.__qualname__}"
    return type(obj).__qualname__


def holders(marker: str, samples: int = 3, depth: int = 4) -> list[str]:
    """Who keeps the containers allocated under a frame whose file ends with `marker` alive:
    a few samples, each with its chain of referrers (the first non-frame one at each level)."""
    if marker.startswith("type:"):  # every live object of that class name
        found = [obj for obj in gc.get_objects() if type(obj).__name__ == marker[5:]]
    else:
        found = [
            obj
            for obj in gc.get_objects()
            if isinstance(obj, dict)
            and ("metadata" in obj or "spec" in obj or "status" in obj or "id" in obj)
            and (tb := tracemalloc.get_object_traceback(obj)) is not None
            and any(frame.filename.endswith(marker) for frame in tb)
        ]
    lines = [f"{len(found)} live objects ({marker})"]
    for obj in random.sample(found, min(samples, len(found))):
        lines.append(f"  {_describe(obj)}")
        current: object = obj
        seen = {id(found)}
        for level in range(depth):
            referrers = [r for r in gc.get_referrers(current) if id(r) not in seen and r is not found]
            seen.add(id(current))
            if not referrers:
                break
            lines.append("    " + "  " * level + " <- " + " | ".join(_describe(r) for r in referrers[:4]))
            current = next((r for r in referrers if not isinstance(r, types.FrameType | list)), referrers[0])
    return lines
