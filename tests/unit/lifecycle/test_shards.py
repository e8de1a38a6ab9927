"""The sharding core: membership from Leases, rendezvous assignment, the fence."""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from claw_operator.api.sharding import fnv1a_64, shard_selector
from claw_operator.lifecycle.shards import (
    BUCKETS,
    Member,
    RingView,
    ShardTimings,
    assignment,
    bucket,
    bucket_range,
    handover_at,
    inherited,
    lease_name,
    live_members,
    member_from_lease,
    moved,
    owner,
    share,
    watched_share,
)

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
TIMINGS = ShardTimings()
UIDS = [str(uuid.UUID(int=i * 7919 + 13, version=4)) for i in range(3000)]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def wire(
    name: str, holder: str | None, renewed: float | None, acquired: float | None = 0, duration: Any = 15
) -> dict[str, Any]:
    spec: dict[str, Any] = {"leaseDurationSeconds": duration}
    if holder is not None:
        spec["holderIdentity"] = holder
    if renewed is not None:
        spec["renewTime"] = at(renewed).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if acquired is not None:
        spec["acquireTime"] = at(acquired).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"metadata": {"name": name}, "spec": spec}


@dataclass(frozen=True)
class LiveCase:
    reason: str
    leases: list[dict[str, Any]]
    now: float
    live: list[str]


LIVE_CASES = [
    LiveCase("renewed within its duration: live", [wire("claw-operator-a", "a", renewed=10)], 24.9, ["a"]),
    LiveCase("renewTime + duration reached: expired", [wire("claw-operator-a", "a", renewed=10)], 25, []),
    LiveCase("released (holder cleared): gone at once", [wire("claw-operator-a", "", renewed=10)], 11, []),
    LiveCase("no holder at all", [wire("claw-operator-a", None, renewed=10)], 11, []),
    LiveCase("never renewed", [wire("claw-operator-a", "a", renewed=None)], 1, []),
    LiveCase("no duration: expired", [wire("claw-operator-a", "a", renewed=10, duration=None)], 10.5, []),
    LiveCase(
        "a short duration of its own counts, not ours",
        [wire("claw-operator-a", "a", renewed=10, duration=2)],
        12.5,
        [],
    ),
    LiveCase(
        "several members, sorted by identity; one expired",
        [
            wire("claw-operator-c", "c", renewed=9),
            wire("claw-operator-a", "a", renewed=1),
            wire("claw-operator-b", "b", renewed=8),
        ],
        20,
        ["b", "c"],
    ),
    LiveCase(
        "two Leases with one holder: one member",
        [wire("claw-operator-a", "a", renewed=9), wire("claw-operator-a2", "a", renewed=5)],
        10,
        ["a"],
    ),
]


@pytest.mark.parametrize("case", LIVE_CASES, ids=lambda c: c.reason)
def test_live_members(case: LiveCase) -> None:
    assert [m.identity for m in live_members(case.leases, at(case.now))] == case.live


def test_member_reads_microtime_and_duration() -> None:
    member = member_from_lease(wire("claw-operator-a", "a", renewed=3.25, acquired=1))
    assert member == Member("a", "claw-operator-a", at(1), at(3.25), timedelta(seconds=15))
    assert member.expires == at(18.25)


def test_every_uid_has_exactly_one_owner_and_shares_are_even() -> None:
    members = ["claw-operator-x7k2p", "claw-operator-q9d4m", "claw-operator-b3n8w"]
    shares = Counter(owner(uid, members) for uid in UIDS)
    assert set(shares) == set(members) and sum(shares.values()) == len(UIDS)
    for count in shares.values():
        assert abs(count - len(UIDS) / 3) < 0.1 * len(UIDS) / 3


def test_owner_is_independent_of_member_order() -> None:
    members = ["a", "b", "c", "d"]
    assert all(owner(uid, members) == owner(uid, list(reversed(members))) for uid in UIDS[:300])
    assert owner("uid", []) is None


@dataclass(frozen=True)
class MoveCase:
    reason: str
    before: list[str]
    after: list[str]
    changing: str | None  # the member joining or leaving


