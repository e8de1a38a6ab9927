"""The tour's timeline picture: runs of states from samples, and a PNG with every row."""

from __future__ import annotations

from pathlib import Path

import pytest

from claw_operator.demo.timeline import Recording, Sample, _segments, draw_timeline, sample_of


def test_samples_become_runs_of_one_value_each() -> None:
    points = [(0.0, "Starting"), (1.0, "Starting"), (2.0, "Running"), (5.0, "Stopped")]
    assert _segments(points, end=6.0) == [
        (0.0, 2.0, "Starting"),
        (2.0, 3.0, "Running"),
        (5.0, 1.0, "Stopped"),
    ]
    assert _segments([], end=3.0) == []


def test_a_sample_keeps_phase_conditions_and_machine() -> None:
    obj = {
        "metadata": {"name": "web"},
        "status": {
            "phase": "Running",
            "machineId": "m1",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Stalled", "status": "False"}],
        },
    }
    sample = sample_of(obj, 12.5)
    assert (sample.name, sample.phase, sample.machine_id) == ("web", "Running", "m1")
    assert sample.conditions == {"Ready": "True", "Stalled": "False"}


def test_the_picture_is_drawn(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    recording = Recording(started=100.0, ended=110.0)
    for t, phase, ready in (
        (100.5, None, "Unknown"),
        (102.0, "Starting", "False"),
        (104.0, "Running", "True"),
    ):
        recording.samples.append(Sample(t, "web", phase, {"Ready": ready}, "m1" if phase else None))
    recording.marks.append((100.2, "1. create"))
    fly = {"m1": [{"state": "created", "time": 102.1}, {"state": "started", "time": 103.8}]}
    path = draw_timeline(recording, fly, tmp_path / "tour.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert recording.machine_ids("web") == ["m1"]
