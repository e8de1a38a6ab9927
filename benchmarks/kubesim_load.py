"""kubesim under load: writes/s over HTTP and watch fan-out latency, with 5,000 objects.

    python benchmarks/kubesim_load.py [--objects 5000] [--watchers 10] [--concurrency 32]

The server runs on its own event loop in a thread (as in the operator's integration tests); the
writers and watchers are aiohttp clients on the main loop. Fan-out latency is measured from just
before each write is sent to the moment each watcher has decoded the event carrying it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from pathlib import Path

import aiohttp

from claw_operator.sim.kubesim import KubeSim, KubeSimThread

REPOSITORY = Path(__file__).resolve().parent.parent
COLLECTION = "/apis/claw.dev/v1alpha1/namespaces/default/clawinstances"


def claw(name: str) -> dict[str, object]:
    return {
        "apiVersion": "claw.dev/v1alpha1",
        "kind": "ClawInstance",
        "metadata": {"name": name, "labels": {"bench": "yes"}},
        "spec": {"region": "iad", "image": "registry.fly.io/claw:1"},
    }


async def run_writes(
    session: aiohttp.ClientSession, base: str, names: list[str], concurrency: int, make_request: str
) -> float:
    """Send one write per name with `concurrency` in flight; returns writes per second."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in names:
        queue.put_nowait(name)

    async def worker() -> None:
        while not queue.empty():
            name = queue.get_nowait()
            if make_request == "create":
                async with session.post(base + COLLECTION, json=claw(name)) as response:
                    assert response.status == 201, await response.text()
            else:
                patch = {"status": {"phase": "Running", "machineId": f"m-{name}"}}
                async with session.patch(
                    f"{base}{COLLECTION}/{name}/status",
                    data=json.dumps(patch),
                    headers={"Content-Type": "application/merge-patch+json"},
                ) as response:
                    assert response.status == 200, await response.text()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(names) / (time.perf_counter() - started)


async def watcher(
    session: aiohttp.ClientSession,
    base: str,
    since: str,
    expected: int,
    sent_at: dict[str, float],
    latencies: list[float],
) -> None:
    params = {"watch": "1", "resourceVersion": since, "allowWatchBookmarks": "true"}
    seen = 0
    async with session.get(
        base + COLLECTION, params=params, timeout=aiohttp.ClientTimeout(total=None)
    ) as response:
        async for line in response.content:
            event = json.loads(line)
            if event["type"] != "MODIFIED":
                continue
            latencies.append(time.perf_counter() - sent_at[event["object"]["metadata"]["name"]])
            seen += 1
            if seen == expected:
                return


async def fan_out(session: aiohttp.ClientSession, base: str, names: list[str], watchers: int) -> list[float]:
    """Latency of each of `names`' writes reaching each of `watchers` watchers (seconds)."""
    async with session.get(base + COLLECTION, params={"limit": "1"}) as response:
        since = (await response.json())["metadata"]["resourceVersion"]
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    tasks = [
        asyncio.create_task(watcher(session, base, since, len(names), sent_at, latencies))
        for _ in range(watchers)
    ]
    await asyncio.sleep(0.2)  # let every watch connect before the first write
    for name in names:  # paced writes: latency, not queueing, is what this measures
        sent_at[name] = time.perf_counter()
        async with session.patch(
            f"{base}{COLLECTION}/{name}",
            data=json.dumps({"metadata": {"annotations": {"touched": "yes"}}}),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as response:
            assert response.status == 200
        await asyncio.sleep(0.002)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(arguments: argparse.Namespace) -> None:
    sim = KubeSim(history_limit=arguments.history)
    with KubeSimThread(sim, crds=REPOSITORY / "crds") as server:
        base = server.base_url
        names = [f"bench-{index:05d}" for index in range(arguments.objects)]
        connector = aiohttp.TCPConnector(limit=arguments.concurrency + arguments.watchers + 4)
        async with aiohttp.ClientSession(connector=connector) as session:
            create_rate = await run_writes(session, base, names, arguments.concurrency, "create")
            status_rate = await run_writes(session, base, names, arguments.concurrency, "status")
            started = time.perf_counter()
            async with session.get(base + COLLECTION, params={"labelSelector": "bench=yes"}) as response:
                listed = len((await response.json())["items"])
            list_seconds = time.perf_counter() - started
            latencies = await fan_out(session, base, names[: arguments.fanout_writes], arguments.watchers)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"objects:                 {arguments.objects} (history window {arguments.history} changes)")
        print(f"create writes/s:         {create_rate:,.0f}  (POST, {arguments.concurrency} in flight)")
        print(
            f"status writes/s:         {status_rate:,.0f}  "
            f"(PATCH /status merge, {arguments.concurrency} in flight)"
        )
        print(f"list of {listed} objects:  {list_seconds * 1000:,.0f} ms")
        print(
            f"watch fan-out latency:   p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
            f"({arguments.fanout_writes} writes x {arguments.watchers} watchers "
            f"= {len(latencies)} deliveries)"
        )
        print(f"retained history:        {sim.store.history_size} changes; peak RSS {rss_mb:,.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--fanout-writes", type=int, default=500)
    parser.add_argument("--history", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