MOVE_CASES = [
    MoveCase("a member leaves: its UIDs move, and few others", ["a", "b", "c"], ["a", "b"], "c"),
    MoveCase("a member joins: UIDs it wins move to it, and few others", ["a", "b"], ["a", "b", "c"], "c"),
    MoveCase("3 -> 4", ["r0", "r1", "r2"], ["r0", "r1", "r2", "r0-b"], "r0-b"),
    MoveCase("4 -> 3", ["r0", "r1", "r2", "r0-b"], ["r1", "r2", "r0-b"], "r0"),
    MoveCase("first member: everything moves to it", [], ["a"], None),
    MoveCase("last member leaves: everything is unowned", ["a"], [], None),
]


@pytest.mark.parametrize("case", MOVE_CASES, ids=lambda c: c.reason)
def test_membership_changes_move_little_more_than_they_must(case: MoveCase) -> None:
    """Rendezvous with bounded loads: what the member joining wins or leaving held moves
    (about 1/N), plus a few buckets between the others to keep the shares equal."""
    changes = moved(UIDS, case.before, case.after)
    if case.changing is None:
        assert len(changes) == len(UIDS)
        return
    involved = sum(1 for pair in changes.values() if case.changing in pair)
    ideal = len(UIDS) / max(len(case.before), len(case.after))
    assert abs(involved - ideal) < 0.1 * ideal
    assert len(changes) - involved < 0.1 * len(UIDS), "few moves between the other members"


def view(
    me: str, members: list[Member], seen: float, renewed: float | None, *, founder: bool = False
) -> RingView:
    return RingView(me, tuple(members), at(seen), None if renewed is None else at(renewed), TIMINGS, founder)


def member(identity: str, acquired: float, renewed: float) -> Member:
    return Member(identity, lease_name(identity), at(acquired), at(renewed), TIMINGS.lease_duration)


@dataclass(frozen=True)
class MutateCase:
    reason: str
    seen: float
    renewed: float | None
    now: float
    members: list[str]
    can_mutate: bool


MUTATE_CASES = [
    MutateCase("renewed and listed just now", 100, 100, 100.5, ["a", "b"], True),
    MutateCase("renew deadline passed without a renew: stop at once", 100, 90, 100, ["a", "b"], False),
    MutateCase("renewed 9.9 s ago: still inside the deadline", 100, 90.1, 100, ["a", "b"], True),
    MutateCase("view of the ring older than the deadline", 90, 100, 100, ["a", "b"], False),
    MutateCase("never held a Lease", 100, None, 100, ["b"], False),
    MutateCase("own Lease not among the live ones", 100, 100, 100, ["b"], False),
]


@pytest.mark.parametrize("case", MUTATE_CASES, ids=lambda c: c.reason)
def test_can_mutate(case: MutateCase) -> None:
    members = [member(m, 0, case.seen) for m in case.members]
    assert view("a", members, case.seen, case.renewed).can_mutate(at(case.now)) is case.can_mutate


@dataclass(frozen=True)
class FenceCase:
    reason: str
    me_acquired: float
    others_acquired: list[float]  # one other member per entry
    founder: bool
    now: float
    settled: bool


FENCE_CASES = [
    FenceCase("founded the ring (alone after creating its Lease): acts at once", 100, [], True, 100, True),
    FenceCase("founder keeps acting when others join", 100, [101], True, 102, True),
    FenceCase("joined a live member 5 s ago: waits a lease duration", 100, [0], False, 105, False),
    FenceCase("joined a live member 15 s ago: acts", 100, [0], False, 115, True),
    FenceCase("joined an unsettled founder: waits all the same", 101, [100], False, 110, False),
    FenceCase("not the founder, alone now (the others left): waits", 100, [], False, 110, False),
]


@pytest.mark.parametrize("case", FENCE_CASES, ids=lambda c: c.reason)
def test_newcomer_waits_until_every_other_replica_saw_it(case: FenceCase) -> None:
    others = [member(f"o{i}", acquired, case.now) for i, acquired in enumerate(case.others_acquired)]
    ring = view(
        "a", [member("a", case.me_acquired, case.now), *others], case.now, case.now, founder=case.founder
    )
    assert ring.settled(at(case.now)) is case.settled
    mine = [uid for uid in UIDS[:200] if ring.owns(uid)]
    assert mine, "this replica owns some UIDs"
    assert all(ring.may_act(uid, at(case.now)) is case.settled for uid in mine)
    # What the others win and already hold (their handover is past) is never this replica's.
    others_settled = [
        o.identity
        for o in others
        if o.acquired is not None
        and o.acquired + TIMINGS.lease_duration - TIMINGS.handover_margin <= at(case.now)
    ]
    theirs = [uid for uid in UIDS[:200] if owner(uid, ["a", *others_settled]) != "a"]
    assert not any(ring.may_act(uid, at(case.now)) for uid in theirs)


