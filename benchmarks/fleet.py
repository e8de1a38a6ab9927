"""A fleet of ClawInstances, end to end, measured against what Fly itself allows.

Starts kubesim, flysim (realistic latencies, Fly's rate limits enforced) and the operator as
three separate processes; creates N ClawInstances at once across several namespaces; waits for
all to be Ready; holds a steady state for a few poll intervals; deletes them all and waits for
Fly to be empty. Prints the figures and writes them as JSON to
`benchmarks/results/fleet-N.json`.

    python benchmarks/fleet.py                        # N=200, 4 namespaces, one app each: ~3 min
    python benchmarks/fleet.py --n 1000 --apps 1      # the target size, all in one app (~20 min:
                                                      # Fly's 1 create/s per app is the bound)
    python benchmarks/fleet.py --n 1000 --apps 1000   # one app per instance (KiloClaw's layout)

Definitions
- time-to-Ready of an instance: from the answer to its create (POST) to the first watch event
  showing Ready=True, on this process's clock.
- Fly-intrinsic time of an instance: flysim's own record (`/_sim/timeline`) of its volume
  create → created, plus its machine create → started.
- overhead ratio: time-to-Ready ÷ Fly-intrinsic time.
- Fly calls to reach Ready: every Fly request from the first create to the last Ready, less the
  periodic checks that instances already Ready made meanwhile (estimated from the steady-state
  rate measured afterwards); both figures are reported.
- Kubernetes writes to reach Ready: POST/PUT/PATCH/DELETE requests kubesim served in that
  window (`/_kubesim/stats`), less the benchmark's own creates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

import memprofile
import plots
from claw_operator.lifecycle.model import Timings
from processes import REPO, RESULTS, free_port, sample, simulators, spawn, stop
from profiling import Profiler

GROUP, VERSION, PLURAL = "claw.dev", "v1alpha1", "clawinstances"
REGIONS = ("iad", "ord", "ams", "fra")
FLY_TOKEN = "bench-token"
MIN_CALLS = 3  # create volume, create machine, one wait
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")
# flysim's limits (Fly's documented ones): app-level actions such as create are 1/s, burst 3.
FLY_APP_ACTION_RATE, FLY_APP_ACTION_BURST = 1.0, 3
DEFAULT_APPS = 4
MACHINE_ROUTE = "/v1/apps/{app}/machines/{id}"  # one periodic check = one GET of it
TEXTBOOK = REPO / "benchmarks" / "textbook_operator.py"
SMOKE_N = 30


# ------------------------------------------------------------------------------- the clients


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Tracker:
    """What the watch saw: per instance, the create answer and the first Ready=True."""

    created: dict[str, float] = field(default_factory=dict)  # ns/name -> time
    ready: dict[str, float] = field(default_factory=dict)
    # The same moments on the wall clock (flysim's timelines are in epoch seconds).
    created_epoch: dict[str, float] = field(default_factory=dict)
    ready_epoch: dict[str, float] = field(default_factory=dict)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    # MODIFIED events per instance (a restart must not write what did not change).
    modified: Counter[str] = field(default_factory=Counter)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def observe(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata", {})
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if kind == "DELETED":
            self.present.discard(key)
        else:
            if kind == "MODIFIED":
                self.modified[key] += 1
            self.present.add(key)
            status = obj.get("status") or {}
            self.status[key] = status
            conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
            if conditions.get("Ready") == "True" and key not in self.ready:
                self.ready[key] = time.monotonic()
                self.ready_epoch[key] = time.time()
        self.changed.set()


class Bench:
    def __init__(self, kube_url: str, fly_url: str, session: aiohttp.ClientSession) -> None:
        self.kube_url, self.fly_url, self.session = kube_url, fly_url, session
        self.kube_headers = {"Authorization": "Bearer kubesim", "Content-Type": "application/json"}
        self.fly_headers = {"Authorization": f"Bearer {FLY_TOKEN}"}

    async def kube(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(
            method, self.kube_url + path, headers=self.kube_headers, data=json.dumps(body) if body else None
        ) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text.startswith("{") else text)

    async def fly(self, path: str, **params: str) -> Any:
        async with self.session.get(self.fly_url + path, headers=self.fly_headers, params=params) as response:
            response.raise_for_status()
            return await response.json()

    async def kube_stats(self) -> Counter[tuple[str, str]]:
        _, body = await self.kube("GET", "/_kubesim/stats")
        return Counter({(r["verb"], r["route"]): r["count"] for r in body["requests"]})

    async def fly_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self.fly("/_sim/stats")
        return stats

    async def watch(self, tracker: Tracker) -> None:
        path = f"/apis/{GROUP}/{VERSION}/{PLURAL}"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            async with self.session.get(
                self.kube_url + path,
                headers=self.kube_headers,
                params={"watch": "true", "timeoutSeconds": "3600"},
                timeout=timeout,
            ) as response:
                async for line in response.content:
                    if line.strip():
                        event = json.loads(line)
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            tracker.observe(event["type"], event["object"])


def fly_counts(stats: dict[str, Any]) -> Counter[str]:
    """Requests per endpoint, whatever their status (flysim reports one row per status)."""
    counts: Counter[str] = Counter()
    for row in stats["requests"]:
        if row["route"].startswith("/v1/"):
            counts[f"{row['method']} {row['route']}"] += row["count"]
    return counts


def fly_429s(stats: dict[str, Any]) -> int:
    return sum(r["count"] for r in stats["requests"] if r["status"] == 429)


def writes(before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]) -> Counter[str]:
    delta: Counter[str] = Counter()
    for (verb, route), count in after.items():
        if verb in WRITE_VERBS and count - before.get((verb, route), 0) > 0:
            delta[f"{verb} {route}"] = count - before.get((verb, route), 0)
    return delta


def manifest(index: int, namespace: str, app: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "region": REGIONS[index % len(REGIONS)],
        "image": "registry.fly.io/claw:bench",
        "guest": {"cpuKind": "shared", "cpus": 1, "memoryMB": 1024},
        "volume": {"sizeGB": 1},
        "env": {"INSTANCE": str(index)},
    }
    if app is not None:
        spec["app"] = app
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClawInstance",
        "metadata": {"name": f"claw-{index:05d}", "namespace": namespace},
        "spec": spec,
    }


# ------------------------------------------------------------------------------- the run


async def wait_until(
    predicate: Any, timeout: float, tracker: Tracker | None = None, every: float = 0.5
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        if tracker is not None:
            tracker.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tracker.changed.wait(), every)
        else:
            await asyncio.sleep(every)
    return bool(await predicate())


SCENARIOS = ("burst", "steady", "restart", "delete")


def operator_command(
    args: argparse.Namespace, kubeconfig: Path, fly_url: str
) -> tuple[list[str], Path | None]:
    """The operator's command line (claw-operator, or the textbook kopf operator) and its script."""
    poll = args.poll
    if args.operator == "textbook":
        return (
            [
                "--kubeconfig",
                str(kubeconfig),
                "--fly-api-url",
                fly_url,
                "--default-app",
                "bench",
                "--poll",
                str(poll),
            ],
            TEXTBOOK,
        )
    cadences = [
        "--poll-starting",
        str(poll),
        "--poll-running",
        str(poll),
        "--poll-destroying",
        str(max(1.0, poll / 2)),
        "--poll-idle",
        str(poll),
        "--poll-jitter",
        str(args.jitter),
    ]
    return (
        [
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--fly-api-url",
            fly_url,
            "--default-app",
            "bench",
            "--metrics-port",
            str(free_port()),
            # `--default-cadences`: the operator's own poll intervals (`Timings`), no flag.
            *([] if args.default_cadences else cadences),
            "--fly-wait-timeout",
            "30",
            "--starting-timeout",
            str(max(300.0, 5.0 * args.n)),
        ],
        None,
    )


