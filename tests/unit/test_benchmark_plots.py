"""benchmarks/plots.py draws a run's picture from the series the fleet benchmark records."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

pytest.importorskip("matplotlib")


def _plots() -> Any:
    spec = importlib.util.spec_from_file_location("bench_plots", REPO / "benchmarks" / "plots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_plots"] = module
    spec.loader.exec_module(module)
    return module


def test_cpu_samples_become_percentages_per_interval() -> None:
    plots = _plots()
    samples = [(0.0, 10.0, 50.0), (2.0, 11.0, 51.0), (4.0, 11.0, 52.0)]
    assert plots.cpu_percent(samples) == [(2.0, 50.0, 51.0), (4.0, 0.0, 52.0)]


def test_a_fleet_series_draws_four_panels(tmp_path: Path) -> None:
    plots = _plots()
    series = {
        "n": 3,
        "time_to_ready_s": [6.0, 7.5, 9.0],
        "fly_intrinsic_s": [5.0, 5.1, 5.3],
        "ready_at_s": [6.0, 7.6, 9.1],
        "phases": [["ramp to Ready", 0, 9.1], ["steady", 10, 20], ["delete", 20, 30]],
        "fly_calls_by_phase": {
            "ramp to Ready": {"POST /v1/apps/{app}/volumes": 1, "POST /v1/apps/{app}/machines": 1},
            "delete": {"DELETE /v1/apps/{app}/machines/{id}": 1},
        },
        "process": [[1, 12.0, 90.0], [2, 30.0, 95.0]],
    }
    timeline = plots.timeline_from_series("three", series)
    assert timeline.calls_by_phase["delete"] == {"DELETE /v1/apps/{app}/machines/{id}": 1}
    path = plots.draw_run(timeline, tmp_path / "run.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = plots.draw_run(plots.RunTimeline(title="nothing"), tmp_path / "empty.png")
    assert empty.exists()


def test_operator_lives_are_drawn_apart() -> None:
    plots = _plots()
    rows = [[1, 10.0, 90.0, 1], [2, 20.0, 95.0, 1], [3, 30.0, 40.0, 2], [4, 5.0, 60.0, 2]]
    drawn = plots._with_gaps(rows)
    assert [row[0] for row in drawn] == [1, 2, 3, 3, 4]
    assert drawn[2][1] != drawn[2][1]  # NaN: the line breaks where a kill -9 ended a life
    assert drawn[3] == (3, 30.0, 40.0)


def test_a_chaos_seed_draws_its_picture(tmp_path: Path) -> None:
    import json

    plots = _plots()
    saved = json.loads((REPO / "benchmarks" / "results" / "chaos-quick.json").read_text())
    (seed,) = saved["seeds"]
    series = seed["series"]
    assert series["fleet"]["t"] and series["faults"] and series["kills"]
    assert {name for name, _, _ in series["phases"]} == {"chaos", "converge", "delete"}
    title = plots.chaos_title(saved, seed)
    assert f"{len(series['kills'])} operator kills" in title
    path = plots.draw_chaos(title, series, tmp_path / "chaos.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    nothing = {
        "n": 0,
        "phases": [],
        "fleet": {"t": [], "by_phase": {}, "ready": [], "live_machines": [], "live_volumes": []},
        "faults": [],
        "kills": [],
        "violations": [],
        "time_to_first_ready_s": [],
        "fly_calls_by_phase": {},
        "process": [],
    }
    assert plots.draw_chaos("nothing", nothing, tmp_path / "empty.png").exists()
