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
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

import plots
from processes import REPO, RESULTS, free_port, sample, spawn, stop, wait_for_line

GROUP, VERSION, PLURAL = "claw.dev", "v1alpha1", "clawinstances"
REGIONS = ("iad", "ord", "ams", "fra")
FLY_TOKEN = "bench-token"
MIN_CALLS = 3  # create volume, create machine, one wait
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")
# flysim's limits (Fly's documented ones): app-level actions such as create are 1/s, burst 3.
FLY_APP_ACTION_RATE, FLY_APP_ACTION_BURST = 1.0, 3
DEFAULT_APPS = 4


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
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def observe(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata", {})
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if kind == "DELETED":
            self.present.discard(key)
        else:
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


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    n = args.n
    kubeconfig = workdir / "kubeconfig"
    kube_log, fly_log, op_log = workdir / "kubesim.log", workdir / "flysim.log", workdir / "operator.log"
    kubesim = spawn(
        [
            "kubesim",
            "--port",
            str(free_port()),
            "--kubeconfig",
            str(kubeconfig),
            "--crds",
            str(REPO / "crds"),
        ],
        kube_log,
    )
    flysim = spawn(
        ["flysim", "--port", "0", "--profile", "realistic", "--rate-limit", "--seed", str(args.seed)], fly_log
    )
    processes = [kubesim, flysim]
    try:
        await wait_for_line(kube_log, "export KUBECONFIG=", kubesim)
        fly_url = await wait_for_line(fly_log, "FLY_API_URL=", flysim)
        kube_url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        poll = args.poll
        operator = spawn(
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
                "--fly-wait-timeout",
                "30",
                "--starting-timeout",
                str(max(300.0, 5.0 * n)),
            ],
            op_log,
            env={"FLY_API_TOKEN": FLY_TOKEN},
        )
        processes.append(operator)
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            return await measure(args, Bench(kube_url, fly_url, session), operator)
    finally:
        for process in reversed(processes):
            stop(process)


