"""Crash loops back off, visibly (issue 12, part 2), against the real operator, kubesim and
flysim: a machine that exits soon after every start is started again after 0.5 s, 1 s, 2 s, 2 s
(the backoff, capped), with `StartFailed=True (CrashLoopBackOff)`, `status.crashCount` and
`lastCrashAt`, one Warning Event whose count grows, and the count reset after a stable run."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tests.integration.conftest import FAST, Sandbox

# flysim's `sim-exit-<seconds>`: the process exits that long after each start.
CRASHING = "registry.fly.io/claw:sim-exit-1"
CRASH = replace(
    FAST,
    stopped_threshold=2,
    crash_window=timedelta(seconds=4),
    crash_backoff=timedelta(seconds=0.5),
    crash_backoff_max=timedelta(seconds=2),
)


def _logged(sandbox: Sandbox, action: str, name: str | None = None) -> list[dict[str, Any]]:
    found = []
    for line in sandbox.logs.getvalue().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("action") == action:
            found.append(record)
    return found


def _series(sandbox: Sandbox, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.events(name) if e.get("reason") == reason]


def test_a_crash_loop_backs_off_with_one_growing_event(sandbox: Sandbox) -> None:
    sandbox.start_operator(timings=CRASH)
    sandbox.create("loop", image=CRASHING)

    sandbox.wait(lambda: sandbox.status("loop").get("crashCount", 0) >= 4, 40, "four crashes")
    status = sandbox.status("loop")
    assert status["lastCrashAt"]
    cond = sandbox.condition("loop", "StartFailed")
    assert (cond["status"], cond["reason"]) == ("True", "CrashLoopBackOff")
    assert "in a row" in cond["message"]
    # While it waits for the next start: Ready=False, naming the next attempt.
    ready = sandbox.wait_condition("loop", "Ready", "False", "CrashLoopBackOff", timeout=10)
    assert "next start at" in ready["message"]
    assert sandbox.status("loop")["phase"] == "Stopped"

    # The waits double and are capped: 0.5 s, 1 s, 2 s, 2 s.
    waits = [record["next_start_in"] for record in _logged(sandbox, "crash_loop_back_off")]
    assert waits[:4] == [0.5, 1.0, 2.0, 2.0]
    # Each start after a crash came no sooner than its backoff.
    crashes = [datetime.fromisoformat(r["time"]) for r in _logged(sandbox, "crash_loop_back_off")]
    starts = [datetime.fromisoformat(r["time"]) for r in _logged(sandbox, "start_machine")]
    for crash_at, wait in zip(crashes[:3], waits[:3], strict=True):
        following = [s for s in starts if s > crash_at]
        assert following, "started again after the crash"
        assert following[0] - crash_at >= timedelta(seconds=wait) - timedelta(milliseconds=50)

    # One Event for the whole loop, its count growing (not one Event per crash).
    def grown() -> list[dict[str, Any]] | None:
        series = _series(sandbox, "loop", "CrashLoopBackOff")
        return series if len(series) == 1 and series[0].get("count", 1) >= 3 else None

    (event,) = sandbox.wait(
        grown, 10, lambda: f"one growing series: {_series(sandbox, 'loop', 'CrashLoopBackOff')}"
    )
    assert event["type"] == "Warning"
    # And no Started / Stopped Event per cycle either: the Event count is bounded.
    reasons = sandbox.event_reasons("loop")
    assert reasons.count("Started") <= 1 and reasons.count("Stopped") == 0, reasons
    assert len(reasons) <= 5, reasons


def test_a_stable_run_ends_the_crash_loop(sandbox: Sandbox) -> None:
    sandbox.start_operator(timings=CRASH)
    sandbox.create("mends", image=CRASHING)
    sandbox.wait(lambda: sandbox.status("mends").get("crashCount", 0) >= 2, 30, "two crashes")

    # A fixed image is started at once (a spec change does not wait for the backoff) …
    sandbox.patch("mends", {"spec": {"image": "registry.fly.io/claw:2"}})
    sandbox.wait_phase("mends", "Running", timeout=15)
    cond = sandbox.condition("mends", "StartFailed")
    assert (cond["status"], cond["reason"]) == ("True", "CrashLoopBackOff")
    # … and once it has run past the crash window, the loop is over.
    sandbox.wait_condition("mends", "StartFailed", "False", "Started", timeout=15)
    status = sandbox.status("mends")
    assert status.get("crashCount", 0) == 0 and not status.get("lastCrashAt")
    assert sandbox.condition("mends", "Ready")["status"] == "True"
    assert _logged(sandbox, "crash_loop_reset")
