"""LeaseKeeper against kubesim over HTTP: membership, the fence, partitions, release.

Short timings (lease 3 s, renew deadline 2 s, retry 0.25 s); each test waits on conditions,
never on wall-clock limits.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from claw_operator.kube.kubeapi import KubeApi
from claw_operator.kube.shards import LeaseApi, LeaseKeeper
from claw_operator.lifecycle.shards import RING_LABEL, RING_NAME, ShardTimings
from claw_operator.sim.kubesim import KubeSim
from tests.fixtures.kubesim import kubesim

__all__ = ["kubesim"]

TIMINGS = ShardTimings(timedelta(seconds=3), timedelta(seconds=2), timedelta(seconds=0.25))
UIDS = [str(uuid.uuid4()) for _ in range(300)]


def configuration(kubeconfig: Path) -> client.Configuration:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    return cfg


def lease_api(kubeconfig: Path, user_agent: str) -> LeaseApi:
    api_client = client.ApiClient(configuration(kubeconfig))
    return LeaseApi(KubeApi(api_client, connections=4, timeout=0.5, user_agent=user_agent))


class Ring:
    def __init__(self, sim: KubeSim, workdir: Path) -> None:
        self.sim, self.workdir = sim, workdir
        self.keepers: dict[str, LeaseKeeper] = {}
        self.gained: dict[str, list[str]] = {}

    async def join(self, identity: str) -> LeaseKeeper:
        kubeconfig = self.sim.write_kubeconfig(self.workdir / f"kubeconfig-{identity}", token=identity)
        api = lease_api(kubeconfig, f"test/{identity}")
        self.gained[identity] = []
        keeper = LeaseKeeper(
            api,
            identity=identity,
            namespace="default",
            timings=TIMINGS,
            on_gained=self.gained[identity].append,
        )
        for uid in UIDS:
            keeper.track(uid, None)
        await keeper.start()
        self.keepers[identity] = keeper
        return keeper

    async def until(self, condition: Callable[[], bool], timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)

    async def partition(self, identity: str) -> None:
        self.sim.api.partitions.add(token=identity, user_agent=None, mode="hang")

    async def close(self) -> None:
        for keeper in self.keepers.values():
            await keeper.stop(release=False)


@pytest.fixture
async def ring(kubesim: KubeSim, tmp_path: Path) -> AsyncIterator[Ring]:
    made = Ring(kubesim, tmp_path)
    try:
        yield made
    finally:
        kubesim.api.partitions.remove()
        await made.close()


def acting(keepers: dict[str, LeaseKeeper], uid: str) -> list[str]:
    return [name for name, keeper in keepers.items() if keeper.may_act(uid)]


def balanced(ring: Ring) -> bool:
    """Every replica sees every other, and each UID is acted on by exactly its owner."""
    names = tuple(sorted(ring.keepers))
    return all(keeper.members() == names for keeper in ring.keepers.values()) and all(
        acting(ring.keepers, uid) == [name for name, k in ring.keepers.items() if k.owns(uid)] for uid in UIDS
    )


async def test_founder_acts_at_once_and_its_lease_is_a_ring_member(ring: Ring, kubesim: KubeSim) -> None:
    a = await ring.join("a")
    assert a.can_mutate() and a.members() == ("a",)
    assert all(a.may_act(uid) for uid in UIDS)  # founded the ring: nobody else can be acting
    lease = kubesim.get("coordination.k8s.io/v1", "Lease", "claw-operator-a", "default")
    assert lease is not None
    assert lease["metadata"]["labels"] == {RING_LABEL: RING_NAME}
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 3


async def test_a_newcomer_takes_its_share_only_after_the_fence(ring: Ring) -> None:
    a = await ring.join("a")
    b = await ring.join("b")
    assert b.members() == ("a", "b") and b.can_mutate()
    mine_b = [uid for uid in UIDS if b.owns(uid)]
    assert 0 < len(mine_b) < len(UIDS)
    assert not any(b.may_act(uid) for uid in UIDS)  # unsettled: a may not have seen it yet
    await ring.until(lambda: a.members() == ("a", "b"))
    # a keeps acting on b's share until a margin before b may start: never both, never long none.
    assert all(a.may_act(uid) for uid in mine_b)
    await ring.until(lambda: not a.may_act(mine_b[0]) or b.may_act(mine_b[0]))
    assert not any(a.may_act(uid) and b.may_act(uid) for uid in mine_b)
    assert not a.may_act(mine_b[0]) and not b.may_act(mine_b[0])  # a stopped first
    await ring.until(lambda: b.may_act(mine_b[0]))
    await ring.until(lambda: balanced(ring))
    for uid in UIDS:
        assert len(acting(ring.keepers, uid)) == 1
    assert a.handovers["lost"] == len(mine_b) and b.owned_count() == len(mine_b)
    # Each gained instance is announced once (its HandedOver Event), the kept ones never.
    assert all(b.handed_over(uid) == "a" for uid in mine_b)
    assert b.handovers["gained"] == len(mine_b)
    assert not any(b.handed_over(uid) for uid in UIDS)
    assert not any(a.handed_over(uid) for uid in UIDS)


async def test_a_partitioned_replica_stops_before_its_lease_expires(ring: Ring, kubesim: KubeSim) -> None:
    a = await ring.join("a")
    b = await ring.join("b")
    await ring.until(lambda: balanced(ring))
    mine_b = [uid for uid in UIDS if b.owns(uid)]
    await ring.partition("b")
    await ring.until(lambda: not b.can_mutate())
    lease = kubesim.get("coordination.k8s.io/v1", "Lease", "claw-operator-b", "default")
    assert lease is not None and a.view() is not None
    # b stopped while its Lease is still live for everyone else: nobody acts on its share.
    assert "b" in a.members()
    assert not any(acting(ring.keepers, uid) for uid in mine_b)
    # Once it expires, a takes b's instances over, each handed to on_gained (recovery lists).
    await ring.until(lambda: a.members() == ("a",) and all(a.may_act(uid) for uid in mine_b))
    assert not any(b.may_act(uid) for uid in UIDS)
    for uid in mine_b:
        a.before_pass(uid)
    assert set(mine_b) <= set(ring.gained["a"])
    # Healed: b acquires its Lease anew, a newcomer again; a stops on b's share first.
    kubesim.api.partitions.remove()
    await ring.until(lambda: b.can_mutate() and a.members() == ("a", "b"))
    assert not any(b.may_act(uid) for uid in mine_b)  # a acts on them until the handover
    await ring.until(lambda: balanced(ring))


async def test_gained_instances_are_not_born_under_watch(ring: Ring) -> None:
    a = await ring.join("a")
    b = await ring.join("b")
    await ring.until(lambda: balanced(ring))
    for uid in UIDS:
        if b.may_act(uid):
            b.before_pass(uid)
    assert set(ring.gained["b"]) == {uid for uid in UIDS if b.owns(uid)}  # no creationTimestamp known
    await b.stop(release=True)
    await ring.until(lambda: a.members() == ("a",))
    for uid in UIDS:
        a.before_pass(uid)
        a.before_pass(uid)  # once per ring change
    assert sorted(ring.gained["a"]) == sorted(UIDS)


async def test_release_hands_over_at_once(ring: Ring, kubesim: KubeSim) -> None:
    a = await ring.join("a")
    b = await ring.join("b")
    await ring.until(lambda: balanced(ring))
    await b.stop(release=True)
    lease = kubesim.get("coordination.k8s.io/v1", "Lease", "claw-operator-b", "default")
    assert lease is not None and lease["spec"]["holderIdentity"] == ""
    # a takes over on its next listing, long before b's lease duration would have passed.
    await ring.until(lambda: all(a.may_act(uid) for uid in UIDS), timeout=2.5)
    assert not b.can_mutate()


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def test_a_late_renew_resumes_and_an_expired_lease_is_acquired_anew(
    kubesim: KubeSim, tmp_path: Path
) -> None:
    """Driven step by step on a fake clock: past the renew deadline nothing may be mutated; a
    renew that lands before the Lease can have expired for anyone resumes as before (same
    acquireTime, still settled); one that lands later joins anew (a fresh acquireTime)."""
    clock = FakeClock()
    kubeconfig = kubesim.write_kubeconfig(tmp_path / "kubeconfig-a", token="a")
    api = lease_api(kubeconfig, "test/a")
    keeper = LeaseKeeper(api, identity="a", namespace="default", timings=TIMINGS, clock=clock)
    keeper.track(UIDS[0], None)

    def lease() -> dict[str, Any]:
        found = kubesim.get("coordination.k8s.io/v1", "Lease", "claw-operator-a", "default")
        assert found is not None
        return found

    try:
        await keeper.step()
        first = lease()["spec"]
        assert keeper.may_act(UIDS[0])
        kubesim.api.partitions.add(token="a", user_agent=None, mode="error")
        clock.advance(2.1)  # past the renew deadline (2 s), before a possible expiry (2.5 s)
        await keeper.step()
        assert not keeper.can_mutate() and not keeper.may_act(UIDS[0])
        kubesim.api.partitions.remove()
        clock.advance(0.2)
        await keeper.step()
        assert keeper.may_act(UIDS[0])
        resumed = lease()["spec"]
        assert resumed["acquireTime"] == first["acquireTime"] and resumed["renewTime"] != first["renewTime"]

        kubesim.api.partitions.add(token="a", user_agent=None, mode="error")
        clock.advance(2.6)  # the others may have seen it expire
        await keeper.step()
        kubesim.api.partitions.remove()
        await keeper.step()
        again = lease()["spec"]
        assert again["acquireTime"] != first["acquireTime"]
        assert again["leaseTransitions"] == first["leaseTransitions"] + 1
        assert keeper.can_mutate()
        assert keeper.may_act(UIDS[0])  # alone in the ring after acquiring: it founds it again
    finally:
        await keeper.stop(release=False)


async def test_the_keeper_uses_exactly_the_lease_verbs_the_chart_grants(ring: Ring, kubesim: KubeSim) -> None:
    """helm/claw-operator grants get, list, create, update on leases (templates/shards.yaml)."""
    a = await ring.join("a")
    await ring.join("b")
    await ring.until(lambda: balanced(ring))
    await a.stop(release=True)
    collection = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    used = {
        (verb, route)
        for (verb, route), count in kubesim.request_counts.items()
        if route.startswith(collection) and count
    }
    assert used == {
        ("GET", collection + "/{name}"),  # get
        ("GET", collection),  # list
        ("POST", collection),  # create
        ("PUT", collection + "/{name}"),  # update
    }
