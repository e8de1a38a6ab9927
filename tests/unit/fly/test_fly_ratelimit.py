"""The client-side token buckets (aiolimiter) keyed per action and identifier."""

import asyncio

import pytest

from claw_operator.fly import FlyRateLimiter, RateLimits


@pytest.mark.looptime
async def test_buckets_are_per_action_and_identifier() -> None:
    limiter = FlyRateLimiter(RateLimits(action_rate=1.0, action_burst=3, headroom=1.0, reserve=0))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):
        async with limiter.bucket("start", "m1"):
            pass
    # m1's start bucket is empty; its stop bucket and m2's start bucket are not.
    async with limiter.bucket("stop", "m1"), limiter.bucket("start", "m2"):
        pass
    assert loop.time() == start
    async with limiter.bucket("start", "m1"):
        pass
    assert loop.time() - start == pytest.approx(1.0, abs=0.01)


@pytest.mark.looptime
async def test_headroom_paces_slightly_below_flys_rate() -> None:
    limiter = FlyRateLimiter(RateLimits(action_rate=1.0, action_burst=1, headroom=0.8, reserve=0))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):
        async with limiter.bucket("start", "m1"):
            pass
    assert loop.time() - start == pytest.approx(2 / 0.8, abs=0.01)


async def test_disabled_limiter_never_waits_nor_keeps_buckets() -> None:
    limiter = FlyRateLimiter(RateLimits(enabled=False))
    for _ in range(100):
        async with limiter.bucket("start", "m1"):
            pass
    assert len(limiter) == 0


async def test_idle_buckets_are_forgotten_beyond_the_cap() -> None:
    limiter = FlyRateLimiter(RateLimits(max_buckets=2, action_rate=1000.0, action_burst=1))
    for machine in ("m1", "m2", "m3", "m4"):
        async with limiter.bucket("start", machine):
            pass
        await asyncio.sleep(0.01)  # at 1000/s the bucket drains: idle again
    assert len(limiter) == 2  # the least recently used idle buckets went first


def test_headroom_must_be_a_fraction() -> None:
    with pytest.raises(ValueError):
        FlyRateLimiter(RateLimits(headroom=1.5))


@pytest.mark.looptime
async def test_defaults_keep_a_margin_below_flys_documented_limits() -> None:
    # Fly: 1/s with bursts of 3. The client: bursts of 2 (one token in reserve) at 0.9/s.
    limiter = FlyRateLimiter(RateLimits())
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = []
    for _ in range(4):
        async with limiter.bucket("start", "m1"):
            sent.append(loop.time() - start)
    assert sent == pytest.approx([0, 0, 1 / 0.9, 2 / 0.9], abs=0.01)


def test_reserve_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        FlyRateLimiter(RateLimits(reserve=-1))