class Operator:
    """The operator process under test: started, restarted, sampled, profiled."""

    def __init__(self, args: argparse.Namespace, kubeconfig: Path, fly_url: str, log: Path) -> None:
        self.command, self.script = operator_command(args, kubeconfig, fly_url)
        self.log = log
        # `--tracemalloc DIR`: the operator traces its allocations and dumps them on SIGUSR2.
        self.tracemalloc: Path | None = args.tracemalloc if args.operator == "claw" else None
        self.dumps = 0
        self.process = self._spawn()
        self.profiler: Profiler | None = None
        if args.profile:
            self.profiler = Profiler(self.process.pid, args.profile)

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {"FLY_API_TOKEN": FLY_TOKEN}
        if self.tracemalloc is not None:
            self.tracemalloc.mkdir(parents=True, exist_ok=True)
            env["CLAW_OPERATOR_TRACEMALLOC"] = str(self.tracemalloc / "operator")
        self.dumps = 0
        return spawn(self.command, self.log, env=env, script=self.script)

    async def dump_memory(self, label: str) -> Path | None:
        """`--tracemalloc`: have the operator dump its allocations (`kube/memtrace.py`), wait for
        the dump, and keep it as `DIR/LABEL.snapshot` / `.txt`."""
        if self.tracemalloc is None:
            return None
        self.dumps += 1
        stem = self.tracemalloc / f"operator.{self.pid}.{self.dumps}"
        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 600
        while not Path(f"{stem}.txt").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no tracemalloc dump {stem}.txt")
            await asyncio.sleep(0.5)
        for suffix in (".snapshot", ".txt"):
            Path(f"{stem}{suffix}").replace(self.tracemalloc / f"{label}{suffix}")
        return self.tracemalloc / f"{label}.snapshot"

    @property
    def pid(self) -> int:
        return self.process.pid

    def restart(self) -> None:
        """SIGTERM (a rolling update's way), then a new process with the same command line."""
        stop(self.process)
        self.process = self._spawn()

    def profile(self, phase: str) -> None:
        if self.profiler is not None:
            self.profiler.start(phase, self.process.pid)

    def end_profile(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    flysim_args = ["--profile", "realistic", "--rate-limit", "--seed", str(args.seed)]
    async with simulators(workdir, flysim_args) as sims:
        operator = Operator(args, sims.kubeconfig, sims.fly_url, workdir / "operator.log")
        try:
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=120)
            ) as session:
                return await measure(args, Bench(sims.kube_url, sims.fly_url, session), operator)
        finally:
            operator.end_profile()
            stop(operator.process)


