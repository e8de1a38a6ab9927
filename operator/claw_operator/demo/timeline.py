"""The picture that ends `claw-operator demo --tour`: what each instance went through.

A `TimelineRecorder` samples every ClawInstance's phase and conditions while the tour runs (and
marks each step); at the end `draw_timeline` lays them out on one time axis, one band per
instance: its phase, a row per condition (True / False / Unknown), and beneath them Fly's own
record of each of its machines' states (flysim's `/_sim/timeline`). matplotlib draws it; it is
an optional dependency (`pip install 'claw-operator[plots]'`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claw_operator.api import CONDITION_TYPES

PHASE_COLOURS = {
    "Provisioned": "#c7c7c7",
    "Starting": "#ffbb78",
    "Running": "#2ca02c",
    "Stopped": "#7f7f7f",
    "Destroying": "#d62728",
    None: "#f0f0f0",
}
CONDITION_COLOURS = {"True": "#1f77b4", "False": "#dddddd", "Unknown": "#ffffff"}
MACHINE_COLOURS = {
    "created": "#c5b0d5",
    "starting": "#ffbb78",
    "started": "#2ca02c",
    "stopping": "#ff9896",
    "stopped": "#7f7f7f",
    "failed": "#d62728",
    "replacing": "#9467bd",
    "updating": "#9467bd",
    "destroying": "#e377c2",
    "destroyed": "#000000",
}


@dataclass(frozen=True)
class Sample:
    at: float  # Unix time
    name: str
    phase: str | None
    conditions: Mapping[str, str]  # type -> status
    machine_id: str | None


@dataclass
class Recording:
    samples: list[Sample] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: float | None = None

    def machine_ids(self, name: str) -> list[str]:
        seen: list[str] = []
        for s in self.samples:
            if s.name == name and s.machine_id and s.machine_id not in seen:
                seen.append(s.machine_id)
        return seen

    def names(self) -> list[str]:
        seen: list[str] = []
        for s in self.samples:
            if s.name not in seen:
                seen.append(s.name)
        return seen


def sample_of(obj: Mapping[str, Any], at: float) -> Sample:
    status = obj.get("status") or {}
    return Sample(
        at=at,
        name=str(obj["metadata"]["name"]),
        phase=status.get("phase"),
        conditions={str(c.get("type")): str(c.get("status")) for c in status.get("conditions") or []},
        machine_id=status.get("machineId"),
    )


class TimelineRecorder:
    """Polls `list_instances()` every `every` seconds on a thread of its own until stopped."""

    def __init__(self, list_instances: Callable[[], Iterable[Mapping[str, Any]]], every: float = 0.1) -> None:
        self._list = list_instances
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tour-timeline", daemon=True)
        self.recording = Recording()

    def start(self) -> TimelineRecorder:
        self._thread.start()
        return self

    def mark(self, label: str) -> None:
        self.recording.marks.append((time.time(), label))

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            try:
                for obj in self._list():
                    self.recording.samples.append(sample_of(obj, now))
            except Exception:  # the picture is a by-product: a failed look skips one sample
                pass
            self._stop.wait(self._every)

    def stop(self) -> Recording:
        self._stop.set()
        self._thread.join(5)
        self.recording.ended = time.time()
        return self.recording


def _segments(points: Sequence[tuple[float, Any]], end: float) -> list[tuple[float, float, Any]]:
    """(t, value) changes → (start, width, value) runs, the last one lasting until `end`."""
    runs: list[tuple[float, float, Any]] = []
    for index, (at, value) in enumerate(points):
        if runs and runs[-1][2] == value:
            continue
        until = end
        for later, other in points[index + 1 :]:
            if other != value:
                until = later
                break
        runs.append((at, max(0.0, until - at), value))
    return runs


def draw_timeline(
    recording: Recording, fly_states: Mapping[str, Sequence[Mapping[str, Any]]], path: Path
) -> Path:
    """One band per instance: phase, conditions, then Fly's machine states; steps as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    t0 = recording.started
    end = (recording.ended or time.time()) - t0
    names = recording.names()
    rows: list[tuple[str, str, list[tuple[float, float, Any]], Mapping[Any, str]]] = []
    for name in names:
        mine = [s for s in recording.samples if s.name == name]
        last_seen = mine[-1].at - t0 if mine else end
        gone_at = min(end, last_seen + 0.2)
        rows.append((name, "phase", _segments([(s.at - t0, s.phase) for s in mine], gone_at), PHASE_COLOURS))
        for type_ in CONDITION_TYPES:
            points = [(s.at - t0, s.conditions.get(type_, "Unknown")) for s in mine]
            rows.append((name, type_, _segments(points, gone_at), CONDITION_COLOURS))
        for machine_id in recording.machine_ids(name):
            changes = [(float(c["time"]) - t0, str(c["state"])) for c in fly_states.get(machine_id, [])]
            rows.append((name, f"Fly machine {machine_id}", _segments(changes, end), MACHINE_COLOURS))

    height = 0.8
    figure, ax = plt.subplots(figsize=(15, 1.2 + 0.33 * len(rows) + 0.4 * len(names)))
    labels: list[str] = []
    y = 0.0
    positions: list[float] = []
    separators: list[float] = []
    previous = None
    for name, what, runs, colours in rows:
        if previous is not None and name != previous:
            separators.append(y - 0.1)
            y += 0.5
        previous = name
        for start, width, value in runs:
            colour = colours.get(value, "#bcbd22")
            ax.broken_barh([(start, width)], (y, height), facecolors=colour, edgecolor="white", linewidth=0.3)
            labelled = what == "phase" or what.startswith("Fly machine")
            if labelled and width > end / 40 and value:
                text_colour = "white" if colour in ("#2ca02c", "#7f7f7f", "#d62728", "#000000") else "black"
                ax.text(
                    start + width / 2,
                    y + height / 2,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=text_colour,
                )
        positions.append(y + height / 2)
        labels.append(f"{name}  {what}" if what == "phase" else what)
        y += 1.0
    for sep in separators:
        ax.axhline(sep, color="#999999", linewidth=0.8)
    for index, (at, label) in enumerate(recording.marks):
        x = at - t0
        ax.axvline(x, color="#444444", linestyle="--", linewidth=0.8)
        # Alternate heights above the plot, so that close steps do not overwrite each other.
        ax.text(
            x,
            1.005 + 0.035 * (index % 2),
            label,
            transform=ax.get_xaxis_transform(),
            fontsize=8,
            va="bottom",
            ha="left",
            color="#222222",
        )
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds since the tour began")
    ax.set_title(
        "claw-operator demo --tour: each instance's phase and conditions, and Fly's machine states", pad=30
    )
    legend = [Patch(color=c, label=p) for p, c in PHASE_COLOURS.items() if p]
    legend += [
        Patch(facecolor=CONDITION_COLOURS["True"], label="condition True"),
        Patch(facecolor=CONDITION_COLOURS["False"], label="condition False"),
    ]
    legend += [
        Patch(color=MACHINE_COLOURS[s], label=f"Fly {s}")
        for s in ("starting", "started", "stopped", "destroyed")
    ]
    ax.legend(
        handles=legend,
        fontsize=7,
        ncol=6,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08 - 2.0 / (len(rows) + 8)),
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