def test_a_moving_uid_stays_with_its_previous_owner_until_a_margin_before_the_newcomer_starts() -> None:
    """b joins at t=100 (acquireTime), a first lists it at 101: a keeps acting on what moves to
    b until 100 + lease duration - margin (113), b starts at 115. Never both; unowned 2 s."""
    margin = TIMINGS.handover_margin.total_seconds()
    assert margin == TIMINGS.retry_period.total_seconds()
    a_old = view("a", [member("a", 0, 99)], 99, 99)
    moving = [uid for uid in UIDS[:300] if owner(uid, ["a", "b"]) == "b"]
    assert moving and all(a_old.may_act(uid, at(99.5)) for uid in moving)

    def a_at(now: float) -> RingView:
        return RingView(
            "a",
            (member("a", 0, now), member("b", 100, now)),
            at(now),
            at(now),
            TIMINGS,
            first_seen={"a": at(0), "b": at(101)},
        )

    def b_at(now: float) -> RingView:
        return RingView(
            "b",
            (member("a", 0, now), member("b", 100, now)),
            at(now),
            at(now),
            TIMINGS,
            first_seen={"a": at(100.2), "b": at(100.2)},
        )

    handover = 100 + 15 - margin
    timeline = [99.0, 101.0, 110.0, handover - 0.01, handover, 114.0, 114.99, 115.0, 120.0]
    for now in timeline:
        a_acts = {uid for uid in moving if a_at(now).may_act(uid, at(now))}
        b_acts = {uid for uid in moving if b_at(now).may_act(uid, at(now))}
        assert not (a_acts & b_acts), f"both act at {now}"
        assert a_acts == (set(moving) if now < handover else set()), now
        assert b_acts == (set(moving) if now >= 115 else set()), now
    # What b does not win stays a's throughout.
    kept = [uid for uid in UIDS[:300] if uid not in moving]
    assert all(a_at(now).may_act(uid, at(now)) for now in timeline[1:] for uid in kept)
    # Both see the handover coming: a wakes at 113, b at 115.
    assert a_at(101).next_change(at(101)) == at(handover)
    assert b_at(101).next_change(at(101)) == at(115)
    assert a_at(120).next_change(at(120)) is None
    # a, not seeing b (its listing fails): its view is too old to act by 99 + renew deadline.
    assert not any(a_old.may_act(uid, at(99 + 10)) for uid in moving)


@dataclass(frozen=True)
class HandoverCase:
    reason: str
    acquired: float | None  # the newcomer's acquireTime (its clock)
    first_seen: float | None  # when this replica first listed it (this replica's clock)
    handover: float | None  # when this replica hands it what it wins


HANDOVER_CASES = [
    HandoverCase("seen right after it joined: its acquireTime counts", 100, 100.4, 113),
    HandoverCase("seen late (a listing failed): still its acquireTime", 100, 106, 113),
    HandoverCase("its clock runs ahead of ours: what we saw counts", 105, 101, 114),
    HandoverCase("no acquireTime: first seen", None, 101, 114),
    HandoverCase("nothing known", None, None, None),
]


@pytest.mark.parametrize("case", HANDOVER_CASES, ids=lambda c: c.reason)
def test_handover_at(case: HandoverCase) -> None:
    newcomer = Member(
        "b",
        "claw-operator-b",
        None if case.acquired is None else at(case.acquired),
        at(120),
        TIMINGS.lease_duration,
    )
    got = handover_at(newcomer, None if case.first_seen is None else at(case.first_seen), TIMINGS)
    assert got == (None if case.handover is None else at(case.handover))


