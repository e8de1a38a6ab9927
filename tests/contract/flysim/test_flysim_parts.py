"""The simulator's pure parts: globs, tokens, ULIDs, buckets, the manual clock, profiles."""

from __future__ import annotations

import pytest

from claw_operator.sim.flysim import FAST, ManualClock
from claw_operator.sim.flysim.auth import bare_token
from claw_operator.sim.flysim.faults import glob_matches
from claw_operator.sim.flysim.ids import IdFactory, encode_ulid
from claw_operator.sim.flysim.machines import host_reservation, image_tag
from claw_operator.sim.flysim.ratelimit import ACTION_RULE, RateLimiter


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/v1/apps/*/machines", "/v1/apps/a/machines", True),
        ("/v1/apps/*/machines", "/v1/apps/a/machines/m", False),
        ("/v1/apps/*/machines/*", "/v1/apps/a/machines/m", True),
        ("/v1/apps/*", "/v1/apps", False),
        ("/v1/**", "/v1/apps/a/volumes/v/extend", True),
        ("/v1/apps/b/machines", "/v1/apps/a/machines", False),
    ],
)
def test_fault_paths_glob_one_segment_per_star(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer x", "x"), ("FlyV1 fm2_x", "fm2_x"), ("Bearer FlyV1 fm2_x", "fm2_x"), ("", None), (None, None)],
)
def test_tokens_lose_their_schemes(header: str | None, token: str | None) -> None:
    assert bare_token(header) == token


def test_ulids_sort_by_time_and_ids_repeat_per_seed() -> None:
    assert encode_ulid(0, 0) == "0" * 26
    assert encode_ulid(1_000, 0) < encode_ulid(2_000, 0)
    first, again, other = IdFactory(1), IdFactory(1), IdFactory(2)
    assert [first.machine_id(), first.volume_id()] == [again.machine_id(), again.volume_id()]
    assert first.machine_id() != other.machine_id()
    assert IdFactory.token_owner("a") == IdFactory.token_owner("a") != IdFactory.token_owner("b")


def test_token_bucket_refills_on_the_clock() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    assert [limiter.take("start", "m1", ACTION_RULE) for _ in range(3)] == [None, None, None]
    wait = limiter.take("start", "m1", ACTION_RULE)
    assert wait == pytest.approx(1.0) and limiter.rejected == 1
    assert limiter.take("start", "m2", ACTION_RULE) is None
    clock.advance(0.5)
    assert limiter.take("start", "m1", ACTION_RULE) == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.take("start", "m1", ACTION_RULE) is None


def test_manual_clock_runs_due_callbacks_in_order_and_skips_cancelled() -> None:
    clock = ManualClock(epoch=100.0)
    fired: list[str] = []
    clock.call_later(2, lambda: fired.append("b"))
    clock.call_later(1, lambda: fired.append("a"))
    clock.call_later(1.5, lambda: fired.append("x")).cancel()
    clock.advance(1.9)
    assert fired == ["a"] and clock.now() == pytest.approx(101.9)
    clock.advance(0.1)
    assert fired == ["a", "b"] and clock.pending() == 0


def test_host_reservations_images_and_profile_overrides() -> None:
    assert host_reservation({"size": "shared-cpu-2x"}) == (0, 512), "shared vCPUs are oversubscribed"
    assert host_reservation({"size": "performance-1x"}) == (1, 2048)
    assert host_reservation({"guest": {"cpu_kind": "performance", "cpus": 2, "memory_mb": 4096}}) == (2, 4096)
    assert host_reservation({"guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 1024}}) == (0, 1024)
    assert host_reservation({}) == (0, 256)
    assert image_tag("registry.fly.io:443/app/claw:sim-exit@sha256:00") == "sim-exit"
    assert image_tag("nginx") == "latest"
    assert FAST.with_overrides(boot=1.0).boot == 1.0
    with pytest.raises(ValueError):
        FAST.with_overrides(bogus=1.0)
