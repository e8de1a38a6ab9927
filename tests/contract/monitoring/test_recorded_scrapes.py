"""The shipped alerts over scrapes recorded from the real operator (record_scrapes.py): each
situation's alert fires at the end of its recording, `for` included; nothing holds before the
situation began, and nothing fires at any moment of a healthy operator's recording.

These complement tests/integration/test_monitoring.py (live scrapes, an alert's expression over
seconds) for what needs minutes of real time: ClawWatchStale holds only once the watch has owed
an event for five minutes, and fires two minutes later.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from tests.contract.monitoring.promql import Evaluator, Store, duration, firing, parse_series
from tests.contract.monitoring.test_alerts import rules

SCRAPES = Path(__file__).resolve().parents[2] / "fixtures" / "scrapes"

# Per recorded situation: the alerts firing at the last scrape (their `for` held), and every
# alert whose expression holds there (some only wait on a `for` longer than the recording).
EXPECTED: dict[str, dict[str, set[str]]] = {
    "healthy": {"fires": set(), "holds": set()},
    "crash_loop": {
        "fires": {"ClawInstanceCrashLooping"},
        # The looping instance is not Ready: that alert waits its 15 minutes.
        "holds": {"ClawInstanceCrashLooping", "ClawInstancesNotReady"},
    },
    "watch_stale": {"fires": {"ClawWatchStale"}, "holds": {"ClawWatchStale"}},
}


def load(situation: str) -> tuple[dict[str, Any], Store]:
    fixture = json.loads((SCRAPES / f"{situation}.json").read_text())
    store = Store()
    for key, values in fixture["series"].items():
        name, labels = parse_series(key)
        for t, value in zip(fixture["times"], values, strict=True):
            if value is not None:
                store.add(name, labels, t, value)
    store.sort()
    return fixture, store


def holding(store: Store, at: float) -> set[str]:
    evaluator = Evaluator(store)
    return {rule["alert"] for rule in rules() if evaluator.instant(rule["expr"], at)}


def firing_alerts(store: Store, at: float) -> set[str]:
    return {
        rule["alert"] for rule in rules() if firing(store, rule["expr"], duration(rule.get("for", "0s")), at)
    }


def test_every_situation_is_recorded() -> None:
    assert sorted(p.stem for p in SCRAPES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("situation", sorted(EXPECTED))
def test_the_situation_s_alerts_fire_at_the_end_of_its_recording(situation: str) -> None:
    fixture, store = load(situation)
    end = fixture["times"][-1]
    assert firing_alerts(store, end) == EXPECTED[situation]["fires"]
    assert holding(store, end) == EXPECTED[situation]["holds"]


@pytest.mark.parametrize("situation", sorted(EXPECTED))
def test_nothing_holds_before_the_situation_began(situation: str) -> None:
    fixture, store = load(situation)
    before = [t for t in fixture["times"] if t < fixture["situation_at"]]
    assert before, "the recording starts with the situation: record a lead"
    for t in before:
        assert holding(store, t) == set(), f"at {t}s"


def test_a_healthy_operator_fires_no_alert_at_any_scrape() -> None:
    fixture, store = load("healthy")
    assert fixture["times"][-1] >= 180  # minutes, not seconds: a restart and a create inside
    held = set()
    for t in fixture["times"]:
        assert firing_alerts(store, t) == set(), f"at {t}s"
        held |= holding(store, t)
    # While it restarts or starts, an instance is not Ready for a moment: that alert's `for`
    # (15 minutes) is what keeps it quiet; no other expression ever holds.
    assert held <= {"ClawInstancesNotReady"}, held


def test_the_crash_loop_alert_fires_from_the_first_crash_on() -> None:
    fixture, store = load("crash_loop")
    crashes = fixture["series"]['claw_events_total{reason="CrashLoopBackOff", type="Warning"}']
    first = next(t for t, v in zip(fixture["times"], crashes, strict=True) if v)
    assert first > fixture["situation_at"]
    assert "ClawInstanceCrashLooping" not in firing_alerts(store, first - fixture["scrape_interval_seconds"])
    assert "ClawInstanceCrashLooping" in firing_alerts(store, first)


def test_the_watch_stale_alert_waits_five_minutes_owed_then_two_more() -> None:
    fixture, store = load("watch_stale")
    owed = fixture["series"]["claw_watch_owed_event_seconds"]
    times = fixture["times"]
    # The gauge grows with the wall clock once the stream stops delivering what the operator wrote.
    rising = [(t, v) for t, v in zip(times, owed, strict=True) if v and v > 0]
    assert rising and rising[-1][1] >= 420, rising[-3:]
    assert all(b[1] > a[1] for a, b in itertools.pairwise(rising))
    past_threshold = next(t for t, v in rising if v > 300)
    assert "ClawWatchStale" in holding(store, past_threshold)
    assert "ClawWatchStale" not in firing_alerts(store, past_threshold)  # pending: its `for` is 2m
    assert "ClawWatchStale" not in holding(store, past_threshold - 60)
    assert "ClawWatchStale" in firing_alerts(store, past_threshold + 120)
