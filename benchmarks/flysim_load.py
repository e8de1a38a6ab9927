"""Load on flysim: requests/s and memory (RSS) with 2,000 machines and 200 concurrent clients.

Runs `claw-operator flysim` as its own process (so its RSS is its own), then drives it with
aiohttp clients from this process: create the machines, then a read-heavy mix (GET machine,
list by metadata, events, lease acquire/release) for a fixed time. Prints one figure a line.

    python benchmarks/flysim_load.py                      # 2,000 machines, 200 clients, ~15 s
    python benchmarks/flysim_load.py --machines 10000 --clients 500 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
HEADERS = {"Authorization": "Bearer bench"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(profile: str, seed: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claw_operator.cli",
            "flysim",
            "--port",
            "0",
            "--profile",
            profile,
            "--seed",
            str(seed),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("FLY_API_URL="):
            return process, line.strip().split("=", 1)[1]
    raise RuntimeError("flysim did not print its URL")


async def create_machines(
    session: aiohttp.ClientSession, base: str, count: int, clients: int
) -> tuple[list[str], float, list[float]]:
    ids: list[str] = []
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            body = {
                "region": "iad",
                "config": {
                    "image": "registry.fly.io/claw:bench",
                    "metadata": {"claw.dev/uid": f"uid-{index}"},
                },
            }
            started = time.perf_counter()
            async with session.post(f"{base}/v1/apps/bench/machines", json=body) as response:
                payload = await response.json()
                assert response.status == 200, payload
            latencies.append(time.perf_counter() - started)
            ids.append(payload["id"])

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return ids, time.perf_counter() - began, latencies


async def mixed_load(
    session: aiohttp.ClientSession, base: str, ids: list[str], clients: int, duration: float
) -> tuple[int, int, float, list[float]]:
    rng = random.Random(0)
    deadline = time.perf_counter() + duration
    done = 0
    errors = 0
    latencies: list[float] = []

    async def one(rng: random.Random) -> int:
        machine_id = rng.choice(ids)
        roll = rng.random()
        path = f"{base}/v1/apps/bench/machines/{machine_id}"
        if roll < 0.70:
            async with session.get(path) as r:
                await r.read()
                return r.status
        if roll < 0.80:
            async with session.get(path + "/events", params={"limit": "5"}) as r:
                await r.read()
                return r.status
        if roll < 0.90:
            uid = f"uid-{rng.randrange(len(ids))}"
            async with session.get(
                f"{base}/v1/apps/bench/machines", params={"metadata.claw.dev/uid": uid, "summary": "true"}
            ) as r:
                await r.read()
                return r.status
        async with session.post(path + "/lease", params={"ttl": "5"}) as r:
            body = await r.json()
            if r.status != 200:
                return r.status
        nonce = body["data"]["nonce"]
        async with session.delete(path + "/lease", headers={"fly-machine-lease-nonce": nonce}) as r:
            await r.read()
            return r.status

    async def worker(seed: int) -> None:
        nonlocal done, errors
        local = random.Random(seed)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await one(local)
            latencies.append(time.perf_counter() - started)
            done += 1
            if status >= 400 and status != 409:  # 409 = someone else's lease, expected under load
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(rng.randrange(1 << 30)) for _ in range(clients)))
    return done, errors, time.perf_counter() - began, latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> None:
    process, base = start_server(args.profile, args.seed)
    try:
        print(f"flysim (profile {args.profile}) at {base}, pid {process.pid}")
        print(f"rss_idle_mib: {rss_mib(process.pid):.1f}")
        connector = aiohttp.TCPConnector(limit=args.clients)
        async with aiohttp.ClientSession(headers=HEADERS, connector=connector) as session:
            ids, seconds, create_lat = await create_machines(session, base, args.machines, args.clients)
            p50, p99 = percentile(create_lat, 0.5), percentile(create_lat, 0.99)
            print(
                f"create: {len(ids)} machines in {seconds:.2f} s = {len(ids) / seconds:.0f} req/s "
                f"(p50 {p50:.1f} ms, p99 {p99:.1f} ms)"
            )
            print(f"rss_after_create_mib: {rss_mib(process.pid):.1f}")
            done, errors, seconds, lat = await mixed_load(session, base, ids, args.clients, args.duration)
            p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
            print(
                "mixed (70% GET, 10% events, 10% list by metadata, 10% lease+release): "
                f"{done} requests in {seconds:.2f} s = {done / seconds:.0f} req/s, errors {errors} "
                f"(p50 {p50:.1f} ms, p99 {p99:.1f} ms)"
            )
            async with session.get(f"{base}/_sim/stats") as response:
                stats = await response.json()
            print(f"machines by state: {stats['machines']}")
            print(f"rss_after_load_mib: {rss_mib(process.pid):.1f}")
            print(f"clients: {args.clients}, machines: {args.machines}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--machines", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of mixed load")
    parser.add_argument("--profile", choices=["fast", "realistic"], default="realistic")
    parser.add_argument("--seed", type=int, default=0)
    started = time.perf_counter()
    asyncio.run(main(parser.parse_args()))
    print(f"wall_s: {time.perf_counter() - started:.1f}")
