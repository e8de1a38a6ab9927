"""Record /metrics of the real operator (in-process, against kubesim + flysim) in one situation,
scraped like Prometheus every `--every` seconds, into a fixture the alert tests evaluate
(tests/fixtures/scrapes/<situation>.json, read by test_recorded_scrapes.py).

Some alerts cannot be held by a live test: ClawWatchStale needs a watch that has owed an event
for over five minutes, held for two more. Those situations are recorded here once, at real
speed, and checked into the repository; re-record them when the metrics change:

    PYTHONPATH=operator python -m tests.contract.monitoring.record_scrapes healthy --seconds 240
    PYTHONPATH=operator python -m tests.contract.monitoring.record_scrapes crash_loop --seconds 150
    PYTHONPATH=operator python -m tests.contract.monitoring.record_scrapes watch_stale --seconds 600

A fixture keeps every `claw_*` series the operator exported (as Prometheus names them, with
`_total`, `_bucket`, …; not the `_created` timestamps), one value per scrape (null: not exported
at that scrape), the scrape times as seconds since the first scrape, and when the situation
began (`situation_at`).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from claw_operator.sim.kubesim.watch import WatchStream
from tests.integration.conftest import FAST, Sandbox

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scrapes"
REPO = Path(__file__).resolve().parents[3]

# flysim's `sim-exit-<seconds>`: the process exits that long after each start (as in
# tests/integration/test_crash_loops.py).
CRASHING = "registry.fly.io/claw:sim-exit-1"
CRASH = replace(
    FAST,
    stopped_threshold=2,
    crash_window=timedelta(seconds=4),
    crash_backoff=timedelta(seconds=0.5),
    crash_backoff_max=timedelta(seconds=2),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def series_key(name: str, labels: dict[str, str]) -> str:
    body = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{body}}}" if body else name


class Scraper(threading.Thread):
    """Scrapes /metrics every `every` seconds until stopped; keeps the claw_* samples."""

    def __init__(self, port: int, every: float) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.every = every
        self.times: list[float] = []
        self.scrapes: list[dict[str, float]] = []
        self._halt = threading.Event()

    def scrape(self) -> None:
        text = httpx.get(self.url, timeout=5).text
        now = time.time()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("claw_") and not sample.name.endswith("_created"):
                    samples[series_key(sample.name, sample.labels)] = sample.value
        self.times.append(now)
        self.scrapes.append(samples)

    def run(self) -> None:
        next_at = time.monotonic()
        while not self._halt.is_set():
            self.scrape()
            next_at += self.every
            self._halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _situation_healthy(box: Sandbox, port: int) -> Callable[[], None]:
    """A calm operator with a Ready instance; once recording, a requested restart (the watch
    owes events for a moment and delivers them) and a second instance created."""
    box.start_operator(metrics_port=port)
    box.create("calm")
    box.wait_condition("calm", "Ready", "True")

    def act() -> None:
        box.patch("calm", {"spec": {"restartedAt": "2026-11-24T09:00:00Z"}})
        box.wait_condition("calm", "Restarting", "False", "RestartSucceeded", timeout=30)
        box.create("calm-2")
        box.wait_condition("calm-2", "Ready", "True")

    return act


def _situation_crash_loop(box: Sandbox, port: int) -> Callable[[], None]:
    """An instance whose image exits a second after each start: the operator backs off
    (CrashLoopBackOff Event, StartFailed=True reason CrashLoopBackOff, status.crashCount)."""
    box.start_operator(metrics_port=port, timings=CRASH)

    def act() -> None:
        box.create("loop", image=CRASHING)
        box.wait(lambda: box.status("loop").get("crashCount", 0) >= 3, 60, "three crashes")

    return act


def _situation_watch_stale(box: Sandbox, port: int) -> Callable[[], None]:
    """A Ready instance; then the watch stream stays open but delivers no change (kopf's stalled
    watch), and a requested restart makes the operator write statuses it never hears back."""
    box.start_operator(metrics_port=port)
    box.create("deafened")
    box.wait_condition("deafened", "Ready", "True")

    def act() -> None:
        WatchStream.translate = lambda self, change: None  # type: ignore[method-assign,assignment]
        box.patch("deafened", {"spec": {"restartedAt": "2026-11-24T09:00:00Z"}})
        box.wait_condition("deafened", "Restarting", "False", "RestartSucceeded", timeout=30)

    return act


SITUATIONS: dict[str, Callable[[Sandbox, int], Callable[[], None]]] = {
    "healthy": _situation_healthy,
    "crash_loop": _situation_crash_loop,
    "watch_stale": _situation_watch_stale,
}


def record(situation: str, seconds: float, every: float, lead: float) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        box = Sandbox(Path(workdir))
        box.start()
        try:
            act = SITUATIONS[situation](box, port)
            scraper = Scraper(port, every)
            scraper.start()
            time.sleep(lead)  # some scrapes before the situation begins
            began = time.time()
            act()
            time.sleep(max(0.0, seconds - (time.time() - scraper.times[0])))
            scraper.stop()
        finally:
            box.stop()
    start = scraper.times[0]
    keys = sorted({key for scrape in scraper.scrapes for key in scrape})
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "situation": situation,
        "doc": (SITUATIONS[situation].__doc__ or "").strip(),
        "recorded_at_commit": commit,
        "scrape_interval_seconds": every,
        "situation_at": round(began - start, 3),
        "times": [round(t - start, 3) for t in scraper.times],
        "series": {key: [scrape.get(key) for scrape in scraper.scrapes] for key in keys},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("situation", choices=sorted(SITUATIONS))
    parser.add_argument("--seconds", type=float, default=240, help="how long to record in all")
    parser.add_argument("--every", type=float, default=15, help="scrape interval (Prometheus: 15 s)")
    parser.add_argument("--lead", type=float, default=45, help="seconds scraped before the situation begins")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    fixture = record(args.situation, args.seconds, args.every, args.lead)
    out = args.out or FIXTURES / f"{args.situation}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, indent=1, sort_keys=False) + "\n")
    print(f"{out}: {len(fixture['times'])} scrapes, {len(fixture['series'])} series")


if __name__ == "__main__":
    main()
