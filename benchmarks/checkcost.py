"""CPU per quiet check on the Fly side: `FlyGateway.observe` down to the HTTP exchange, in process.

What a periodic check of a healthy ClawInstance costs the operator outside Kubernetes and the
scheduler: one `GET /v1/apps/{app}/machines/{id}` through the real client (aiohttp pool, rate
limiter, retry policy, the INFO line per call through the operator's own log setup written to a
file, the Prometheus observer), the machine read into the lifecycle's `MachineView`, and
(`--decide`, default on) `decide` on the observation. flysim runs as a separate process, so its
CPU is not counted: the figure is this process's CPU time (`time.process_time`, every thread)
over the measured rounds, divided by the checks made.

Setup (not measured): N instances are created through the gateway as the reconciler would
(volume, machine, wait until started; a separate client with the limiter off so that it is
quick), each then known as a running instance whose status records machine, volume and size.
The measurement uses a new gateway and client (production settings: `kube.runner.fly_client`),
as after an operator restart: every check is one GET (`volume_needs_a_look` trusts the
recorded size), and `decide` answers "nothing to do" (checked: an action aborts the run).

    python benchmarks/checkcost.py --n 200 --rounds 20             # observe + decide
    python benchmarks/checkcost.py --n 200 --rounds 20 --repeat 5  # five measured runs, one setup
    python benchmarks/checkcost.py --profile /tmp/checkcost.txt   # py-spy (--gil) of the rounds

Each measured run prints µs of CPU per check for observe alone and for observe + decide; the
last line is the median over `--repeat` runs (JSON with `--json`). Compare branches with paired
runs (alternate them) on a quiet machine: the figures move with the load of the shared host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from claw_operator.api import ClawInstanceSpec, ClawInstanceStatus
from claw_operator.edge import FlyGateway
from claw_operator.edge.env import ResolvedEnv, env_digest
from claw_operator.fly import FlyClientOptions, RateLimits, RetryPolicy
from claw_operator.kube.config import OperatorConfig
from claw_operator.kube.logs import setup_logging
from claw_operator.kube.metrics import OperatorMetrics
from claw_operator.kube.runner import fly_client
from claw_operator.lifecycle import decide, settle
from claw_operator.lifecycle.model import Instance, Lookup, Timings
from processes import spawn, stop, wait_for_line
from profiling import Profiler

TOKEN = "checkcost-token"
IMAGE = "registry.fly.io/claw:1.0"
# A few variables, as an instance's env has (the machine's config carries them; the check
# digests them).
ENV = {"CLAW_MODE": "assistant", "CLAW_LOG_LEVEL": "info", "TZ": "UTC", "CLAW_WORKSPACE": "/root/work"}


def _instance(index: int, app: str, created_at: datetime) -> Instance:
    spec = ClawInstanceSpec(region="iad", image=IMAGE, app=app, env=ENV)
    return Instance(
        uid=f"00000000-0000-4000-8000-{index:012d}",
        namespace="bench",
        name=f"claw-{index}",
        generation=1,
        spec=spec,
        status=ClawInstanceStatus(),
        app=app,
        env_digest=env_digest(dict(spec.env)),
        created_at=created_at,
    )


async def _provision(gateway: FlyGateway, instance: Instance, timings: Timings) -> Instance:
    """Passes as the reconciler runs them (observe, decide, execute, settle) until nothing is
    left to do: the instance as a quiet check finds it."""
    env = ResolvedEnv(dict(instance.spec.env), instance.env_digest, None)
    for _ in range(30):
        now = datetime.now(UTC)
        decided = decide(instance, await gateway.observe(instance), now, timings)
        if decided.action is None:
            instance = replace(instance, status=decided.status)
            if decided.status.phase == "Running" and decided.requeue_after != 0:
                return instance
            await asyncio.sleep(0.2)
            continue
        result = await gateway.execute(decided.action, instance, env)
        if not result.ok:
            raise RuntimeError(f"{instance.name}: {type(decided.action).__name__} failed: {result.failure}")
        instance = replace(instance, status=settle(instance, decided, result, now, timings).status)
    raise RuntimeError(f"{instance.name} not Running after 30 passes: {instance.status.phase}")


async def _checks(
    gateway: FlyGateway,
    instances: list[Instance],
    timings: Timings,
    *,
    with_decide: bool,
    concurrency: int,
) -> None:
    queue = list(reversed(instances))

    async def worker() -> None:
        while queue:
            instance = queue.pop()
            observed = await gateway.observe(instance)
            if observed.machine.outcome != Lookup.FOUND:
                raise RuntimeError(f"{instance.name}: machine {observed.machine.outcome}")
            if with_decide:
                decided = decide(instance, observed, datetime.now(UTC), timings)
                if decided.action is not None:
                    raise RuntimeError(f"{instance.name}: not quiet, {type(decided.action).__name__}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _measure(
    gateway: FlyGateway,
    instances: list[Instance],
    timings: Timings,
    args: argparse.Namespace,
    *,
    with_decide: bool,
) -> float:
    """µs of this process's CPU per check, over `args.rounds` rounds of every instance."""
    # A round of N GETs takes well over 1/N s each; a small N is paced so that each machine's
    # GET bucket (5/s on Fly, 4.5/s in the client) never makes a check wait.
    cpu = 0.0
    for _ in range(args.rounds):
        began, cpu_began = time.monotonic(), time.process_time()
        await _checks(gateway, instances, timings, with_decide=with_decide, concurrency=args.concurrency)
        cpu += time.process_time() - cpu_began
        if (left := 0.25 - (time.monotonic() - began)) > 0:
            await asyncio.sleep(left)
    return 1e6 * cpu / (args.rounds * len(instances))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="checkcost-"))
    log_file = workdir / "operator.log"
    flysim_args = ["flysim", "--port", "0", "--profile", "fast", "--seed", "1", "--token", TOKEN]
    flysim = spawn(flysim_args, workdir / "flysim.log")
    try:
        fly_url = await wait_for_line(workdir / "flysim.log", "FLY_API_URL=", flysim)
        # The operator's logging (text lines at INFO), into a file instead of stderr.
        setup_logging("text", getattr(logging, args.log_level))
        logging.getLogger().handlers[0].setStream(log_file.open("a"))  # type: ignore[attr-defined]
        timings = Timings()
        setup_config = OperatorConfig(
            fly_api_url=fly_url,
            fly_token=TOKEN,
            fly_client_options=FlyClientOptions(
                rate_limits=RateLimits(enabled=False), retry=RetryPolicy(attempts=3, wait_initial=0.05)
            ),
        )
        setup = FlyGateway(fly_client(setup_config), timings)
        # Born under this gateway's watch: no listing waits for an earlier operator's creates.
        created_at = setup._started_at + FlyGateway.BORN_WATCHED_MARGIN + timedelta(seconds=1)
        apps = max(1, args.apps)
        fresh = [_instance(i, f"checkcost-{i % apps}", created_at) for i in range(args.n)]
        began = time.monotonic()
        instances: list[Instance] = []
        for start in range(0, len(fresh), 50):
            batch = fresh[start : start + 50]
            instances += await asyncio.gather(*(_provision(setup, i, timings) for i in batch))
        await setup.aclose()
        setup_s = time.monotonic() - began
        print(f"setup: {args.n} instances Running in {setup_s:.1f}s ({apps} app(s))", file=sys.stderr)

        # Measured: a gateway and client as the operator builds them.
        metrics = OperatorMetrics()
        config = OperatorConfig(fly_api_url=fly_url, fly_token=TOKEN)
        gateway = FlyGateway(fly_client(config, on_request=metrics.observe_fly_request), timings)
        # Warm up: connections opened, buckets created, code paths taken once.
        for _ in range(2):
            await _checks(gateway, instances, timings, with_decide=True, concurrency=args.concurrency)
        profiler = None
        if args.profile:
            profiler = Profiler(os.getpid(), Path(args.profile).parent, rate=200)
            profiler.start(Path(args.profile).stem)
        runs: list[dict[str, float]] = []
        for repeat in range(args.repeat):
            observe_us = await _measure(gateway, instances, timings, args, with_decide=False)
            check_us = (
                await _measure(gateway, instances, timings, args, with_decide=True) if args.decide else None
            )
            row = {"observe_us": round(observe_us, 1)}
            if check_us is not None:
                row["observe_decide_us"] = round(check_us, 1)
            runs.append(row)
            print(f"run {repeat + 1}: " + ", ".join(f"{k} {v}" for k, v in row.items()), file=sys.stderr)
        if profiler is not None:
            profiler.stop()
        await gateway.aclose()
        lines = sum(1 for line in log_file.read_text().splitlines() if "fly GET" in line)
        result: dict[str, Any] = {
            "n": args.n,
            "apps": apps,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "runs": runs,
            "median_observe_us": round(statistics.median(r["observe_us"] for r in runs), 1),
            "fly_log_lines": lines,
            "load_average": os.getloadavg()[0],
        }
        if args.decide:
            decided = statistics.median(r["observe_decide_us"] for r in runs)
            result["median_observe_decide_us"] = round(decided, 1)
        if profiler is not None:
            result["profile"] = profiler.summaries
        return result
    finally:
        stop(flysim)
        with contextlib.suppress(OSError):
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="instances (machines with a volume)")
    parser.add_argument("--apps", type=int, default=20, help="Fly apps they are spread over")
    parser.add_argument("--rounds", type=int, default=20, help="checks of every instance per measured run")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs (the median is reported)")
    parser.add_argument("--concurrency", type=int, default=8, help="checks in flight at once")
    parser.add_argument(
        "--decide", action=argparse.BooleanOptionalAction, default=True, help="also time observe + decide"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING"],
        help="the operator's log level (INFO, its default, writes a line per Fly call)",
    )
    parser.add_argument("--profile", help="py-spy recording of the measured runs (collapsed stacks)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        summary = f"median over {len(result['runs'])} runs: observe {result['median_observe_us']} µs/check"
        if args.decide:
            summary += f", observe + decide {result['median_observe_decide_us']} µs/check"
        print(summary + f" (load {result['load_average']:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
