"""Where the operator's memory goes: summarise `tracemalloc` snapshots it dumped.

`fleet.py --tracemalloc DIR` runs the operator with `CLAW_OPERATOR_TRACEMALLOC` set
(`operator/claw_operator/kube/memtrace.py`) and has it dump a snapshot before the fleet is
created (`empty`) and once it is Ready and has been polled (`ready`). This script compares
them: what grew, grouped by the innermost package, by the first frame of claw-operator or kopf
(who asked), and by traceback; per instance when `--n` is given.

    python benchmarks/memprofile.py DIR/operator.2.snapshot --base DIR/operator.1.snapshot --n 1000
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

OWNERS = ("claw_operator", "kopf")


def package(filename: str) -> str:
    """`…/site-packages/kopf/_core/x.py` → `kopf`; `…/claw_operator/kube/x.py` → `claw_operator.kube`;
    the standard library → its module name."""
    parts = Path(filename).parts
    if "claw_operator" in parts:
        index = parts.index("claw_operator")
        return ".".join(p.removesuffix(".py") for p in parts[index : index + 2])
    if "site-packages" in parts:
        index = parts.index("site-packages")
        return parts[index + 1].removesuffix(".py") if index + 1 < len(parts) else filename
    return Path(filename).stem


def owner(traceback: tracemalloc.Traceback) -> str:
    """The innermost frame in claw-operator or kopf (who asked for the memory), else the innermost."""
    for frame in reversed(traceback):  # oldest first: the innermost frame is the last
        if any(f"/{name}/" in frame.filename for name in OWNERS):
            return f"{package(frame.filename)}:{Path(frame.filename).name}:{frame.lineno}"
    frame = traceback[-1]
    return f"{package(frame.filename)}:{Path(frame.filename).name}:{frame.lineno}"


def grown(
    snapshot: tracemalloc.Snapshot, base: tracemalloc.Snapshot | None
) -> list[tuple[tracemalloc.Traceback, int, int]]:
    """(traceback, bytes, blocks) of every traceback, less the base's."""
    stats = (
        [(s.traceback, s.size_diff, s.count_diff) for s in snapshot.compare_to(base, "traceback")]
        if base is not None
        else [(s.traceback, s.size, s.count) for s in snapshot.statistics("traceback")]
    )
    return stats


# What the dumps themselves allocated (kube/memtrace.py: formatting tracebacks fills `linecache`;
# tracemalloc's own) is not the operator's: left out of both snapshots (older dumps kept it).
OWN_FILTERS = [
    tracemalloc.Filter(False, "*/claw_operator/kube/memtrace.py", all_frames=True),
    tracemalloc.Filter(False, tracemalloc.__file__, all_frames=True),
]


def load(path: Path) -> tracemalloc.Snapshot:
    return tracemalloc.Snapshot.load(str(path)).filter_traces(OWN_FILTERS)


def summarise(snapshot: Path, base: Path | None, n: int | None, top: int) -> str:
    snap = load(snapshot)
    base_snap = load(base) if base is not None else None
    stats = grown(snap, base_snap)
    total = sum(size for _, size, _ in stats)
    per = f" = {total / 1024 / n:.1f} KiB per instance" if n else ""
    lines = [f"traced growth: {total / 1024 / 1024:.2f} MiB{per}", ""]
    by_package: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    for traceback, size, _ in stats:
        by_package[package(traceback[-1].filename)] += size
        by_owner[owner(traceback)] += size

    def table(title: str, counter: Counter[str]) -> None:
        lines.append(title)
        for name, size in counter.most_common(top):
            share = 100.0 * size / total if total else 0.0
            each = f"  {size / n:8.0f} B/instance" if n else ""
            lines.append(f"  {size / 1024:10.0f} KiB {share:5.1f}%{each}  {name}")
        lines.append("")

    table("by innermost package:", by_package)
    table("by the innermost claw_operator/kopf frame (who allocated):", by_owner)
    lines.append("largest tracebacks:")
    for traceback, size, count in sorted(stats, key=lambda s: -s[1])[:top]:
        each = f", {size / n:.0f} B/instance" if n else ""
        lines.append(f"  {size / 1024:.0f} KiB in {count} blocks{each}")
        lines += [
            f"      {Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"
            for frame in list(traceback)[-8:]
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--base", type=Path, help="an earlier snapshot: show what grew since")
    parser.add_argument("--n", type=int, help="instances created in between (per-instance figures)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarise(args.snapshot, args.base, args.n, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