def keeping_up(
    args: argparse.Namespace,
    tracker: Tracker,
    checked: dict[str, list[float]],
    window: float,
    interval: float,
) -> dict[str, Any]:
    """Whether the periodic checks kept their cadence over the steady window: the intervals
    between two checks of one machine (seen every `--reads-every` seconds, so up to that much
    longer) against the longest the cadence allows (poll + jitter), and the instances never
    checked in a window longer than that."""
    bound = args.poll + args.jitter
    machines = {status.get("machineId") for status in tracker.status.values()} - {None}
    gaps = [b - a for times in checked.values() for a, b in itertools.pairwise(times)]
    late = [max(0.0, gap - bound) for gap in gaps]
    unchecked = len(machines - set(checked)) if window >= bound + args.reads_every else None
    return {
        "steady_window_s": round(window, 1),
        "steady_longest_allowed_interval_s": bound,
        "steady_check_interval_s": {
            "p50": round(percentile(gaps, 0.5), 1),
            "p99": round(percentile(gaps, 0.99), 1),
            "max": round(max(gaps), 1) if gaps else None,
        },
        # How much later than the cadence allows a check came (0 when on time).
        "steady_check_lag_s": {
            "p99": round(percentile(late, 0.99), 1),
            "max": round(max(late), 1) if late else None,
        },
        "steady_instances_not_checked": unchecked,
        "steady_checks_observed_per_instance_per_interval": round(
            sum(len(t) for t in checked.values()) / max(1, len(machines)) / (window / interval), 3
        ),
    }


def cpu_between(before: Any, after: Any) -> float:
    return max(0.0, after.cpu_seconds - before.cpu_seconds)


