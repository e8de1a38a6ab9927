"""`fleet.py --replicas R`: R `claw-operator run --shards auto` processes share one fleet.

kubesim, flysim (realistic latencies, Fly's rate limits) and R operator processes, each with a
kubeconfig of its own (kubesim tells the clients apart by their bearer token) and the
production shard timings (lease 15 s, renew deadline 10 s, retry 2 s) unless told otherwise.

1. The ring forms (every replica sees R members and answers /readyz); N ClawInstances are
   created at once and the run waits for all Ready.
2. Ownership: every instance owned by exactly one replica (the replicas' own
   `claw_shard_instances_owned`, and the owner each UID hashes to), each share against N / R.
3. Steady state for a few poll intervals: Fly calls per instance per interval in total (flysim's
   count) and per replica (its `claw_fly_requests_total`), CPU per replica.
4. `kill -9` of the last replica: how long until the survivors act on every instance
   (`claw_shard_instances_acting` summed, sampled every 0.1 s); the killed replica then rejoins.
5. A rolling restart, one replica at a time as a Deployment with maxSurge 1 does it: the
   replacement starts (a new identity), then the old one gets SIGTERM. The longest time the
   replicas together acted on fewer than all instances, and samples where they acted on more
   (two replicas at once on one instance; a sample counts only when every replica answered
   within 50 ms).
6. Machines alive at the end = N (no duplicate machine).

Server-side sharded watches (KEP-5866) are on in kubesim; `--client-side` switches them off
(as a 1.28-1.35 apiserver), so every replica receives every instance and filters itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from claw_operator.api import GROUP, PLURAL, VERSION
from claw_operator.lifecycle.shards import owner
from fleet import (
    FLY_TOKEN,
    MACHINE_ROUTE,
    Bench,
    Tracker,
    commit,
    fly_429s,
    fly_counts,
    manifest,
    wait_until,
)
from processes import REPO, RESULTS, free_port, kill_hard, sample, simulators, spawn, stop


class Replica:
    """One operator process of the ring (`identity`), its metrics port and its CPU."""

    def __init__(
        self, args: argparse.Namespace, identity: str, kubeconfig: Path, fly_url: str, workdir: Path
    ) -> None:
        self.identity = identity
        self.port = free_port()
        own = workdir / f"kubeconfig-{identity}"
        config = yaml.safe_load(kubeconfig.read_text())
        for user in config.get("users") or []:
            user["user"] = {"token": identity}
        own.write_text(yaml.safe_dump(config))
        poll = args.poll
        command = [
            "run",
            "--kubeconfig", str(own),
            "--fly-api-url", fly_url,
            "--default-app", "bench",
            "--metrics-port", str(self.port),
            "--poll-starting", str(poll),
            "--poll-running", str(poll),
            "--poll-destroying", str(max(1.0, poll / 2)),
            "--poll-idle", str(poll),
            "--poll-jitter", str(args.jitter),
            "--fly-wait-timeout", "30",
            "--starting-timeout", str(max(300.0, 5.0 * args.n)),
            "--shards", "auto",
            "--shard-identity", identity,
            "--shard-namespace", "default",
            "--shard-lease-duration", str(int(args.lease)),
            "--shard-renew-deadline", str(args.renew_deadline),
            "--shard-retry-period", str(args.retry_period),
        ]  # fmt: skip
        self.log = workdir / f"operator-{identity}.log"
        self.process: subprocess.Popen[bytes] = spawn(command, self.log, env={"FLY_API_TOKEN": FLY_TOKEN})
        self.cpu_retired = 0.0

    def cpu(self) -> float:
        with contextlib.suppress(OSError, ValueError):
            return sample(self.process.pid).cpu_seconds
        return 0.0

    def metrics(self) -> dict[str, float]:
        import httpx

        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}"] = s.value
        return samples

    def value(self, key: str) -> float | None:
        return self.metrics().get(key)

    def ready(self) -> bool:
        import httpx

        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def fly_calls(self, samples: dict[str, float] | None = None) -> float:
        samples = samples if samples is not None else self.metrics()
        return sum(v for k, v in samples.items() if k.startswith("claw_fly_requests_total{"))


class Sampler:
    """Every 0.1 s, every live replica's `claw_shard_instances_acting` at once (threads)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.live: dict[str, Replica] = {}
        self.pool = ThreadPoolExecutor(max_workers=8)
        self.gaps: list[tuple[str, float]] = []  # (phase, seconds some instance had no acting replica)
        self.overlaps: list[tuple[str, float]] = []
        self.skipped = 0
        self.phase = "start"
        self._task: asyncio.Task[None] | None = None

    def _timed(self, replica: Replica) -> tuple[float, float, float]:
        started = time.monotonic()
        value = replica.value("claw_shard_instances_acting{}") or 0.0
        return started, time.monotonic(), value

    async def acting(self) -> tuple[float, float]:
        """(instances acted on, summed over the replicas; the spread of the answers in s)."""
        loop = asyncio.get_running_loop()
        answers = await asyncio.gather(
            *(loop.run_in_executor(self.pool, self._timed, r) for r in list(self.live.values()))
        )
        if not answers:
            return 0.0, 0.0
        return sum(a[2] for a in answers), max(a[1] for a in answers) - min(a[0] for a in answers)

    async def _run(self) -> None:
        gap_started: float | None = None
        gap_phase = ""
        while True:
            acting, spread = await self.acting()
            now = time.monotonic()
            if acting > self.n:
                if spread <= 0.05:
                    self.overlaps.append((self.phase, acting - self.n))
                else:
                    self.skipped += 1
            if acting < self.n and gap_started is None:
                gap_started, gap_phase = now, self.phase
            elif acting >= self.n and gap_started is not None:
                self.gaps.append((gap_phase, round(now - gap_started, 2)))
                gap_started = None
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.pool.shutdown(wait=False)


