"""Latency profiles: how long each asynchronous step takes, with seeded jitter.

`fast` keeps every step in milliseconds so contract tests finish quickly; `realistic` uses the
seconds Fly users report (image pull and boot of a small image, a graceful stop, a destroy),
for the demo and benchmarks. All durations are drawn when a request is accepted (never when a
timer fires), so the draws follow the request sequence and a seed reproduces a run exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class LatencyProfile:
    """Mean seconds of each simulated step; each draw varies by +/- `jitter` (a fraction)."""

    name: str
    # A mutating call is answered first; the first state change follows after `ack`.
    ack: float
    # created -> starting: image pull and rootfs build (70 s on a cold host, hours when stuck) [O].
    prepare: float
    # starting -> started.
    boot: float
    # stopping -> stopped.
    stop: float
    # After `stopped`, start is still refused for this long: "machine still active" [O].
    still_active_tail: float
    suspend: float
    # restarting -> started.
    restart: float
    # replacing -> (starting|stopped): the update's pull of the new version.
    replace: float
    # destroying -> destroyed.
    destroy: float
    # GET keeps answering `state: destroyed` this long, then 404 [O].
    destroyed_visible: float
    # A destroyed machine keeps its volume claimed this long [O] ("up to a few minutes").
    volume_detach: float
    # `attached_machine_id` catches up with a new mount after this long [O].
    volume_attach: float
    # Fork (`hydrating`) or restore (`restoring`) of a volume, and `extending`.
    volume_hydrate: float
    volume_extend: float
    # scheduling_destroy -> pending_destroy, then the soft-deleted volume stays listed this long.
    volume_schedule_destroy: float
    volume_soft_delete: float
    # `sim-exit` machines exit on their own this long after `started`.
    sentinel_exit: float
    # A machine is invisible to GET/wait for this long right after create (0 = off) [O].
    not_found_after_create: float
    jitter: float

    def with_overrides(self, **seconds: float) -> LatencyProfile:
        known = {field.name for field in fields(self)}
        unknown = set(seconds) - known
        if unknown:
            raise ValueError(f"unknown profile fields: {sorted(unknown)}")
        changes: dict[str, Any] = dict(seconds)
        return replace(self, **changes)


FAST = LatencyProfile(
    name="fast",
    ack=0.002,
    prepare=0.02,
    boot=0.02,
    stop=0.02,
    still_active_tail=0.01,
    suspend=0.02,
    restart=0.03,
    replace=0.02,
    destroy=0.02,
    destroyed_visible=0.3,
    volume_detach=0.1,
    volume_attach=0.01,
    volume_hydrate=0.03,
    volume_extend=0.02,
    volume_schedule_destroy=0.01,
    volume_soft_delete=0.5,
    sentinel_exit=0.05,
    not_found_after_create=0.0,
    jitter=0.25,
)

REALISTIC = LatencyProfile(
    name="realistic",
    ack=0.15,
    prepare=3.0,
    boot=2.0,
    stop=2.5,
    still_active_tail=1.0,
    suspend=2.0,
    restart=4.0,
    replace=3.0,
    destroy=1.5,
    destroyed_visible=30.0,
    volume_detach=20.0,
    volume_attach=1.0,
    volume_hydrate=8.0,
    volume_extend=2.0,
    volume_schedule_destroy=1.0,
    volume_soft_delete=24 * 3600.0,
    sentinel_exit=5.0,
    not_found_after_create=0.0,
    jitter=0.3,
)

PROFILES: dict[str, LatencyProfile] = {profile.name: profile for profile in (FAST, REALISTIC)}


def resolve_profile(profile: str | LatencyProfile) -> LatencyProfile:
    if isinstance(profile, LatencyProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}") from None


class Pacer:
    """Draws step durations from a profile with seeded jitter."""

    def __init__(self, profile: LatencyProfile, seed: int) -> None:
        self.profile = profile
        self._rng = random.Random(f"flysim:{seed}:durations")

    def draw(self, step: str) -> float:
        mean: float = getattr(self.profile, step)
        if mean <= 0:
            return 0.0
        spread = self.profile.jitter
        return mean * (1.0 + self._rng.uniform(-spread, spread))

    def exact(self, step: str) -> float:
        """A window without jitter (visibility windows are compared against in tests)."""
        value: float = getattr(self.profile, step)
        return value