async def measure(args: argparse.Namespace, bench: Bench, operator: Operator) -> dict[str, Any]:
    n, poll = args.n, args.poll
    scenarios = (
        set(SCENARIOS)
        if args.scenario == "all"
        else {"burst", "steady", "delete"}
        if args.scenario == "scale"
        else {"burst", args.scenario}
    )
    interval = poll + args.jitter / 2  # the mean time between two periodic checks
    namespaces = [f"fleet-{i}" for i in range(args.namespaces)]
    for namespace in namespaces:
        await bench.kube("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})

    async def operator_watching() -> bool:
        stats = await bench.kube_stats()
        return any(verb == "WATCH" and PLURAL in route for verb, route in stats)

    if not await wait_until(operator_watching, 120 if args.tracemalloc else 30):
        raise RuntimeError("the operator never started watching ClawInstances")
    await asyncio.sleep(args.warmup)
    tracker = Tracker()
    watcher = asyncio.create_task(bench.watch(tracker))
    peak = {"rss": 0.0}

    process_series: list[tuple[float, float, float]] = []  # (monotonic t, CPU seconds, RSS MiB)
    # CPU seconds of operator processes that have exited (a restart), so the series stays cumulative.
    retired = {"cpu": 0.0}

    async def sampler() -> None:
        while True:
            with contextlib.suppress(OSError, ValueError):
                now = sample(operator.pid)
                peak["rss"] = max(peak["rss"], now.rss_mib)
                process_series.append((time.monotonic(), retired["cpu"] + now.cpu_seconds, now.rss_mib))
            await asyncio.sleep(0.5)

    sampling = asyncio.create_task(sampler())
    memory_base = await operator.dump_memory("empty")
    empty = sample(operator.pid)
    kube_before, fly_before = await bench.kube_stats(), await bench.fly_stats()
    apps = [f"fleet-app-{i}" for i in range(args.apps)] if args.apps > 1 else [None]
    result: dict[str, Any] = {
        "operator": args.operator,
        "commit": commit(),
        "scenario": args.scenario,
        "n": n,
        "namespaces": len(namespaces),
        "apps": len(apps),
        "poll_interval_s": poll,
        "poll_jitter_s": args.jitter,
        "warmup_s": args.warmup,
    }
    phases: list[list[Any]] = []
    calls_by_phase: dict[str, dict[str, float]] = {}

    # ---- burst: create N at once
    print(f"creating {n} ClawInstances in {len(namespaces)} namespaces, {len(apps)} app(s) …", flush=True)
    gate = asyncio.Semaphore(64)
    operator.profile("ramp")
    cpu_created = sample(operator.pid)
    started = time.monotonic()

    async def create(index: int) -> None:
        namespace = namespaces[index % len(namespaces)]
        body = manifest(index, namespace, apps[index % len(apps)])
        async with gate:
            status, answer = await bench.kube(
                "POST", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", body
            )
        if status != 201:
            raise RuntimeError(f"create failed: {status} {answer}")
        tracker.created[f"{namespace}/{body['metadata']['name']}"] = time.monotonic()
        tracker.created_epoch[f"{namespace}/{body['metadata']['name']}"] = time.time()

    # `--waves K`: K waves of N/K creates, each once the previous one is Ready (plus
    # `--wave-gap`); one wave (the default) is the burst of N at once.
    bounds = [round(w * n / args.waves) for w in range(args.waves + 1)]
    waves: list[dict[str, Any]] = []
    last_report = time.monotonic()
    for wave, (first, end) in enumerate(itertools.pairwise(bounds)):
        if wave and args.wave_gap:
            await asyncio.sleep(args.wave_gap)
        wave_from = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(first, end)))
        created_in = time.monotonic() - wave_from
        label = f"wave {wave + 1}/{args.waves}: " if args.waves > 1 else ""
        print(f"  {label}{end - first} created in {created_in:.1f}s; waiting for Ready …", flush=True)

        async def all_ready(end: int = end) -> bool:
            return len(tracker.ready) >= end

        budget = args.ready_timeout or (300 + 3.0 * -(-(end - first) // len(apps)))

        async def ready_with_progress(end: int = end) -> bool:
            nonlocal last_report
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                print(
                    f"  … {len(tracker.ready)}/{end} Ready after {time.monotonic() - started:.0f}s",
                    flush=True,
                )
            return await all_ready()

        if not await wait_until(ready_with_progress, budget, tracker):
            raise RuntimeError(f"only {len(tracker.ready)}/{end} Ready after {budget:.0f}s")
        wave_sample = sample(operator.pid)
        waves.append(
            {
                "instances": end,
                "created_s": round(created_in, 2),
                "to_all_ready_s": round(time.monotonic() - wave_from, 2),
                "operator_rss_mib": round(wave_sample.rss_mib, 1),
                "operator_cpu_s": round(cpu_between(cpu_created, wave_sample), 2),
            }
        )
        if args.waves > 1:
            print(
                f"  {label}Ready in {waves[-1]['to_all_ready_s']}s, RSS {wave_sample.rss_mib:.0f} MiB",
                flush=True,
            )
    if args.waves > 1:
        result["waves"] = waves
    created_in = sum(w["created_s"] for w in waves)
    all_ready_at = time.monotonic()
    ready_sample = sample(operator.pid)
    operator.end_profile()
    kube_ready, fly_ready = await bench.kube_stats(), await bench.fly_stats()
    time_to_all_ready = all_ready_at - started
    ramp_cpu = cpu_between(cpu_created, ready_sample)
    print(f"  all Ready in {time_to_all_ready:.1f}s, operator CPU {ramp_cpu:.1f}s", flush=True)
    phases.append(["ramp to Ready", 0.0, round(time_to_all_ready, 2)])

    # ---- Fly-intrinsic times (flysim's own timelines)
    gate_fly = asyncio.Semaphore(32)
    intrinsic: dict[str, float] = {}
    # Where the operator's share of each instance's time goes: before its volume create lands,
    # between the volume and the machine create, and from `started` to Ready being visible.
    lead: list[float] = []
    gap: list[float] = []
    tail: list[float] = []

    async def intrinsic_of(key: str) -> None:
        status = tracker.status[key]
        async with gate_fly:
            machine = await bench.fly("/_sim/timeline", machine=status["machineId"])
            volume = await bench.fly("/_sim/timeline", volume=status["volumeId"])
        started = next(step for step in machine if step["state"] == "started")
        created = next(step for step in volume if step["state"] == "created")
        intrinsic[key] = created["elapsed"] + started["elapsed"]
        lead.append(created["time"] - created["elapsed"] - tracker.created_epoch[key])
        gap.append(machine[0]["time"] - machine[0]["elapsed"] - created["time"])
        tail.append(tracker.ready_epoch[key] - started["time"])

    await asyncio.gather(*(intrinsic_of(key) for key in tracker.created))
    ttr = {key: tracker.ready[key] - tracker.created[key] for key in tracker.created}
    overhead = [ttr[key] / intrinsic[key] for key in tracker.created]
    intrinsic_values = list(intrinsic.values())
    ttr_values = list(ttr.values())
    per_app = -(-n // len(apps))
    rate_bound = max(0.0, (per_app - FLY_APP_ACTION_BURST) / FLY_APP_ACTION_RATE)
    kube_writes = writes(kube_before, kube_ready)
    own_creates = f"POST /apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}"
    kube_writes[own_creates] -= n
    kube_writes = +kube_writes
    ramp_calls = fly_counts(fly_ready) - fly_counts(fly_before)
    result.update(
        {
            "create_requests_s": round(created_in, 2),
            "time_to_all_ready_s": round(time_to_all_ready, 2),
            "time_to_ready_s": {
                "p50": round(percentile(ttr_values, 0.5), 2),
                "p99": round(percentile(ttr_values, 0.99), 2),
            },
            "fly_intrinsic_s": {
                "p50": round(percentile(intrinsic_values, 0.5), 2),
                "p99": round(percentile(intrinsic_values, 0.99), 2),
            },
            "operator_share_s": {
                name: {"p50": round(percentile(values, 0.5), 2), "p99": round(percentile(values, 0.99), 2)}
                for name, values in (
                    ("create_to_volume_create", lead),
                    ("volume_to_machine_create", gap),
                    ("started_to_ready_seen", tail),
                )
            },
            "overhead_ratio": {
                "p50": round(percentile(overhead, 0.5), 2),
                "p99": round(percentile(overhead, 0.99), 2),
            },
            "fly_create_rate_bound_s": round(rate_bound, 1),
            "operator_cpu_s_to_all_ready": round(ramp_cpu, 2),
            "operator_cpu_s_per_instance_to_ready": round(ramp_cpu / n, 4),
            "kube_writes_per_instance_to_ready": round(sum(kube_writes.values()) / n, 2),
            "kube_writes_to_ready_by_route": {k: round(v / n, 2) for k, v in sorted(kube_writes.items())},
            "fly_calls_per_instance_to_ready_raw": round(sum(ramp_calls.values()) / n, 2),
        }
    )

    # ---- steady state
    steady_calls: Counter[str] = Counter()
    steady_seconds = 0.0
    if scenarios & {"steady", "restart", "delete"}:
        # The ramp's calls less the periodic checks need the steady rate: measured whenever the
        # run goes on (a few intervals), not only in the steady scenario.
        polls = args.steady_polls if "steady" in scenarios else 1
        print(f"  steady state for {polls} poll intervals of ~{interval:.1f}s …", flush=True)
        operator.profile("steady")
        cpu_start, fly_start, kube_start = (
            sample(operator.pid),
            await bench.fly_stats(),
            await bench.kube_stats(),
        )
        steady_from = time.monotonic()
        rss_from = sample(operator.pid).rss_mib
        # Each instance's checks, as flysim counts GETs of its machine, seen every few seconds:
        # the intervals between them say whether the operator keeps up with its cadence.
        checked: dict[str, list[float]] = {}
        reads_before = (await bench.fly("/_sim/reads"))["machines"]
        while time.monotonic() - steady_from < polls * interval:
            await asyncio.sleep(
                min(args.reads_every, max(0.0, polls * interval - (time.monotonic() - steady_from)))
            )
            reads = (await bench.fly("/_sim/reads"))["machines"]
            now = time.monotonic() - steady_from
            for machine_id, count in reads.items():
                if count > reads_before.get(machine_id, 0):
                    checked.setdefault(machine_id, []).append(now)
            reads_before = reads
        steady_seconds = time.monotonic() - steady_from
        cpu_end, fly_end, kube_end = sample(operator.pid), await bench.fly_stats(), await bench.kube_stats()
        result.update(keeping_up(args, tracker, checked, steady_seconds, interval))
        result["steady_rss_growth_mib"] = round(cpu_end.rss_mib - rss_from, 1)
        print(
            f"  steady: RSS {cpu_end.rss_mib:.0f} MiB (peak {cpu_end.peak_rss_mib:.0f}), check interval "
            f"{result['steady_check_interval_s']}, lag {result['steady_check_lag_s']}, "
            f"not checked {result['steady_instances_not_checked']}",
            flush=True,
        )
        operator.end_profile()
        steady_calls = fly_counts(fly_end) - fly_counts(fly_start)
        checks = steady_calls.get(f"GET {MACHINE_ROUTE}", 0)
        steady_cpu = cpu_between(cpu_start, cpu_end)
        phases.append(
            ["steady", round(steady_from - started, 2), round(steady_from - started + steady_seconds, 2)]
        )
        calls_by_phase["steady (per interval)"] = {
            k: round(v / n / (steady_seconds / interval), 3) for k, v in sorted(steady_calls.items())
        }
        result.update(
            {
                "steady_fly_calls_per_instance_per_interval": round(
                    sum(steady_calls.values()) / n / (steady_seconds / interval), 3
                ),
                "steady_fly_calls_by_endpoint": dict(sorted(steady_calls.items())),
                "steady_checks": checks,
                "steady_kube_writes": sum(writes(kube_start, kube_end).values()),
                # Reads (watches excluded): an idle check decides on the watched object (0).
                "steady_kube_reads": sum(
                    count - kube_start.get((verb, route), 0)
                    for (verb, route), count in kube_end.items()
                    if verb == "GET"
                ),
                "operator_idle_cpu_percent": round(100.0 * steady_cpu / steady_seconds, 1),
                "operator_cpu_ms_per_check": round(1000.0 * steady_cpu / checks, 3) if checks else None,
            }
        )
        # ---- Fly calls to reach Ready (less the periodic checks of instances already Ready)
        ready_instance_seconds = sum(all_ready_at - at for at in tracker.ready.values())
        per_second = {route: count / n / steady_seconds for route, count in steady_calls.items()}
        adjusted: Counter[str] = Counter()
        for route, count in ramp_calls.items():
            adjusted[route] = max(0, round(count - per_second.get(route, 0.0) * ready_instance_seconds))
        calls = sum(adjusted.values()) / n
        calls_by_phase = {
            "ramp to Ready": {k: round(v / n, 3) for k, v in sorted(adjusted.items()) if v},
            **calls_by_phase,
        }
        result.update(
            {
                "fly_calls_per_instance_to_ready": round(calls, 2),
                "fly_calls_ratio_to_minimum": round(calls / MIN_CALLS, 2),
                "fly_calls_to_ready_by_endpoint": {
                    k: round(v / n, 2) for k, v in sorted(adjusted.items()) if v
                },
            }
        )
    memory_ready = await operator.dump_memory("ready")
    if memory_base is not None and memory_ready is not None:
        summary = memprofile.summarise(memory_ready, memory_base, n, 25)
        (memory_ready.parent / "summary.txt").write_text(summary + "\n")
        print(summary, flush=True)
    result.update(
        {
            "operator_rss_empty_mib": round(empty.rss_mib, 1),
            "operator_rss_all_ready_mib": round(ready_sample.rss_mib, 1),
            "operator_rss_per_instance_kib": round(1024 * (ready_sample.rss_mib - empty.rss_mib) / n, 1),
        }
    )

    # ---- restart: the operator restarted with the whole fleet Ready
    if "restart" in scenarios:
        print("  restarting the operator …", flush=True)
        machine_ids = {tracker.status[key]["machineId"] for key in tracker.created}
        kube_from, fly_from = await bench.kube_stats(), await bench.fly_stats()
        reads_from = (await bench.fly("/_sim/reads"))["machines"]
        modified_before = dict(tracker.modified)
        last = sample(operator.pid)
        retired["cpu"] += last.cpu_seconds
        restart_from = time.monotonic()
        operator.restart()
        operator.profile("restart")
        checked_at: dict[str, float] = {}
        window = args.restart_window
        while time.monotonic() - restart_from < window:
            reads = (await bench.fly("/_sim/reads"))["machines"]
            now = time.monotonic() - restart_from
            for machine_id in machine_ids:
                if machine_id not in checked_at and reads.get(machine_id, 0) > reads_from.get(machine_id, 0):
                    checked_at[machine_id] = now
            if len(checked_at) == len(machine_ids):
                break
            await asyncio.sleep(0.5)
        # What the new process does in its first `window` seconds, whatever it finished sooner.
        await asyncio.sleep(max(0.0, window - (time.monotonic() - restart_from)))
        restart_cpu = sample(operator.pid).cpu_seconds
        operator.end_profile()
        kube_to, fly_to = await bench.kube_stats(), await bench.fly_stats()
        restart_calls = fly_counts(fly_to) - fly_counts(fly_from)
        restart_writes = writes(kube_from, kube_to)
        modified = [key for key, count in tracker.modified.items() if count > modified_before.get(key, 0)]
        phases.append(["restart", round(restart_from - started, 2), round(time.monotonic() - started, 2)])
        calls_by_phase["restart"] = {k: round(v / n, 3) for k, v in sorted(restart_calls.items())}
        result.update(
            {
                "restart_window_s": window,
                "restart_all_checked": len(checked_at) == len(machine_ids),
                "restart_checked": len(checked_at),
                "restart_time_to_all_checked_s": round(max(checked_at.values()), 2)
                if len(checked_at) == len(machine_ids)
                else None,
                "restart_checked_p50_s": round(percentile(list(checked_at.values()), 0.5), 2),
                "restart_fly_calls_per_instance": round(sum(restart_calls.values()) / n, 3),
                # The first check of each instance after the restart (its later periodic checks
                # within the window, one GET machine each, left out): the restart's own cost.
                "restart_fly_calls_per_instance_first_check": round(
                    (
                        sum(restart_calls.values())
                        - max(0, restart_calls.get(f"GET {MACHINE_ROUTE}", 0) - len(checked_at))
                    )
                    / n,
                    3,
                ),
                "restart_fly_calls_by_endpoint": dict(sorted(restart_calls.items())),
                "restart_kube_writes": sum(restart_writes.values()),
                "restart_kube_writes_by_route": dict(sorted(restart_writes.items())),
                "restart_instances_modified": len(modified),
                "restart_operator_cpu_s": round(restart_cpu, 2),
                "restart_operator_cpu_ms_per_instance": round(1000.0 * restart_cpu / n, 3),
            }
        )

    # ---- delete all, wait for Fly to be empty
    if "delete" in scenarios:
        print("  deleting all …", flush=True)
        operator.profile("delete")
        fly_delete_from = await bench.fly_stats()
        cpu_delete = sample(operator.pid)
        delete_from = time.monotonic()

        async def delete(key: str) -> None:
            namespace, name = key.split("/")
            async with gate:
                await bench.kube("DELETE", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}")

        await asyncio.gather(*(delete(key) for key in tracker.created))
        live_volume_states = ("created", "creating", "hydrating", "restoring", "extending")

        async def fly_empty() -> bool:
            stats = await bench.fly_stats()
            machines = sum(c for s, c in stats["machines"].items() if s not in ("destroyed", "destroying"))
            volumes = sum(c for s, c in stats["volumes"].items() if s in live_volume_states)
            return machines == 0 and volumes == 0 and not tracker.present

        emptied = await wait_until(
            fly_empty,
            # At the default cadences a destroy is polled every 60 s: the larger fleet needs more.
            args.delete_timeout or (120 + 2.0 * n / len(apps) + (0.1 * n if args.default_cadences else 0.0)),
            tracker,
            1.0,
        )
        time_to_empty = time.monotonic() - delete_from
        operator.end_profile()
        delete_cpu = cpu_between(cpu_delete, sample(operator.pid))
        final = await bench.fly_stats()
        delete_calls = fly_counts(final) - fly_counts(fly_delete_from)
        phases.append(["delete", round(delete_from - started, 2), round(time.monotonic() - started, 2)])
        calls_by_phase["delete"] = {k: round(v / n, 3) for k, v in sorted(delete_calls.items())}
        result.update(
            {
                "delete_time_to_empty_s": round(time_to_empty, 2),
                "delete_completed": emptied,
                "delete_operator_cpu_s": round(delete_cpu, 2),
                "fly_calls_per_instance_to_delete": round(sum(delete_calls.values()) / n, 2),
                "fly_calls_to_delete_by_endpoint": {
                    k: round(v / n, 2) for k, v in sorted(delete_calls.items())
                },
                "leaked_fly_machines": sum(
                    c for s, c in final["machines"].items() if s not in ("destroyed", "destroying")
                ),
                "leaked_fly_volumes": sum(c for s, c in final["volumes"].items() if s in live_volume_states),
                "leaked_crs": len(tracker.present),
            }
        )
    final = await bench.fly_stats()
    final_sample = sample(operator.pid)
    sampling.cancel()
    watcher.cancel()
    result.update(
        {
            "operator_peak_rss_mib": round(max(peak["rss"], final_sample.peak_rss_mib), 1),
            "fly_429s": fly_429s(final),
            "fly_rate_limited_total": final["rate_limited"],
        }
    )
    if operator.profiler is not None:
        result["profile"] = operator.profiler.summaries
    result["series"] = {
        "n": n,
        "time_to_ready_s": [round(v, 3) for v in ttr_values],
        "fly_intrinsic_s": [round(v, 3) for v in intrinsic_values],
        "ready_at_s": sorted(round(at - started, 3) for at in tracker.ready.values()),
        "phases": phases,
        "fly_calls_by_phase": calls_by_phase,
        "process": [
            [round(t - started, 2), round(cpu, 1), round(rss, 1)]
            for t, cpu, rss in plots.cpu_percent(process_series)
        ],
    }
    return result


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{'+dirty' if dirty else ''}"


def rss_slope(result: dict[str, Any]) -> dict[str, Any] | None:
    """RSS per instance from two fleet sizes: this run and the nearest other saved run."""
    others = []
    for path in RESULTS.glob("fleet-*.json"):
        try:
            other = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if other.get("n") not in (None, result["n"]) and "operator_rss_all_ready_mib" in other:
            others.append(other)
    if not others:
        return None
    other = min(others, key=lambda o: abs(o["n"] - result["n"]))
    slope = (result["operator_rss_all_ready_mib"] - other["operator_rss_all_ready_mib"]) / (
        result["n"] - other["n"]
    )
    return {"other_n": other["n"], "kib_per_instance": round(1024 * slope, 1)}


def report(result: dict[str, Any]) -> None:
    for key, value in result.items():
        if key not in ("series", "profile"):
            print(f"{key:45s} {json.dumps(value)}")
    for phase, summary in result.get("profile", {}).items():
        print(f"profile of the {phase} ({summary['samples']} samples), self time by package:")
        print(
            "   " + ", ".join(f"{name} {share}%" for name, share in summary["self_by_package_percent"][:12])
        )
        print("  top frames (inclusive):")
        for name, share in summary["top_inclusive_percent"][:12]:
            print(f"    {share:5.1f}%  {name}")


def smoke(args: argparse.Namespace) -> int:
    args.n, args.apps, args.namespaces, args.scenario = SMOKE_N, SMOKE_N, 2, "steady"
    args.poll, args.jitter, args.steady_polls = 2.0, 0.5, 4
    # The operator must be older than `BORN_WATCHED_MARGIN` (10 s) for a new instance to cost only
    # its creates, as in production.
    args.warmup = 10.5
    with tempfile.TemporaryDirectory(prefix="fleet-smoke-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    print(
        f"smoke figure ({result['commit']}, N={SMOKE_N}, one app each, poll 2 s): operator CPU "
        f"{1000 * result['operator_cpu_s_per_instance_to_ready']:.1f} ms per instance to Ready, "
        f"{result['operator_cpu_ms_per_check']} ms per periodic check "
        f"({result['steady_fly_calls_per_instance_per_interval']} Fly calls per instance per interval; "
        f"all Ready in {result['time_to_all_ready_s']} s)"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="ClawInstances to create at once")
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument(
        "--apps",
        type=int,
        default=DEFAULT_APPS,
        help="Fly apps to spread them over (default: one per namespace; 1: all in the operator's "
        "default app, where Fly's 1 create/s per app bounds the time to all Ready)",
    )
    parser.add_argument("--poll", type=float, default=8.0, help="the operator's poll interval (seconds)")
    parser.add_argument("--jitter", type=float, default=1.0, help="the operator's poll jitter (seconds)")
    parser.add_argument("--steady-polls", type=int, default=3, help="poll intervals of steady state")
    parser.add_argument("--ready-timeout", type=float, default=0, help="seconds (0: from N)")
    parser.add_argument("--delete-timeout", type=float, default=0, help="seconds (0: from N)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=12.0,
        help="seconds the operator runs before the fleet is created (an operator already running; "
        "within its first 10 s it looks for Fly objects a previous operator may have left)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scenario",
        choices=[*SCENARIOS, "all", "scale"],
        default="all",
        help="burst: create N, wait for all Ready; steady: then hold a few poll intervals; restart: "
        "then restart the operator with all Ready; delete: then delete all, wait for Fly to be empty "
        "(each one runs the burst first); all: every one in turn; scale: issue 13's N = 10,000 run: "
        "the operator's default cadences, created in --waves (10 unless given), steady state for "
        "--steady-polls intervals (2 unless given), then the delete",
    )
    parser.add_argument(
        "--waves",
        type=int,
        help="create the N instances in this many waves, each once the previous one is all Ready "
        "(default 1: all at once; 10 for --scenario scale)",
    )
    parser.add_argument("--wave-gap", type=float, default=0.0, help="seconds between two waves")
    parser.add_argument(
        "--default-cadences",
        action="store_true",
        help="run the operator with its own default poll intervals (Running 300 s + jitter 60 s) "
        "instead of --poll/--jitter (implied by --scenario scale)",
    )
    parser.add_argument(
        "--reads-every",
        type=float,
        default=5.0,
        help="steady state: seconds between two looks at flysim's GETs per machine (the check "
        "intervals and lag are measured to this resolution)",
    )
    parser.add_argument(
        "--operator",
        choices=["claw", "textbook"],
        default="claw",
        help="the operator under test: claw-operator, or benchmarks/textbook_operator.py (the textbook "
        "kopf operator the issue compares with)",
    )
    parser.add_argument(
        "--restart-window",
        type=float,
        default=30.0,
        help="restart: seconds within which every instance must be checked again",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the operator into this directory, one recording per phase"
    )
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        help="run the operator under tracemalloc (slower) and keep its allocations before the fleet "
        "(DIR/empty.snapshot) and after the steady state (DIR/ready.snapshot); summarised at the end "
        "(benchmarks/memprofile.py). RSS figures of such a run include tracemalloc's own memory",
    )
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/fleet-N.json)")
    parser.add_argument("--keep-logs", type=Path, help="copy the three processes' logs into this directory")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the figure `make test` prints: a small fleet (30 instances, 30 apps, poll 2 s), burst then "
        "steady, one line of operator CPU per instance to Ready and per periodic check; no JSON, no "
        "picture (a figure to watch, never asserted)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="R > 1: R operator processes with --shards auto share the fleet; prints per-replica load "
        "and handover figures (kill -9, rolling restart) instead of the scenarios (benchmarks/replicas.py)",
    )
    parser.add_argument("--lease", type=float, default=15.0, help="--replicas: the shard lease duration (s)")
    parser.add_argument("--renew-deadline", type=float, default=10.0, help="--replicas: renew deadline (s)")
    parser.add_argument("--retry-period", type=float, default=2.0, help="--replicas: retry period (s)")
    parser.add_argument(
        "--client-side",
        action="store_true",
        help="--replicas: kubesim ignores shardSelector (a 1.28-1.35 apiserver): replicas filter themselves",
    )
    args = parser.parse_args()
    if args.scenario == "scale":
        args.default_cadences = True
        args.waves = args.waves or 10
        if "--steady-polls" not in sys.argv:
            args.steady_polls = 2
    args.waves = max(1, args.waves or 1)
    if args.default_cadences:
        # The interval the figures divide by: the operator's own Running cadence and jitter.
        defaults = Timings()
        args.poll = defaults.poll_running.total_seconds()
        args.jitter = defaults.poll_jitter.total_seconds()
    if args.smoke:
        return smoke(args)
    if args.replicas > 1:
        import replicas

        return replicas.main(args)
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        workdir = Path(tmp)
        try:
            result = asyncio.run(run(args, workdir))
        finally:
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in workdir.glob("*.log"):
                    (args.keep_logs / log.name).write_bytes(log.read_bytes())
    slope = rss_slope(result)
    if slope is not None:
        result["operator_rss_slope_between_runs"] = slope
    report(result)
    layout = "" if args.apps == DEFAULT_APPS else f"-apps{args.apps}"
    if args.scenario != "all":
        layout += f"-{args.scenario}"
    if args.operator != "claw":
        layout += f"-{args.operator}"
    output = args.output or RESULTS / f"fleet-{args.n}{layout}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output.relative_to(REPO) if output.is_relative_to(REPO) else output}")
    picture = plots.draw_run(
        plots.timeline_from_series(
            f"fleet: {args.n} ClawInstances, {result['apps']} Fly app(s), flysim realistic, Fly's limits",
            result["series"],
        ),
        output.with_suffix(".png"),
    )
    print(f"drew {picture.relative_to(REPO) if picture.is_relative_to(REPO) else picture}")
    failures = [
        name
        for name in ("leaked_fly_machines", "leaked_fly_volumes", "leaked_crs", "fly_429s")
        if result.get(name)
    ]
    if result.get("delete_completed") is False:
        failures.append("delete did not complete")
    if args.scenario == "scale":
        kept_up = (
            result.get("steady_instances_not_checked") == 0
            and result.get("steady_fly_calls_per_instance_per_interval", 0) >= 0.95
        )
        print(
            f"scale: peak RSS {result['operator_peak_rss_mib']} MiB (goal < 600), "
            f"{result['operator_rss_per_instance_kib']} KiB per instance (goal <= 40), "
            f"{'kept up' if kept_up else 'DID NOT keep up'} with its polls "
            f"({result.get('steady_fly_calls_per_instance_per_interval')} checks per instance per interval, "
            f"lag p99 {result.get('steady_check_lag_s', {}).get('p99')} s)"
        )
        if not kept_up:
            failures.append("the periodic checks did not keep up")
    if failures:
        print(f"FAILED: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
