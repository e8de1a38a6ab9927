"""Pictures of a benchmark run (matplotlib), drawn next to its JSON.

`draw_run(timeline, path)` takes what any run can record — each instance's time to Ready (and
Fly's intrinsic share of it), the Ready count over time, Fly calls by endpoint for each phase of
the run, and the operator's CPU and RSS over time — and writes one PNG of four panels. The
fleet benchmark builds it from its `series`; `timeline_from_series` is that conversion, for any
other run that records the same keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import itertools

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


@dataclass
class RunTimeline:
    title: str
    time_to_ready_s: list[float] = field(default_factory=list)
    fly_intrinsic_s: list[float] = field(default_factory=list)
    ready_at_s: list[float] = field(default_factory=list)  # when each instance became Ready, since start
    n: int = 0
    calls_by_phase: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> endpoint -> calls
    process: list[tuple[float, float, float]] = field(default_factory=list)  # (t s, CPU %, RSS MiB)
    phases: list[tuple[str, float, float]] = field(default_factory=list)  # (name, from s, to s)


def timeline_from_series(title: str, series: Mapping[str, Any]) -> RunTimeline:
    return RunTimeline(
        title=title,
        time_to_ready_s=list(series.get("time_to_ready_s", [])),
        fly_intrinsic_s=list(series.get("fly_intrinsic_s", [])),
        ready_at_s=list(series.get("ready_at_s", [])),
        n=int(series.get("n", 0)),
        calls_by_phase={k: dict(v) for k, v in series.get("fly_calls_by_phase", {}).items()},
        process=[tuple(p) for p in series.get("process", [])],  # type: ignore[misc]
        phases=[tuple(p) for p in series.get("phases", [])],  # type: ignore[misc]
    )


def _shade_phases(ax: Axes, phases: Sequence[tuple[str, float, float]]) -> None:
    colours = ("#f2f2f2", "#e3ecf7")
    for index, (name, start, end) in enumerate(phases):
        ax.axvspan(start, end, color=colours[index % 2], zorder=0)
        ax.text(
            (start + end) / 2,
            0.98,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=8,
            color="#555555",
        )


def _distribution(ax: Axes, run: RunTimeline) -> None:
    ttr, fly = sorted(run.time_to_ready_s), sorted(run.fly_intrinsic_s)
    if not ttr:
        ax.text(0.5, 0.5, "no instance became Ready", ha="center", transform=ax.transAxes)
        return
    high = max(ttr + fly)
    bins = [high * i / 30 for i in range(31)] if high > 0 else 10
    ax.hist(fly, bins=bins, alpha=0.6, color="#7f7f7f", label="Fly-intrinsic (volume + machine start)")
    ax.hist(ttr, bins=bins, alpha=0.6, color="#1f77b4", label="time to Ready (create → Ready seen)")
    for values, colour in ((ttr, "#1f77b4"), (fly, "#555555")):
        if values:
            p50 = values[len(values) // 2]
            ax.axvline(p50, color=colour, linestyle="--", linewidth=1)
            ax.text(p50, ax.get_ylim()[1] * 0.95, f" p50 {p50:.1f}s", color=colour, fontsize=8, va="top")
    ax.set_title("Time to Ready against Fly's own time, per instance")
    ax.set_xlabel("seconds")
    ax.set_ylabel("instances")
    ax.legend(fontsize=8)


def _ready_over_time(ax: Axes, run: RunTimeline) -> None:
    _shade_phases(ax, run.phases)
    ready = sorted(run.ready_at_s)
    if ready:
        ax.step([0.0, *ready], list(range(len(ready) + 1)), where="post", color="#2ca02c", linewidth=2)
    if run.n:
        ax.axhline(run.n, color="#999999", linestyle=":", linewidth=1)
        ax.text(0, run.n, f" N = {run.n}", va="top", fontsize=8, color="#555555")
    ax.set_title("Instances Ready over time")
    ax.set_xlabel("seconds since the creates")
    ax.set_ylabel("Ready")
    ax.set_ylim(bottom=0)


def _calls_by_phase(ax: Axes, run: RunTimeline) -> None:
    phases = list(run.calls_by_phase)
    endpoints = sorted({e for calls in run.calls_by_phase.values() for e in calls})
    if not phases or not endpoints:
        ax.text(0.5, 0.5, "no Fly calls recorded", ha="center", transform=ax.transAxes)
        return
    cmap = plt.get_cmap("tab20")
    bottoms = [0.0] * len(phases)
    for index, endpoint in enumerate(endpoints):
        values = [run.calls_by_phase[p].get(endpoint, 0.0) for p in phases]
        ax.bar(phases, values, bottom=bottoms, color=cmap(index % 20), label=_short(endpoint))
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    for x, total in enumerate(bottoms):
        ax.text(x, total, f"{total:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(top=max(bottoms) * 1.15 or 1)
    ax.set_title("Fly calls per instance, by endpoint, in each phase of the run")
    ax.set_ylabel("calls per instance")
    ax.legend(fontsize=7, ncol=2, loc="upper left")


def _short(endpoint: str) -> str:
    """`POST /v1/apps/{app}/machines/{id}/wait` → `POST machines/{id}/wait`."""
    return endpoint.replace("/v1/apps/{app}/", "").replace("/v1/apps/{app_name}/", "")


def _process(ax: Axes, run: RunTimeline) -> None:
    _shade_phases(ax, run.phases)
    if not run.process:
        ax.text(0.5, 0.5, "no process samples", ha="center", transform=ax.transAxes)
        return
    times = [p[0] for p in run.process]
    ax.plot(times, [p[1] for p in run.process], color="#d62728", linewidth=1, label="CPU %")
    ax.set_ylabel("CPU % (one core = 100)", color="#d62728")
    ax.set_xlabel("seconds since the creates")
    ax.set_ylim(bottom=0)
    rss = ax.twinx()
    rss.plot(times, [p[2] for p in run.process], color="#9467bd", linewidth=1.5, label="RSS MiB")
    rss.set_ylabel("RSS MiB", color="#9467bd")
    rss.set_ylim(bottom=0, top=max(p[2] for p in run.process) * 1.2 or 1)
    ax.set_title("The operator: CPU and resident memory")


def draw_run(run: RunTimeline, path: Path) -> Path:
    figure, axes = plt.subplots(2, 2, figsize=(15, 9.5))
    _distribution(axes[0][0], run)
    _ready_over_time(axes[0][1], run)
    _calls_by_phase(axes[1][0], run)
    _process(axes[1][1], run)
    figure.suptitle(run.title, fontsize=13)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def cpu_percent(samples: Sequence[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """(t, cumulative CPU seconds, RSS) samples → (t, CPU % over the last interval, RSS)."""
    out: list[tuple[float, float, float]] = []
    for (t0, cpu0, _), (t1, cpu1, rss1) in itertools.pairwise(samples):
        if t1 > t0:
            out.append((t1, 100.0 * (cpu1 - cpu0) / (t1 - t0), rss1))
    return [p for p in out if not math.isnan(p[1])]


def main() -> int:
    """Redraw the picture of a saved run: `python benchmarks/plots.py benchmarks/results/fleet-40.json`."""
    import json
    import sys

    for name in sys.argv[1:]:
        path = Path(name)
        result = json.loads(path.read_text())
        if "series" not in result:
            sys.stderr.write(f"{path}: no series recorded (run the benchmark again)\n")
            return 1
        title = (
            f"fleet: {result['n']} ClawInstances, {result['apps']} Fly app(s), flysim realistic, Fly's limits"
        )
        sys.stdout.write(
            f"drew {draw_run(timeline_from_series(title, result['series']), path.with_suffix('.png'))}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