async def measure(
    args: argparse.Namespace, bench: Bench, operator: subprocess.Popen[bytes]
) -> dict[str, Any]:
    n, poll = args.n, args.poll
    interval = poll + args.jitter / 2  # the mean time between two periodic checks
    namespaces = [f"fleet-{i}" for i in range(args.namespaces)]
    for namespace in namespaces:
        await bench.kube("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})

    async def operator_watching() -> bool:
        stats = await bench.kube_stats()
        return any(verb == "WATCH" and PLURAL in route for verb, route in stats)

    if not await wait_until(operator_watching, 30):
        raise RuntimeError("the operator never started watching ClawInstances")
    await asyncio.sleep(args.warmup)
    tracker = Tracker()
    watcher = asyncio.create_task(bench.watch(tracker))
    peak = {"rss": 0.0}

    process_series: list[tuple[float, float, float]] = []  # (monotonic t, CPU seconds, RSS MiB)

    async def sampler() -> None:
        while True:
            now = sample(operator.pid)
            peak["rss"] = max(peak["rss"], now.rss_mib)
            process_series.append((time.monotonic(), now.cpu_seconds, now.rss_mib))
            await asyncio.sleep(0.5)

    sampling = asyncio.create_task(sampler())
    empty = sample(operator.pid)
    kube_before, fly_before = await bench.kube_stats(), await bench.fly_stats()
    apps = [f"fleet-app-{i}" for i in range(args.apps)] if args.apps > 1 else [None]

    # ---- create N at once
    print(f"creating {n} ClawInstances in {len(namespaces)} namespaces, {len(apps)} app(s) …", flush=True)
    gate = asyncio.Semaphore(64)
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

    await asyncio.gather(*(create(i) for i in range(n)))
    created_in = time.monotonic() - started
    print(f"  {n} created in {created_in:.1f}s; waiting for Ready …", flush=True)

    async def all_ready() -> bool:
        return len(tracker.ready) >= n

    budget = args.ready_timeout or (300 + 3.0 * n / len(apps))
    last_report = time.monotonic()

    async def ready_with_progress() -> bool:
        nonlocal last_report
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            print(f"  … {len(tracker.ready)}/{n} Ready after {time.monotonic() - started:.0f}s", flush=True)
        return await all_ready()

    if not await wait_until(ready_with_progress, budget, tracker):
        raise RuntimeError(f"only {len(tracker.ready)}/{n} Ready after {budget:.0f}s")
    all_ready_at = time.monotonic()
    kube_ready, fly_ready = await bench.kube_stats(), await bench.fly_stats()
    ready_sample = sample(operator.pid)
    time_to_all_ready = all_ready_at - started
    print(f"  all Ready in {time_to_all_ready:.1f}s", flush=True)

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

    # ---- steady state
    print(f"  steady state for {args.steady_polls} poll intervals of ~{interval:.1f}s …", flush=True)
    cpu_start, fly_start, kube_start = sample(operator.pid), await bench.fly_stats(), await bench.kube_stats()
    steady_from = time.monotonic()
    await asyncio.sleep(args.steady_polls * interval)
    steady_seconds = time.monotonic() - steady_from
    cpu_end, fly_end, kube_end = sample(operator.pid), await bench.fly_stats(), await bench.kube_stats()
    steady_calls = fly_counts(fly_end) - fly_counts(fly_start)
    steady_per_instance_interval = sum(steady_calls.values()) / n / (steady_seconds / interval)
    idle_cpu = 100.0 * (cpu_end.cpu_seconds - cpu_start.cpu_seconds) / steady_seconds

    # ---- Fly calls to reach Ready (raw, and less the periodic checks of instances already Ready)
    ramp_calls = fly_counts(fly_ready) - fly_counts(fly_before)
    ready_instance_seconds = sum(all_ready_at - at for at in tracker.ready.values())
    per_second = {route: count / n / steady_seconds for route, count in steady_calls.items()}
    adjusted: Counter[str] = Counter()
    for route, count in ramp_calls.items():
        adjusted[route] = max(0, round(count - per_second.get(route, 0.0) * ready_instance_seconds))
    calls_raw = sum(ramp_calls.values()) / n
    calls = sum(adjusted.values()) / n
    kube_writes = writes(kube_before, kube_ready)
    own_creates = f"POST /apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}"
    kube_writes[own_creates] -= n
    kube_writes = +kube_writes

    # ---- delete all, wait for Fly to be empty
    print("  deleting all …", flush=True)
    fly_delete_from = await bench.fly_stats()
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

    emptied = await wait_until(fly_empty, args.delete_timeout or (120 + 2.0 * n / len(apps)), tracker, 1.0)
    time_to_empty = time.monotonic() - delete_from
    deleted_at = time.monotonic()
    final = await bench.fly_stats()
    delete_calls = fly_counts(final) - fly_counts(fly_delete_from)
    leaked_machines = sum(c for s, c in final["machines"].items() if s not in ("destroyed", "destroying"))
    leaked_volumes = sum(c for s, c in final["volumes"].items() if s in live_volume_states)
    final_sample = sample(operator.pid)
    sampling.cancel()
    watcher.cancel()

    per_app = -(-n // len(apps))
    rate_bound = max(0.0, (per_app - FLY_APP_ACTION_BURST) / FLY_APP_ACTION_RATE)
    intrinsic_values = list(intrinsic.values())
    ttr_values = list(ttr.values())
    return {
        "n": n,
        "namespaces": len(namespaces),
        "apps": len(apps),
        "poll_interval_s": poll,
        "poll_jitter_s": args.jitter,
        "warmup_s": args.warmup,
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
        "fly_calls_per_instance_to_ready": round(calls, 2),
        "fly_calls_per_instance_to_ready_raw": round(calls_raw, 2),
        "fly_calls_ratio_to_minimum": round(calls / MIN_CALLS, 2),
        "fly_calls_to_ready_by_endpoint": {k: round(v / n, 2) for k, v in sorted(adjusted.items()) if v},
        "kube_writes_per_instance_to_ready": round(sum(kube_writes.values()) / n, 2),
        "kube_writes_to_ready_by_route": {k: round(v / n, 2) for k, v in sorted(kube_writes.items())},
        "steady_fly_calls_per_instance_per_interval": round(steady_per_instance_interval, 3),
        "steady_fly_calls_by_endpoint": dict(sorted(steady_calls.items())),
        "steady_kube_writes": sum(writes(kube_start, kube_end).values()),
        "operator_idle_cpu_percent": round(idle_cpu, 1),
        "operator_rss_empty_mib": round(empty.rss_mib, 1),
        "operator_rss_all_ready_mib": round(ready_sample.rss_mib, 1),
        "operator_peak_rss_mib": round(max(peak["rss"], final_sample.peak_rss_mib), 1),
        "operator_rss_per_instance_kib": round(1024 * (ready_sample.rss_mib - empty.rss_mib) / n, 1),
        "delete_time_to_empty_s": round(time_to_empty, 2),
        "delete_completed": emptied,
        "fly_calls_per_instance_to_delete": round(sum(delete_calls.values()) / n, 2),
        "fly_calls_to_delete_by_endpoint": {k: round(v / n, 2) for k, v in sorted(delete_calls.items())},
        "leaked_fly_machines": leaked_machines,
        "leaked_fly_volumes": leaked_volumes,
        "leaked_crs": len(tracker.present),
        "fly_429s": fly_429s(final),
        "fly_rate_limited_total": final["rate_limited"],
        # The raw material of the pictures (benchmarks/plots.py), times since the creates.
        "series": {
            "n": n,
            "time_to_ready_s": [round(v, 3) for v in ttr_values],
            "fly_intrinsic_s": [round(v, 3) for v in intrinsic_values],
            "ready_at_s": sorted(round(at - started, 3) for at in tracker.ready.values()),
            "phases": [
                ["ramp to Ready", 0.0, round(all_ready_at - started, 2)],
                ["steady", round(steady_from - started, 2), round(steady_from - started + steady_seconds, 2)],
                ["delete", round(delete_from - started, 2), round(deleted_at - started, 2)],
            ],
            "fly_calls_by_phase": {
                "ramp to Ready": {k: round(v / n, 3) for k, v in sorted(adjusted.items()) if v},
                "steady (per interval)": {
                    k: round(v / n / (steady_seconds / interval), 3) for k, v in sorted(steady_calls.items())
                },
                "delete": {k: round(v / n, 3) for k, v in sorted(delete_calls.items())},
            },
            "process": [
                [round(t - started, 2), round(cpu, 1), round(rss, 1)]
                for t, cpu, rss in plots.cpu_percent(process_series)
            ],
        },
    }


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
        if key != "series":
            print(f"{key:45s} {json.dumps(value)}")


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
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/fleet-N.json)")
    parser.add_argument("--keep-logs", type=Path, help="copy the three processes' logs into this directory")
    args = parser.parse_args()
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
        if result[name]
    ]
    if failures or not result["delete_completed"]:
        print(f"FAILED: {', '.join(failures) or 'delete did not complete'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