def test_a_replica_rejoining_after_a_restart_gets_its_share_back_without_overlap() -> None:
    """A rolling restart, as the survivors and the replacement see it: r1 released its Lease
    (gone at once: r2 and r3 act on its share as soon as they list), then r1 rejoins with a
    fresh acquireTime: r2/r3 act on its share until the handover, r1 from a margin later."""
    r1_back = 50.0
    members = lambda now: (member("r1", r1_back, now), member("r2", 0, now), member("r3", 0, now))  # noqa: E731

    def survivor(me: str, now: float) -> RingView:
        return RingView(me, members(now), at(now), at(now), TIMINGS, first_seen={"r1": at(r1_back + 0.3)})

    def newcomer(now: float) -> RingView:
        return RingView(
            "r1", members(now), at(now), at(now), TIMINGS, first_seen={"r2": at(r1_back), "r3": at(r1_back)}
        )

    sample = UIDS[:300]
    for step in range(0, 80):
        now = r1_back + step * 0.25
        acting = Counter(
            name
            for uid in sample
            for name, ring in (
                ("r1", newcomer(now)),
                ("r2", survivor("r2", now)),
                ("r3", survivor("r3", now)),
            )
            if ring.may_act(uid, at(now))
        )
        total = sum(acting.values())
        assert total <= len(sample), f"two replicas act on one instance at {now}"
        handover = r1_back + 15 - TIMINGS.handover_margin.total_seconds()
        if now < handover or now >= r1_back + 15:
            assert total == len(sample), f"unowned instances at {now}"


def test_a_dead_members_uids_go_over_when_its_lease_expires() -> None:
    leases = [wire("claw-operator-a", "a", renewed=50), wire("claw-operator-b", "b", renewed=64)]
    before = live_members(leases, at(64.9))
    after = live_members(leases, at(65))
    assert [m.identity for m in before] == ["a", "b"] and [m.identity for m in after] == ["b"]
    ring = RingView("b", tuple(after), at(65), at(64), TIMINGS)
    assert all(ring.may_act(uid, at(65)) for uid in UIDS[:100])


@pytest.mark.parametrize(
    ("created", "stable_since", "expected"),
    [
        (None, 100, True),
        (50, 100, True),  # existed before the ring changed
        (110, 100, True),  # within a lease duration of the change: a stale view may have acted
        (115.5, 100, False),  # born after every other view caught up: born under watch is safe
    ],
)
def test_inherited(created: float | None, stable_since: float, expected: bool) -> None:
    assert inherited(None if created is None else at(created), at(stable_since), TIMINGS) is expected


def test_timings_must_nest() -> None:
    ShardTimings(timedelta(seconds=3), timedelta(seconds=2), timedelta(seconds=0.5))
    with pytest.raises(ValueError, match="lease duration > renew deadline"):
        ShardTimings(timedelta(seconds=10), timedelta(seconds=10), timedelta(seconds=2))
    with pytest.raises(ValueError, match="lease duration - retry period >= renew deadline"):
        ShardTimings(timedelta(seconds=15), timedelta(seconds=14), timedelta(seconds=2))


def test_lease_name() -> None:
    assert lease_name("web-7d9f") == "claw-operator-web-7d9f"
    assert lease_name("claw-operator-7d9f") == "claw-operator-7d9f"


def test_buckets_are_shared_equally_and_cover_the_hash_space_once() -> None:
    members = ["claw-operator-x7k2p", "claw-operator-q9d4m", "claw-operator-b3n8w"]
    owners = assignment(tuple(sorted(members)))
    assert len(owners) == BUCKETS and set(owners) == set(members)
    loads = Counter(owners)
    assert max(loads.values()) - min(loads.values()) <= 1
    ranges = sorted(r for m in members for r in share(m, members))
    assert ranges[0][0] == 0 and ranges[-1][1] == 1 << 64
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges)), "disjoint and contiguous"
    for uid in UIDS[:500]:
        mine = owner(uid, members)
        assert any(start <= fnv1a_64(uid) < end for start, end in share(mine or "", members))
        assert bucket_range(bucket(uid))[0] <= fnv1a_64(uid) < bucket_range(bucket(uid))[1]


def test_600_random_instances_split_within_15_percent_of_a_third() -> None:
    """The acceptance figure: 3 replicas, 600 instances with random UIDs. Buckets are shared
    exactly; the UIDs' own randomness (a binomial, sd ~5.8 % of a third) is what remains."""
    members = ["claw-operator-0", "claw-operator-1", "claw-operator-2"]
    seeds, within = 300, 0
    for seed in range(seeds):
        rng = random.Random(seed)
        uids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(600)]
        shares = Counter(owner(uid, members) for uid in uids)
        within += all(abs(shares[m] - 200) <= 30 for m in members)
    print(f"600 random UIDs over 3 replicas: {within}/{seeds} seeds within ±15 % of a third")
    assert within >= 0.95 * seeds