async def until(predicate: Any, timeout: float, every: float = 0.1) -> float | None:
    """Seconds until `predicate()` (sync, run in a thread) holds; None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await asyncio.to_thread(predicate):
            return time.monotonic() - started
        await asyncio.sleep(every)
    return None


async def run_replicas(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    flysim_args = ["--profile", "realistic", "--rate-limit", "--seed", str(args.seed)]
    replicas: dict[str, Replica] = {}
    retired: list[Replica] = []
    async with simulators(workdir, flysim_args) as sims:
        kubeconfig, fly_url = sims.kubeconfig, sims.fly_url
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=120)
            ) as session:
                bench = Bench(sims.kube_url, fly_url, session)
                if args.client_side:
                    await bench.kube("POST", "/_kubesim/features", {"shardSelector": False})
                identities = [f"r{i}" for i in range(args.replicas)]
                for identity in identities:
                    replicas[identity] = Replica(args, identity, kubeconfig, fly_url, workdir)
                return await measure_replicas(args, bench, replicas, retired, kubeconfig, fly_url, workdir)
        finally:
            for replica in [*replicas.values(), *retired]:
                stop(replica.process)


async def measure_replicas(
    args: argparse.Namespace,
    bench: Bench,
    replicas: dict[str, Replica],
    retired: list[Replica],
    kubeconfig: Path,
    fly_url: str,
    workdir: Path,
) -> dict[str, Any]:
    n, count = args.n, args.replicas
    interval = args.poll + args.jitter / 2
    namespaces = [f"fleet-{i}" for i in range(args.namespaces)]
    for namespace in namespaces:
        await bench.kube("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    formed = await until(
        lambda: all(r.ready() and r.value("claw_shard_members{}") == count for r in replicas.values()), 120
    )
    if formed is None:
        raise RuntimeError("the ring never formed")
    modes = {name: r.value("claw_shard_server_side{}") for name, r in replicas.items()}
    print(
        f"ring of {count} formed in {formed:.1f}s; server-side shardSelector per replica: {modes}", flush=True
    )
    await asyncio.sleep(args.warmup)
    tracker = Tracker()
    watcher = asyncio.create_task(bench.watch(tracker))
    result: dict[str, Any] = {
        "commit": commit(),
        "n": n,
        "replicas": count,
        "namespaces": len(namespaces),
        "apps": args.apps,
        "poll_interval_s": args.poll,
        "poll_jitter_s": args.jitter,
        "shard_timings_s": {
            "lease": args.lease,
            "renew_deadline": args.renew_deadline,
            "retry": args.retry_period,
        },
        "server_side_shard_selector": not args.client_side,
    }
    # ---- burst
    apps = [f"fleet-app-{i}" for i in range(args.apps)] if args.apps > 1 else [None]
    gate = asyncio.Semaphore(64)
    cpu_before = {name: r.cpu() for name, r in replicas.items()}
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

    print(f"creating {n} ClawInstances …", flush=True)
    await asyncio.gather(*(create(i) for i in range(n)))

    async def all_ready() -> bool:
        return len(tracker.ready) >= n

    budget = args.ready_timeout or (300 + 3.0 * n / len(apps))
    if not await wait_until(all_ready, budget, tracker):
        raise RuntimeError(f"only {len(tracker.ready)}/{n} Ready after {budget:.0f}s")
    to_ready = time.monotonic() - started
    ramp_cpu = {name: round(r.cpu() - cpu_before[name], 2) for name, r in replicas.items()}
    print(f"  all Ready in {to_ready:.1f}s; CPU per replica {ramp_cpu}", flush=True)
    result["time_to_all_ready_s"] = round(to_ready, 2)
    result["ramp_cpu_s_by_replica"] = ramp_cpu

    # ---- ownership
    _, listed = await bench.kube("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}")
    uids = [item["metadata"]["uid"] for item in listed["items"]]
    members = sorted(replicas)
    by_hash = {name: sum(1 for u in uids if owner(u, members) == name) for name in members}

    def owned() -> dict[str, float]:
        return {name: r.value("claw_shard_instances_owned{}") or 0.0 for name, r in replicas.items()}

    settled = await until(lambda: sum(owned().values()) == n, 60)
    shares = owned()
    third = n / count
    deviation = {name: round(100.0 * (v - third) / third, 1) for name, v in shares.items()}
    result["ownership"] = {
        "owned_by_replica": shares,
        "owner_by_hash": by_hash,
        "sum_owned": sum(shares.values()),
        "exactly_one_owner": settled is not None and shares == {k: float(v) for k, v in by_hash.items()},
        "deviation_from_even_share_percent": deviation,
        "max_abs_deviation_percent": max(abs(v) for v in deviation.values()),
    }
    print(f"  ownership: {shares} (by hash {by_hash}); deviation from N/R in %: {deviation}", flush=True)

    # ---- steady
    await asyncio.sleep(interval)  # past the last Ready's own follow-up check
    fly_start = await bench.fly_stats()
    metrics_start = {name: r.metrics() for name, r in replicas.items()}
    cpu_start = {name: r.cpu() for name, r in replicas.items()}
    steady_from = time.monotonic()
    await asyncio.sleep(args.steady_polls * interval)
    seconds = time.monotonic() - steady_from
    fly_end = await bench.fly_stats()
    metrics_end = {name: r.metrics() for name, r in replicas.items()}
    cpu_end = {name: r.cpu() for name, r in replicas.items()}
    calls = fly_counts(fly_end) - fly_counts(fly_start)
    intervals = seconds / interval
    per_replica = {}
    for name, r in replicas.items():
        fly_calls = r.fly_calls(metrics_end[name]) - r.fly_calls(metrics_start[name])
        per_replica[name] = {
            "instances_owned": shares[name],
            "fly_calls_per_interval": round(fly_calls / intervals, 1),
            "fly_calls_per_owned_instance_per_interval": round(fly_calls / intervals / shares[name], 3)
            if shares[name]
            else None,
            "cpu_percent": round(100.0 * (cpu_end[name] - cpu_start[name]) / seconds, 1),
        }
    result["steady"] = {
        "seconds": round(seconds, 1),
        "fly_calls_per_instance_per_interval": round(sum(calls.values()) / n / intervals, 3),
        "machine_gets_per_instance_per_interval": round(
            calls.get(f"GET {MACHINE_ROUTE}", 0) / n / intervals, 3
        ),
        "by_replica": per_replica,
    }
    print(f"  steady: {result['steady']}", flush=True)

    # ---- kill -9 of the last replica, then it rejoins
    sampler = Sampler(n)
    sampler.live = dict(replicas)
    victim_name = members[-1]
    victim = replicas.pop(victim_name)
    sampler.live.pop(victim_name)
    survivors = sorted(replicas)
    # What bounded loads shift between two survivors when the victim leaves: nobody acts on
    # those for a renew deadline after the departure is seen (by design); the victim's own
    # instances go over at once.
    shifted = sum(
        1 for u in uids if owner(u, members) in survivors and owner(u, members) != owner(u, survivors)
    )
    kill_hard(victim.process)
    victims_taken = asyncio.create_task(
        until(
            lambda: (
                sum((r.value("claw_shard_instances_acting{}") or 0) for r in replicas.values()) >= n - shifted
            ),
            120,
        )
    )
    all_acting = await until(
        lambda: sum((r.value("claw_shard_instances_acting{}") or 0) for r in replicas.values()) == n, 120
    )
    result["kill"] = {
        "replica": victim_name,
        "owned": shares[victim_name],
        "survivors_act_on_all_after_s": round(all_acting, 2) if all_acting is not None else None,
        "shifted_between_survivors": shifted,
        "victims_instances_taken_over_after_s": round(taken, 2)
        if (taken := await victims_taken) is not None
        else None,
        "bound_s": args.lease + interval,
    }
    print(
        f"  kill -9 {victim_name}: survivors act on all {n} after {all_acting}s "
        f"(bound: lease {args.lease}s + one poll)",
        flush=True,
    )
    retired.append(victim)
    replicas[victim_name] = Replica(args, victim_name, kubeconfig, fly_url, workdir)
    rejoined = await until(
        lambda: (
            all(r.value("claw_shard_members{}") == count for r in replicas.values())
            and sum((r.value("claw_shard_instances_acting{}") or 0) for r in replicas.values()) == n
        ),
        180,
    )
    result["kill"]["rejoined_and_all_acting_after_s"] = round(rejoined, 2) if rejoined is not None else None

    # ---- rolling restart: replacement first (maxSurge 1), then SIGTERM to the old one
    sampler.live = dict(replicas)
    sampler.start()
    rolling: list[dict[str, Any]] = []
    for old in sorted(replicas):
        new = f"{old}-b"
        sampler.phase = f"{new} joins"
        replicas[new] = Replica(args, new, kubeconfig, fly_url, workdir)
        sampler.live[new] = replicas[new]
        await until(lambda: all(r.value("claw_shard_members{}") == count + 1 for r in replicas.values()), 120)
        settled_in = await until(
            lambda: (
                sum((r.value("claw_shard_instances_acting{}") or 0) for r in replicas.values()) == n
                and (replicas[new].value("claw_shard_instances_acting{}") or 0) > 0  # noqa: B023
            ),
            120,
        )
        sampler.phase = f"{old} leaves"
        leaving = replicas.pop(old)
        sampler.live.pop(old)
        await asyncio.to_thread(stop, leaving.process)
        retired.append(leaving)
        left_in = await until(
            lambda: (
                all(r.value("claw_shard_members{}") == count for r in replicas.values())
                and sum((r.value("claw_shard_instances_acting{}") or 0) for r in replicas.values()) == n
            ),
            120,
        )
        rolling.append(
            {
                "replaced": old,
                "join_all_acting_s": round(settled_in, 2) if settled_in is not None else None,
                "leave_all_acting_after_sigterm_s": round(left_in, 2) if left_in is not None else None,
            }
        )
    await asyncio.sleep(1)
    await sampler.stop()
    gaps = [g for _, g in sampler.gaps]
    result["rolling_restart"] = {
        "steps": rolling,
        "unowned_gaps_s": sampler.gaps,
        "max_unowned_gap_s": max(gaps, default=0.0),
        "lease_s": args.lease,
        "overlap_samples": len(sampler.overlaps),
        "samples_not_counted_spread_over_50ms": sampler.skipped,
    }
    print(
        f"  rolling restart: max gap {result['rolling_restart']['max_unowned_gap_s']}s "
        f"(lease {args.lease}s), gaps {sampler.gaps}, overlaps {len(sampler.overlaps)}",
        flush=True,
    )
    # ---- the end: no duplicate machine, no 429
    stats = await bench.fly_stats()
    live_machines = sum(v for state, v in stats["machines"].items() if state != "destroyed")
    result["live_machines"] = live_machines
    result["fly_429s"] = fly_429s(stats)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    return result


def report(result: dict[str, Any]) -> None:
    steady = result["steady"]
    own = result["ownership"]
    print()
    print(f"fleet --replicas {result['replicas']} --n {result['n']} (commit {result['commit']})")
    print(f"  server-side shardSelector: {result['server_side_shard_selector']}")
    print(f"  time to all Ready: {result['time_to_all_ready_s']} s")
    print(f"  owned: {own['owned_by_replica']} exactly one owner: {own['exactly_one_owner']}")
    print(f"  max deviation from N/R: {own['max_abs_deviation_percent']} %")
    print(
        f"  steady Fly calls / instance / interval (total): {steady['fly_calls_per_instance_per_interval']}"
    )
    for name, load in steady["by_replica"].items():
        print(f"    {name}: {load}")
    print(f"  kill -9: {result['kill']}")
    print(f"  rolling restart: max unowned gap {result['rolling_restart']['max_unowned_gap_s']} s, "
          f"overlaps {result['rolling_restart']['overlap_samples']}")  # fmt: skip
    print(
        f"  live machines at the end: {result['live_machines']} (N = {result['n']}), "
        f"429s: {result['fly_429s']}"
    )


def main(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fleet-replicas-") as tmp:
        workdir = Path(tmp)
        try:
            result = asyncio.run(run_replicas(args, workdir))
        finally:
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in workdir.glob("*.log"):
                    (args.keep_logs / log.name).write_bytes(log.read_bytes())
    report(result)
    suffix = "-client-side" if args.client_side else ""
    output = args.output or RESULTS / f"fleet-{args.n}-replicas{args.replicas}{suffix}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output.relative_to(REPO) if output.is_relative_to(REPO) else output}")
    failures = []
    if not result["ownership"]["exactly_one_owner"]:
        failures.append("not every instance owned by exactly one replica")
    if result["live_machines"] != result["n"]:
        failures.append(f"{result['live_machines']} live machines for {result['n']} instances")
    if result["rolling_restart"]["overlap_samples"]:
        failures.append("two replicas acted on one instance at once")
    if result["fly_429s"]:
        failures.append("429s from Fly")
    if failures:
        print(f"FAILED: {', '.join(failures)}")
        return 1
    return 0
