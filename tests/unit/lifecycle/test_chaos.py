"""Seeded chaos against the fake Fly: whatever fails and in whatever order, the decisions never
duplicate a machine, never leave Destroying once deleting, never create while deleting, and
reach Running once Fly behaves. (Seeded: every failure reproduces with its seed.)"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from claw_operator.api import CONDITION_TYPES, Phase
from claw_operator.lifecycle.model import (
    Action,
    ActionResult,
    CreateMachine,
    CreateVolume,
    FailureKind,
    Instance,
    Mount,
)
from tests.unit.lifecycle.builders import failure, instance, reconfigured
from tests.unit.lifecycle.test_scenarios import FakeFly, World

TICK = timedelta(seconds=30)
TRANSIENT = (
    failure(FailureKind.UNAVAILABLE, 503, "unavailable"),
    failure(FailureKind.CAPACITY, 412, "no capacity"),
    failure(FailureKind.RATE_LIMITED, 429, "slow down"),
)


class ChaoticFly(FakeFly):
    """Fails a share of actions; some failures happen *after* the action took effect."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        self.calm = False

    def execute(self, action: Action, inst: Instance) -> ActionResult:
        if self.calm or self.rng.random() > 0.35:
            return self._landed(action, inst)
        if self.rng.random() < 0.5:
            self._landed(action, inst)  # silent success: done on Fly, answer lost
            return ActionResult(failure=failure(FailureKind.TIMEOUT, None, "answer lost"))
        self.calls.append(type(action).__name__)
        return ActionResult(failure=self.rng.choice(TRANSIENT))

    def _landed(self, action: Action, inst: Instance) -> ActionResult:
        return super().execute(action, inst)

    def meddle(self) -> None:
        """What happens to machines behind the operator's back."""
        if self.calm or not self.machines or self.rng.random() > 0.2:
            return
        machine_id = self.rng.choice(sorted(self.machines))
        fate = self.rng.choice(("stopped", "failed", "gone", "remounted"))
        if fate == "gone":
            del self.machines[machine_id]
        elif fate == "remounted":
            stray = (Mount("vol-stray", "/root"),)
            self.machines[machine_id] = reconfigured(self.machines[machine_id], mounts=stray)
        else:
            self.machines[machine_id] = replace(self.machines[machine_id], state=fate)


def _live_tagged(world: World) -> int:
    return sum(
        1
        for m in world.fly.machines.values()
        if m.metadata.get("claw_instance_uid") == world.inst.uid
        and m.state not in ("destroyed", "destroying")
    )


@pytest.mark.parametrize("seed", range(60))
def test_chaos_never_duplicates_and_converges(seed: int) -> None:
    rng = random.Random(seed)
    fly = ChaoticFly(rng)
    world = World(instance(), fly=fly)
    for step in range(40):
        fly.meddle()
        if rng.random() < 0.05:
            world.edit(restarted_at=f"restart-{step}")
        world.step()
        world.now += TICK
        assert _live_tagged(world) <= 1, f"seed {seed}: duplicate machines {sorted(fly.machines)}"
        assert [c.type for c in world.inst.status.conditions] == list(CONDITION_TYPES)
    fly.calm = True
    for attempt in range(20):
        if any(c.type == "Stalled" and c.status.value == "True" for c in world.inst.status.conditions):
            # A legitimate stall (e.g. StartTimeout after minutes of failures): the user's way
            # out is a reconcile request.
            world.inst = replace(world.inst, reconcile_request=f"retry-{attempt}")
        world.step()
        world.now += TICK
        # At rest: Running, and no capacity recovery left to finish (its old volume to delete).
        if world.condition("Ready") == ("True", "Running") and world.inst.status.stranded_volume_id is None:
            break
    status = world.inst.status
    assert status.phase == Phase.RUNNING, f"seed {seed}: ended {status.phase} ({status.machine_state})"
    assert _live_tagged(world) == 1 and status.machine_id in fly.machines
    mounted = fly.machines[status.machine_id or ""].mounts
    assert [m.volume for m in mounted] == [status.volume_id]
    assert list(fly.volumes) == [status.volume_id], f"seed {seed}: leaked volumes"


@pytest.mark.parametrize("seed", range(30))
def test_chaos_delete_stays_destroying_and_leaves_nothing(seed: int) -> None:
    rng = random.Random(1000 + seed)
    fly = ChaoticFly(rng)
    world = World(instance(), fly=fly)
    for _ in range(rng.randrange(1, 8)):
        world.step()
    world.inst = replace(world.inst, deleting=True)
    calls_before = len(fly.calls)
    finalized = False
    for _ in range(60):
        decision = world.step()
        world.now += TICK
        assert world.inst.status.phase == Phase.DESTROYING
        if decision.finalize:
            finalized = True
            break
    assert finalized, f"seed {seed}: never finalized"
    created = [c for c in fly.calls[calls_before:] if c in (CreateMachine.__name__, CreateVolume.__name__)]
    assert created == []
    assert _live_tagged(world) == 0
    assert world.inst.status.volume_id is None
    assert fly.volumes == {}, f"seed {seed}: leaked volumes"
