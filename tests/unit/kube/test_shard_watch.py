"""ShardWatch: server-side sharding detected at start, the selector kopf sends, the re-list."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import kopf
import pytest
from kopf._cogs.structs.references import Insights, Resource

from claw_operator.api import GROUP, PLURAL, VERSION
from claw_operator.api.sharding import HASH_SPACE, fnv1a_64
from claw_operator.kube.shards import LeaseKeeper, ShardWatch
from claw_operator.lifecycle.shards import ShardTimings

RESOURCE = Resource(
    group=GROUP,
    version=VERSION,
    plural=PLURAL,
    kind="ClawInstance",
    singular="clawinstance",
    namespaced=True,
)


class FakeKube:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, dict[str, str] | None]] = []

    async def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        self.requests.append((method, path, kwargs.get("params")))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class FakeLeases:
    async def list(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return []

    async def aclose(self) -> None:
        pass


def watch_for(
    answer: Any, namespaces: tuple[str, ...] = ()
) -> tuple[ShardWatch, kopf.OperatorSettings, FakeKube]:
    keeper = LeaseKeeper(
        FakeLeases(),  # type: ignore[arg-type]
        identity="r0",
        namespace="default",
        timings=ShardTimings(timedelta(seconds=3), timedelta(seconds=2), timedelta(seconds=0.5)),
    )
    settings = kopf.OperatorSettings()
    kube = FakeKube(answer)
    return ShardWatch(keeper, settings, Insights(), kube, namespaces=namespaces), settings, kube  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "server_side"),
    [
        ({"metadata": {"resourceVersion": "5", "shardInfo": {"selector": "…"}}, "items": []}, True),
        ({"metadata": {"resourceVersion": "5"}, "items": []}, False),  # 1.28-1.35: ignored
        (RuntimeError("403"), False),
    ],
    ids=["echoed", "ignored", "failed"],
)
async def test_detection_and_the_first_listings_selector(answer: Any, server_side: bool) -> None:
    watch, settings, kube = watch_for(answer, namespaces=("team-a",))
    await watch.start()
    try:
        method, path, params = kube.requests[0]
        assert (method, path) == ("GET", f"/apis/{GROUP}/{VERSION}/namespaces/team-a/{PLURAL}")
        assert params is not None and params["limit"] == "1" and "shardRange(" in params["shardSelector"]
        assert watch.server_side is server_side
        sent = settings.watching.shard_selectors.collect(RESOURCE)
        if server_side:
            # Alone in the ring: the whole hash space, as kopf will send it on list and watch.
            assert sent == [watch.selector] and watch.ranges == [(0, HASH_SPACE)]
        else:
            assert sent == [] and watch.ranges is None and watch.watches("any")
    finally:
        await watch.stop()


def test_watches_and_the_selector_kopf_reads() -> None:
    watch, settings, _ = watch_for({})
    half = 1 << 63
    assert watch._apply([(0, half)])
    assert not watch._apply([(0, half)])  # unchanged
    assert not watch._apply([])  # no member: the selector stays
    assert settings.watching.shard_selectors.collect(RESOURCE) == [
        "shardRange(object.metadata.uid, '0x0', '0x8000000000000000')"
    ]
    uids = [f"uid-{i}" for i in range(50)]
    assert {u for u in uids if watch.watches(u)} == {u for u in uids if fnv1a_64(u) < half}


async def test_relist_stops_kopfs_watcher_and_puts_the_resource_back() -> None:
    """The resource leaves kopf's insights until its watcher task has stopped (kopf names it
    `watcher for <resource>@<namespace>`), then comes back: kopf's orchestrator starts the watch
    anew, which lists with the selector in the settings."""
    watch, _, _ = watch_for({})
    insights: Insights = watch._insights
    insights.watched_resources.add(RESOURCE)
    seen: list[set[Resource]] = []

    async def watcher() -> None:
        await asyncio.sleep(3600)

    async def orchestrator() -> None:  # kopf's, reduced: stops the watcher when the resource goes
        async with insights.revised:
            while True:
                await insights.revised.wait()
                seen.append(set(insights.watched_resources))
                if RESOURCE not in insights.watched_resources:
                    task.cancel()

    task = asyncio.create_task(watcher(), name=f"watcher for {RESOURCE!r}@team-a")
    orchestrating = asyncio.create_task(orchestrator())
    await asyncio.sleep(0)
    await watch.relist(timeout=5)
    await asyncio.sleep(0.01)
    assert task.cancelled()
    assert seen == [set(), {RESOURCE}]
    assert watch.relists == 1
    orchestrating.cancel()


async def test_the_fenced_executor_tells_when_no_fly_mutation_is_in_flight() -> None:
    """A stopping replica releases its Lease once the Fly mutations in flight ended."""
    from types import SimpleNamespace

    from claw_operator.kube.shards import FencedExecutor, ShardFenced

    gate = asyncio.Event()

    class Slow:
        async def execute(self, action: Any, instance: Any, env: Any) -> str:
            await gate.wait()
            return "done"

    watch, _, _ = watch_for({})
    keeper = watch.keeper
    keeper.fence = lambda uid: None  # type: ignore[method-assign]
    fenced = FencedExecutor(Slow(), keeper)
    assert await fenced.drained(0.01)
    call = asyncio.create_task(fenced.execute(None, SimpleNamespace(uid="u1"), None))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert not await fenced.drained(0.01)
    gate.set()
    assert await fenced.drained(1)
    assert await call == "done"
    # Once stopping, nothing more: the fence refuses.
    del keeper.fence
    keeper.stop_acting()
    with pytest.raises(ShardFenced):
        await fenced.execute(None, SimpleNamespace(uid="u1"), None)  # type: ignore[arg-type]
