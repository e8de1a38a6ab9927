"""SharedListing: one app-wide Fly list answers every lookup that joined it, and a lookup never
gets the answer of a list sent before it began (so sharing proves what a list of its own would)."""

from __future__ import annotations

import asyncio

import pytest

from claw_operator.edge.listings import SharedListing


class FakeFly:
    """Counts list calls; each call returns the objects that exist when it is sent."""

    def __init__(self) -> None:
        self.objects: dict[str, list[str]] = {}
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()
        self.fail: Exception | None = None

    async def list(self, app: str) -> dict[str, list[str]]:
        self.calls += 1
        snapshot = {key: list(values) for key, values in self.objects.items()}
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return snapshot


async def let_tasks_run() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_concurrent_lookups_of_one_app_share_one_list() -> None:
    fly = FakeFly()
    fly.objects = {"uid-a": ["m1"], "uid-b": ["m2", "m3"]}
    listing: SharedListing[str] = SharedListing(fly.list)
    answers = await asyncio.gather(*(listing.lookup("app", f"uid-{k}") for k in "abcabc"))
    assert answers == [("m1",), ("m2", "m3"), (), ("m1",), ("m2", "m3"), ()]
    assert fly.calls == 1


async def test_each_app_has_its_own_lists() -> None:
    fly = FakeFly()
    listing: SharedListing[str] = SharedListing(fly.list)
    await asyncio.gather(listing.lookup("one", "x"), listing.lookup("two", "x"))
    assert fly.calls == 2


async def test_a_lookup_never_gets_a_list_sent_before_it_began() -> None:
    """A create made while a list is in flight is seen by the lookups that began after it."""
    fly = FakeFly()
    fly.release.clear()
    listing: SharedListing[str] = SharedListing(fly.list)
    early = asyncio.create_task(listing.lookup("app", "uid-a"))
    await let_tasks_run()  # the first list is sent (and answers with what existed then)
    assert fly.calls == 1
    fly.objects = {"uid-a": ["created-meanwhile"]}
    late = [asyncio.create_task(listing.lookup("app", "uid-a")) for _ in range(3)]
    await let_tasks_run()
    assert fly.calls == 1  # one list in flight per app: the late lookups wait for the next
    fly.release.set()
    assert await early == ()
    assert [await task for task in late] == [("created-meanwhile",)] * 3
    assert fly.calls == 2  # the three late lookups shared the second list


async def test_a_failed_list_fails_every_lookup_that_joined_it_then_recovers() -> None:
    fly = FakeFly()
    fly.fail = RuntimeError("503")
    listing: SharedListing[str] = SharedListing(fly.list)
    results = await asyncio.gather(
        listing.lookup("app", "a"), listing.lookup("app", "b"), return_exceptions=True
    )
    assert [str(r) for r in results] == ["503", "503"]
    fly.fail = None
    fly.objects = {"a": ["m"]}
    assert await listing.lookup("app", "a") == ("m",)


async def test_a_cancelled_lookup_does_not_cancel_the_others() -> None:
    fly = FakeFly()
    fly.release.clear()
    fly.objects = {"a": ["m"]}
    listing: SharedListing[str] = SharedListing(fly.list)
    cancelled = asyncio.create_task(listing.lookup("app", "a"))
    kept = asyncio.create_task(listing.lookup("app", "a"))
    await let_tasks_run()
    cancelled.cancel()
    fly.release.set()
    assert await kept == ("m",)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
