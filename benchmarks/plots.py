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
from collections import Counter

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


def _shade_phases(ax: Axes, phases: Sequence[tuple[str, float, float]], above: bool = False) -> None:
    """Shade each phase of the run; its name inside the top of the axes, or just above them
    (`above`: where a legend would hide it; the title then needs a `pad`)."""
    colours = ("#f2f2f2", "#e3ecf7")
    for index, (name, start, end) in enumerate(phases):
        ax.axvspan(start, end, color=colours[index % 2], zorder=0)
        ax.text(
            (start + end) / 2,
            1.005 if above else 0.98,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom" if above else "top",
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


# ------------------------------------------------------------------------------- chaos runs

_PHASE_COLOURS = {
    "None": "#c7c7c7",
    "Provisioned": "#aec7e8",
    "Starting": "#ffbb78",
    "Running": "#98df8a",
    "Stopped": "#9edae5",
    "Destroying": "#ff9896",
}


def _kills(ax: Axes, kills: Sequence[Sequence[Any]], label: bool = True) -> None:
    """A dashed red line at each `kill -9` of the operator."""
    for index, (at, _why) in enumerate(kills):
        ax.axvline(
            float(at),
            color="#d62728",
            linestyle="--",
            linewidth=0.8,
            alpha=0.7,
            label="operator kill -9" if label and index == 0 else None,
        )


def _fleet(ax: Axes, series: Mapping[str, Any]) -> None:
    fleet = series["fleet"]
    _shade_phases(ax, [tuple(p) for p in series["phases"]], above=True)  # type: ignore[misc]
    times = fleet["t"]
    if not times:
        ax.text(0.5, 0.5, "no samples", ha="center", transform=ax.transAxes)
        return
    order = [p for p in _PHASE_COLOURS if p in fleet["by_phase"]]
    order += [p for p in fleet["by_phase"] if p not in order]
    ax.stackplot(
        times,
        [fleet["by_phase"][p] for p in order],
        labels=["no status yet" if p == "None" else f"phase {p}" for p in order],
        colors=[_PHASE_COLOURS.get(p, "#dddddd") for p in order],
        alpha=0.9,
    )
    ax.plot(times, fleet["ready"], color="black", linewidth=1.8, label="Ready=True")
    _kills(ax, series["kills"])
    ax.set_title("The fleet: ClawInstances by status.phase (stacked) and Ready", pad=14)
    ax.set_xlabel("seconds since the first create")
    ax.set_ylabel("ClawInstances")
    totals = [sum(column) for column in zip(*fleet["by_phase"].values(), strict=True)]
    ax.set_ylim(0, max([series["n"], *totals]) * 1.35 or 1)
    ax.legend(fontsize=7, ncol=4, loc="upper right")


def _faults(ax: Axes, series: Mapping[str, Any]) -> None:
    _shade_phases(ax, [tuple(p) for p in series["phases"]], above=True)  # type: ignore[misc]
    faults = sorted((float(t), kind) for t, kind in series["faults"])
    kinds = sorted({kind for _, kind in faults})
    cmap = plt.get_cmap("tab10")
    end = series["phases"][-1][2] if series["phases"] else (faults[-1][0] if faults else 1.0)
    for index, kind in enumerate(kinds):
        times = [t for t, k in faults if k == kind]
        ax.step(
            [0.0, *times, end],
            [0, *range(1, len(times) + 1), len(times)],
            where="post",
            color=cmap(index % 10),
            linewidth=1.4,
            label=f"{kind} ({len(times)})",
        )
    _kills(ax, series["kills"])
    ax.set_title(
        f"Faults injected into Fly, cumulative by kind ({len(faults)} in all), and operator kills", pad=14
    )
    ax.set_xlabel("seconds since the first create")
    ax.set_ylabel("faults injected so far")
    counts = Counter(kind for _, kind in faults)
    ax.set_ylim(0, max(counts.values(), default=1) * 1.6)
    if kinds or series["kills"]:
        ax.legend(fontsize=7, ncol=3, loc="upper right")


def _violations(ax: Axes, series: Mapping[str, Any]) -> None:
    fleet = series["fleet"]
    _shade_phases(ax, [tuple(p) for p in series["phases"]], above=True)  # type: ignore[misc]
    ax.plot(fleet["t"], fleet["live_machines"], color="#1f77b4", linewidth=1.4, label="live Fly machines")
    ax.plot(fleet["t"], fleet["live_volumes"], color="#8c564b", linewidth=1.4, label="live Fly volumes")
    ax.axhline(series["n"], color="#999999", linestyle=":", linewidth=1)
    ax.text(0, series["n"], f" N = {series['n']}", va="bottom", fontsize=8, color="#555555")
    ax.set_xlabel("seconds since the first create")
    ax.set_ylabel("Fly machines / volumes (flysim's own state)")
    ax.set_ylim(bottom=0, top=max([series["n"], *fleet["live_machines"], *fleet["live_volumes"]]) * 1.35 or 1)
    violations = sorted(float(t) for t, _ in series["violations"])
    bad = ax.twinx()
    end = fleet["t"][-1] if fleet["t"] else 1.0
    bad.step(
        [0.0, *violations, end],
        [0, *range(1, len(violations) + 1), len(violations)],
        where="post",
        color="#d62728",
        linewidth=2,
        label=f"invariant violations ({len(violations)})",
    )
    bad.set_ylabel("invariant violations so far", color="#d62728")
    bad.set_ylim(0, max(3, len(violations) * 1.25))
    if not violations:
        bad.text(
            0.5,
            0.08,
            "0 invariant violations",
            transform=bad.transAxes,
            ha="center",
            color="#d62728",
            fontsize=10,
            fontweight="bold",
        )
    lines = ax.get_legend_handles_labels()
    more = bad.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper right")
    ax.set_title("What Fly holds (machines, volumes) and invariant violations over time", pad=14)


def _first_ready(ax: Axes, series: Mapping[str, Any]) -> None:
    values = sorted(series["time_to_first_ready_s"])
    if not values:
        ax.text(0.5, 0.5, "no instance became Ready", ha="center", transform=ax.transAxes)
        return
    ax.hist(values, bins=30, color="#1f77b4", alpha=0.8)
    for share, style in ((0.5, "--"), (0.99, ":")):
        at = values[min(len(values) - 1, int(share * len(values)))]
        ax.axvline(at, color="#333333", linestyle=style, linewidth=1)
        ax.text(at, ax.get_ylim()[1] * 0.95, f" p{int(share * 100)} {at:.1f}s", fontsize=8, va="top")
    ax.set_title(f"Time from create to first Ready under chaos ({len(values)}/{series['n']} instances)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("instances")


def _with_gaps(process: Sequence[Sequence[float]]) -> list[tuple[float, float, float]]:
    """(t, CPU %, RSS, life) rows → (t, CPU %, RSS), with a gap (NaN) where a life ended."""
    out: list[tuple[float, float, float]] = []
    for index, row in enumerate(process):
        if index and row[3] != process[index - 1][3]:
            out.append((row[0], math.nan, math.nan))
        out.append((row[0], row[1], row[2]))
    return out


def draw_chaos(title: str, series: Mapping[str, Any], path: Path) -> Path:
    """One chaos seed (`benchmarks/chaos.py`'s `series`): the fleet by phase and Ready, faults
    and kills, Fly's live objects and the violations, time to first Ready, Fly calls per phase
    of the run, and the operator's CPU and RSS across its lives. Red dashed lines: kills."""
    figure, axes = plt.subplots(3, 2, figsize=(16, 14))
    _fleet(axes[0][0], series)
    _faults(axes[0][1], series)
    _violations(axes[1][0], series)
    _first_ready(axes[1][1], series)
    run = RunTimeline(
        title=title,
        n=int(series["n"]),
        calls_by_phase={k: dict(v) for k, v in series["fly_calls_by_phase"].items()},
        process=_with_gaps(series["process"]),
        phases=[tuple(p) for p in series["phases"]],  # type: ignore[misc]
    )
    _calls_by_phase(axes[2][0], run)
    _process(axes[2][1], run)
    for text in list(axes[2][1].texts):
        text.remove()  # the phase names, drawn again above the axes
    _shade_phases(axes[2][1], run.phases, above=True)
    _kills(axes[2][1], series["kills"])
    axes[2][1].set_xlabel("seconds since the first create")
    axes[2][1].set_title("The operator: CPU % and RSS MiB (each kill -9 starts a new process)", pad=14)
    figure.suptitle(title, fontsize=13)
    figure.tight_layout(rect=(0, 0, 1, 0.975))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def chaos_title(report: Mapping[str, Any], seed: Mapping[str, Any]) -> str:
    series = seed["series"]
    return (
        f"chaos seed {seed['seed']}: {series['n']} ClawInstances (N, deletes and re-creates included), "
        f"{len(series['faults'])} Fly faults, {len(series['kills'])} operator kills, "
        f"{len(series['violations'])} invariant violations (flysim realistic; commit {report['commit'][:8]})"
    )


def cpu_percent(samples: Sequence[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """(t, cumulative CPU seconds, RSS) samples → (t, CPU % over the last interval, RSS)."""
    out: list[tuple[float, float, float]] = []
    for (t0, cpu0, _), (t1, cpu1, rss1) in itertools.pairwise(samples):
        if t1 > t0:
            out.append((t1, 100.0 * (cpu1 - cpu0) / (t1 - t0), rss1))
    return [p for p in out if not math.isnan(p[1])]


def main() -> int:
    """Redraw the pictures of saved runs: `python benchmarks/plots.py benchmarks/results/fleet-40.json
    benchmarks/results/chaos.json`."""
    import json
    import sys

    for name in sys.argv[1:]:
        path = Path(name)
        result = json.loads(path.read_text())
        if "seeds" in result:  # a chaos run: one picture per seed
            for seed in result["seeds"]:
                if "series" not in seed:
                    sys.stderr.write(f"{path}: seed {seed['seed']} has no series (run it again)\n")
                    return 1
                target = path.with_name(f"{path.stem}-seed{seed['seed']}.png")
                sys.stdout.write(f"drew {draw_chaos(chaos_title(result, seed), seed['series'], target)}\n")
            continue
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
