"""Concurrent writers with resourceVersion preconditions lose no update, and a watcher sees every
change, in order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from claw_operator.sim.kubesim import KubeSim

WRITERS, INCREMENTS = 8, 15
URL = "/apis/claw.dev/v1alpha1/namespaces/default/clawinstances"


async def increment(session: aiohttp.ClientSession, base: str, conflicts: list[int]) -> None:
    """Read-modify-write of an annotation counter with PUT, retrying on 409 like a controller."""
    for _ in range(INCREMENTS):
        while True:
            async with session.get(f"{base}{URL}/counter") as response:
                obj = await response.json()
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations["count"] = str(int(annotations.get("count", "0")) + 1)
            async with session.put(f"{base}{URL}/counter", json=obj) as response:
                if response.status == 409:
                    conflicts.append(1)
                    continue
                assert response.status == 200, await response.text()
                break


async def collect(session: aiohttp.ClientSession, base: str, since: str, until: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    params = {"watch": "1", "resourceVersion": since, "fieldSelector": "metadata.name=counter"}
    async with session.get(f"{base}{URL}", params=params) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        async for line in response.content:
            event = json.loads(line)
            events.append(event)
            if event["object"]["metadata"].get("annotations", {}).get("count") == str(until):
                return events
    return events


async def test_concurrent_writers_lose_no_update_and_a_watcher_sees_each_in_order(kubesim: KubeSim) -> None:
    created = await kubesim.create(
        {
            "apiVersion": "claw.dev/v1alpha1",
            "kind": "ClawInstance",
            "metadata": {"name": "counter", "namespace": "default"},
            "spec": {"region": "iad", "image": "x"},
        }
    )
    total = WRITERS * INCREMENTS
    conflicts: list[int] = []
    async with aiohttp.ClientSession() as session:
        watcher = asyncio.create_task(
            collect(session, kubesim.base_url, created["metadata"]["resourceVersion"], total)
        )
        await asyncio.gather(*(increment(session, kubesim.base_url, conflicts) for _ in range(WRITERS)))
        events = await asyncio.wait_for(watcher, 30)

    final = kubesim.get("claw.dev/v1alpha1", "ClawInstance", "counter", "default")
    assert final is not None and final["metadata"]["annotations"]["count"] == str(total)
    assert conflicts, "the writers never raced: the test did not exercise preconditions"
    assert [e["type"] for e in events] == ["MODIFIED"] * total
    assert [e["object"]["metadata"]["annotations"]["count"] for e in events] == [
        str(n) for n in range(1, total + 1)
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == total
