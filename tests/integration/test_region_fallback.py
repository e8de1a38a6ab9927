"""Region fallback for the first volume (issue 12, part 1, first step), against the real
operator, kubesim and flysim: with `region` full, the volume goes to the first fallback region
with room, the machine follows it, and `status.region` says where."""

from __future__ import annotations

from tests.integration.conftest import Sandbox


def test_the_first_volume_falls_back_to_the_next_region_with_room(sandbox: Sandbox) -> None:
    sandbox.fly.call(sandbox.fly.sim.set_capacity, "iad", max_volumes=0)
    sandbox.fly.call(sandbox.fly.sim.set_capacity, "ord", max_volumes=0)
    sandbox.start_operator()
    sandbox.create("roamer", fallbackRegions=["ord", "ewr", "lax"])
    status = sandbox.wait_phase("roamer", "Running", timeout=20)
    assert status["region"] == "ewr"
    (volume,) = sandbox.volumes()
    (machine,) = sandbox.live_machines()
    assert volume["region"] == "ewr" and machine["region"] == "ewr"
    assert volume["id"] == status["volumeId"]
    sandbox.wait_condition("roamer", "Ready", "True", "Running")


def test_every_region_full_is_insufficient_capacity_and_retried(sandbox: Sandbox) -> None:
    for region in ("iad", "ord"):
        sandbox.fly.call(sandbox.fly.sim.set_capacity, region, max_volumes=0)
    sandbox.start_operator()
    sandbox.create("stuck", fallbackRegions=["ord"])
    cond = sandbox.wait_condition("stuck", "StartFailed", "True", "InsufficientCapacity", timeout=15)
    assert "capacity" in cond["message"]
    assert sandbox.volumes() == []
    # Room in the fallback region: the retry lands there.
    sandbox.fly.call(sandbox.fly.sim.set_capacity, "ord", max_volumes=10)
    status = sandbox.wait_phase("stuck", "Running", timeout=20)
    assert status["region"] == "ord"