def test_the_share_selector_selects_what_the_replica_owns() -> None:
    members = ["r0", "r1", "r2"]
    selector = shard_selector(share("r1", members))
    assert selector.startswith("shardRange(object.metadata.uid, '0x")
    terms = selector.split(" || ")
    bounds = [tuple(int(x, 16) for x in re.findall(r"'(0x[0-9a-f]+)'", term)) for term in terms]
    for uid in UIDS[:500]:
        selected = any(start <= fnv1a_64(uid) < end for start, end in bounds)
        assert selected == (owner(uid, members) == "r1")


def test_a_leaving_member_hands_its_share_over_at_once_and_rebalanced_buckets_after_the_deadline() -> None:
    """c releases its Lease; a and b see it gone at 50.2 and 50.4 (their listings). What c held
    goes over at once; a bucket bounded loads shift between a and b waits until the renew
    deadline after the departure (a stale view could act that long). Never two at once."""
    before = ["a", "b", "c"]
    after = ["a", "b"]

    def ring(me: str, now: float, gone_seen: float) -> RingView:
        if now < gone_seen:  # not listed since the departure
            return RingView(
                me, tuple(member(m, 0, now) for m in before), at(gone_seen - 0.5), at(now), TIMINGS
            )
        return RingView(
            me,
            tuple(member(m, 0, now) for m in after),
            at(now),
            at(now),
            TIMINGS,
            departed={"c": at(gone_seen)},
        )

    from_c = [u for u in UIDS if owner(u, before) == "c"]
    shifted = [u for u in UIDS if owner(u, before) in after and owner(u, before) != owner(u, after)]
    assert from_c and shifted, "bounded loads shift a few buckets between a and b"
    for now in [49.9, 50.2, 50.3, 50.4, 55.0, 60.19, 60.2, 60.4, 61.0]:
        acts = {
            m: {u for u in UIDS if ring(m, now, seen).may_act(u, at(now))}
            for m, seen in (("a", 50.2), ("b", 50.4))
        }
        assert not (acts["a"] & acts["b"]), now
        if now >= 50.4:
            assert all(u in acts[owner(u, after) or ""] for u in from_c), now
        for u in shifted:
            new, old = owner(u, after), owner(u, before)
            assert (u in acts[new or ""]) is (now >= {"a": 50.2, "b": 50.4}[new or "a"] + 10), (now, u)
            assert (u in acts[old or ""]) is (now < {"a": 50.2, "b": 50.4}[old or "a"]), (now, u)


def _in(ranges: list[tuple[int, int]], uid: str) -> bool:
    return any(start <= fnv1a_64(uid) < end for start, end in ranges)


def test_the_watched_share_covers_what_a_replica_may_act_on_through_a_join_and_a_leave() -> None:
    """Server-side sharding: a replica's watch (`watched_share`) covers every instance it may
    act on at every moment of a join (c joins a and b at t=100) and of a leave (c leaves at
    200), and in steady state it is exactly the replica's share."""
    uids = UIDS[:600]

    def joined(me: str, now: float) -> RingView:
        members = [member("a", 0, now), member("b", 0, now), member("c", 100, now)]
        return RingView(me, tuple(members), at(now), at(now), TIMINGS, first_seen={"c": at(100.2)})

    def left(me: str, now: float) -> RingView:
        return RingView(
            me, (member("a", 0, now), member("b", 0, now)), at(now), at(now), TIMINGS, departed={"c": at(200)}
        )

    moments = [(joined, t) for t in (100.5, 112.0, 113.5, 115.1, 120.0)]
    moments += [(left, t) for t in (200.1, 205.0, 210.5)]
    for ring, now in moments:
        for me in ("a", "b", "c"):
            if ring is left and me == "c":
                continue
            v = ring(me, now)
            watched = watched_share(me, v.rings(at(now)), v.identities)
            acting = [u for u in uids if v.may_act(u, at(now))]
            assert all(_in(watched, u) for u in acting), (me, now)
            assert all(_in(watched, u) for u in uids if v.owns(u)), (me, now)
    # Settled: exactly the share.
    for me in ("a", "b", "c"):
        v = joined(me, 130.0)
        assert watched_share(me, v.rings(at(130.0)), v.identities) == share(me, ["a", "b", "c"])
    # No member (no view of itself): nothing, the caller keeps its selector.
    alone = RingView("x", (member("a", 0, 10),), at(10), None, TIMINGS)
    assert watched_share("x", alone.rings(at(10)), alone.identities) == []
