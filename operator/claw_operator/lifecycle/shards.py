"""Which operator replica acts on which ClawInstance (`claw-operator run --shards auto`).

Pure decisions over the ring's Leases; `kube/shards.py` does the I/O.

- **Membership**: every replica holds one `coordination.k8s.io/v1` Lease labelled as a member
  of the ring. A member is *live* while `renewTime + leaseDurationSeconds > now` and its
  `holderIdentity` is set (a replica that shuts down releases its Lease by clearing it).
- **Assignment**: the 64-bit FNV-1a hash of `metadata.uid` (KEP-5866's, `api/sharding.py`)
  falls in one of BUCKETS equal buckets of the hash space; the buckets go to the live members
  by rendezvous (highest-random-weight) hashing with bounded loads, so shares differ by at
  most one bucket and a member joining or leaving moves little more than its share. Every
  replica that sees the same Leases computes the same owner, with no coordinator, and a
  member's share is a union of hash ranges (a `shardSelector`).
- **The fence**: two replicas never act on one instance at once. A replica acts only while
  its own view of the ring is at most `renew_deadline` old and its Lease was renewed within
  `renew_deadline` (otherwise it stops all Fly mutations at once).
  - What a member that *left* held moves when its Lease expired (`renewTime +
    leaseDurationSeconds`) or was released: by then it had stopped, since it stops
    `renew_deadline` (< `lease_duration`) after its last successful renew.
  - A newcomer acts on nothing until it is *settled*: `acquireTime + lease_duration` has
    passed (every other live member listed its Lease by then) — unless it *founded* the ring:
    the first listing after its Lease was created showed no other live member.
  - What moves because a member *joined* changes hands at two moments the others compute
    from its Lease as they observed it (`handover_at`): its previous owner stops
    `handover_margin` (one retry period) before the newcomer settles, its new owner (the
    newcomer, or another member when bounded loads shift a bucket) starts at that settling.
    Unowned for about the margin, never for a lease duration; never owned twice while the
    clocks agree within the margin.
  Two replicas acting on one instance would stay harmless (status writes are conditional on
  the resourceVersion), but by these rules it does not happen.

Timings default to client-go's leader election: lease 15 s, renew deadline 10 s, retry 2 s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from claw_operator.api.sharding import HASH_SPACE, fnv1a_64, merge_ranges
from claw_operator.api.timefmt import parse_rfc3339

RING_LABEL = "claw.dev/ring"
RING_NAME = "claw-operator"
LEASE_PREFIX = "claw-operator-"
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ShardTimings:
    """client-go's leader-election timings (`LeaseDuration`, `RenewDeadline`, `RetryPeriod`)."""

    lease_duration: timedelta = timedelta(seconds=15)
    renew_deadline: timedelta = timedelta(seconds=10)
    retry_period: timedelta = timedelta(seconds=2)

    def __post_init__(self) -> None:
        if not (
            self.lease_duration > self.renew_deadline > self.retry_period > timedelta(0)
            # A previous owner whose listings fail stops by its last one + the renew deadline,
            # before the handover time (acquireTime + lease duration - one retry period).
            and self.lease_duration - self.retry_period >= self.renew_deadline
        ):
            raise ValueError(
                "shard timings must satisfy lease duration > renew deadline > retry period > 0 "
                "and lease duration - retry period >= renew deadline "
                f"(got {self.lease_duration.total_seconds()}, {self.renew_deadline.total_seconds()}, "
                f"{self.retry_period.total_seconds()})"
            )

    @property
    def handover_margin(self) -> timedelta:
        """How long before a newcomer may act the previous owners stop acting on what moves to
        it: one retry period (the newcomer's own wake-up and the clocks' disagreement fit in
        it). The instances moving are unowned for about this long, never a lease duration."""
        return self.retry_period

    @property
    def lease_seconds(self) -> int:
        """`leaseDurationSeconds` as written (whole seconds, at least 1)."""
        return max(1, round(self.lease_duration.total_seconds()))


@dataclass(frozen=True)
class Member:
    """One replica, as its Lease says."""

    identity: str  # holderIdentity ("" when released)
    lease: str  # the Lease's name
    acquired: datetime | None
    renewed: datetime | None
    duration: timedelta

    @property
    def expires(self) -> datetime | None:
        return None if self.renewed is None else self.renewed + self.duration

    def live(self, now: datetime) -> bool:
        expires = self.expires
        return bool(self.identity) and expires is not None and expires > now

    def settled(self, now: datetime, timings: ShardTimings) -> bool:
        """Every other live replica has had time to see this one join."""
        return self.acquired is not None and self.acquired + timings.lease_duration <= now


def member_from_lease(lease: Mapping[str, Any]) -> Member:
    """A Member from a Lease as the apiserver answers it (JSON)."""
    spec = lease.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    return Member(
        identity=str(spec.get("holderIdentity") or ""),
        lease=str((lease.get("metadata") or {}).get("name") or ""),
        acquired=parse_rfc3339(spec.get("acquireTime")),
        renewed=parse_rfc3339(spec.get("renewTime")),
        duration=timedelta(seconds=int(duration))
        if isinstance(duration, int) and duration > 0
        else timedelta(0),
    )


def live_members(leases: Iterable[Mapping[str, Any]], now: datetime) -> list[Member]:
    """The live members, by identity (one per identity: the latest renewed wins)."""
    by_identity: dict[str, Member] = {}
    for lease in leases:
        member = member_from_lease(lease)
        if not member.live(now):
            continue
        seen = by_identity.get(member.identity)
        if seen is None or (seen.renewed or now) < (member.renewed or now):
            by_identity[member.identity] = member
    return sorted(by_identity.values(), key=lambda m: m.identity)


BUCKETS = 256  # contiguous slices of the FNV-1a 64 hash space of metadata.uid
_BUCKET_SHIFT = 64 - (BUCKETS.bit_length() - 1)


def bucket(uid: str) -> int:
    """The bucket of a UID: which of BUCKETS equal slices of the hash space its FNV-1a 64
    hash (KEP-5866's) falls in."""
    return fnv1a_64(uid) >> _BUCKET_SHIFT


def bucket_range(index: int) -> tuple[int, int]:
    """The `[start, end)` hash range of a bucket."""
    width = HASH_SPACE // BUCKETS
    return index * width, (index + 1) * width


def weight(identity: str, index: int) -> int:
    """The rendezvous score of a member for a bucket (a stable, well-mixed 64-bit hash)."""
    digest = hashlib.blake2b(f"{identity}\x00{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@lru_cache(maxsize=64)
def assignment(identities: tuple[str, ...]) -> tuple[str, ...]:
    """The owner of every bucket: rendezvous hashing with bounded loads. Every (member,
    bucket) pair is ranked by weight, highest first, and each bucket goes to the first member
    in that order with room (BUCKETS / members, the remainder one each to the first in
    order of identity): shares differ by at most one bucket, and a member joining or leaving
    moves little more than its share (the pairs it tops; a few buckets between the others
    keep the shares equal). Every replica that sees the same members computes the same
    assignment."""
    members = sorted(set(identities))
    if not members:
        return ()
    base, extra = divmod(BUCKETS, len(members))
    room = {identity: base + (1 if rank < extra else 0) for rank, identity in enumerate(members)}
    ranked = sorted(
        ((weight(identity, index), identity, index) for identity in members for index in range(BUCKETS)),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    owners: list[str | None] = [None] * BUCKETS
    load = dict.fromkeys(members, 0)
    for _, identity, index in ranked:
        if owners[index] is None and load[identity] < room[identity]:
            owners[index] = identity
            load[identity] += 1
    return tuple(o or "" for o in owners)


def owner(uid: str, identities: Iterable[str]) -> str | None:
    """The member that owns `uid`'s bucket; None without members."""
    owners = assignment(tuple(sorted(set(identities))))
    return owners[bucket(uid)] if owners else None


def share(identity: str, identities: Iterable[str]) -> list[tuple[int, int]]:
    """The hash ranges of a member's buckets, merged (what a shardSelector for it names)."""
    owners = assignment(tuple(sorted(set(identities))))
    return merge_ranges(bucket_range(i) for i, o in enumerate(owners) if o == identity)


def watched_share(me: str, rings: Rings, identities: Iterable[str]) -> list[tuple[int, int]]:
    """The hash ranges a replica's watch asks the apiserver for (server-side sharding,
    KEP-5866's `shardSelector`): what it may hold now (its share among the stopping ring), once
    the handovers under way complete (the starting ring) and among every live member (a
    newcomer's own share before it settles). Empty while it is no member (no view, no Lease):
    the caller then keeps the selector it has."""
    early, late, _ = rings
    buckets: set[int] = set()
    for members in (early, late, tuple(identities)):
        if me in members:
            owners = assignment(tuple(sorted(set(members))))
            buckets.update(i for i, o in enumerate(owners) if o == me)
    return merge_ranges(bucket_range(i) for i in buckets)


# (stopping, starting, departing): see RingView.rings
Rings = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def held(uid: str, me: str, rings: Rings) -> bool:
    """`me` may hold `uid` under these rings (see `RingView.rings`): it owns it among the
    stopping ring, and among the starting ring too — or there a member that departed owns it."""
    early, late, departing = rings
    if owner(uid, early) != me:
        return False
    previous = owner(uid, late)
    return previous == me or previous in departing


def handover_at(member: Member, first_seen: datetime | None, timings: ShardTimings) -> datetime | None:
    """When the others hand a joining member what it wins (their clock): a margin before it
    may act itself (`acquireTime + lease_duration`, its clock). The earlier of its
    `acquireTime` and the moment this replica first listed it counts (client-go's "observed
    time": a newcomer whose clock runs ahead does not delay the handover past what this
    replica saw), so a previous owner stops `handover_margin` before the newcomer starts
    while the clocks agree within that margin. None when nothing is known about the member."""
    starts = [t for t in (member.acquired, first_seen) if t is not None]
    if not starts:
        return None
    return min(starts) + timings.lease_duration - timings.handover_margin


@dataclass(frozen=True)
class RingView:
    """What one replica knows of the ring at one moment (`kube/shards.py` refreshes it)."""

    me: str
    members: tuple[Member, ...]  # live, as of `seen_at`
    seen_at: datetime  # when the Leases were listed
    renewed_at: datetime | None  # when this replica's own Lease was last renewed (its clock)
    timings: ShardTimings
    # The first listing after this replica's Lease was created showed no other live member.
    founder: bool = False
    # identity -> when this replica first listed that member's current Lease (its clock).
    first_seen: Mapping[str, datetime] = field(default_factory=dict)
    # identity -> when this replica first saw that member gone (its Lease expired or released).
    departed: Mapping[str, datetime] = field(default_factory=dict)

    @property
    def identities(self) -> tuple[str, ...]:
        return tuple(m.identity for m in self.members)

    def can_mutate(self, now: datetime) -> bool:
        """This replica holds a Lease renewed within the renew deadline, and its view of the
        ring is as fresh: otherwise it must not touch Fly at all."""
        deadline = self.timings.renew_deadline
        return (
            self.renewed_at is not None
            and now - self.renewed_at < deadline
            and now - self.seen_at < deadline
            and self.me in self.identities
        )

    def settled(self, now: datetime) -> bool:
        """This replica may act on what it owns: it founded the ring, or every other replica
        has had a lease duration to see it join."""
        mine = next((m for m in self.members if m.identity == self.me), None)
        return mine is not None and (self.founder or mine.settled(now, self.timings))

    def joins_at(self, member: Member) -> tuple[datetime, datetime] | None:
        """When `member` enters the ring in this replica's eyes, as (stop, start): from `stop`
        the previous owners of what it changes stop acting on it, from `start` the new owners
        act (a margin later). This replica joins when it is settled (None for a founder: it
        was there first); another member at its handover time."""
        if member.identity == self.me:
            if self.founder:
                return None
            settles = _NEVER if member.acquired is None else member.acquired + self.timings.lease_duration
            return settles, settles
        stop = handover_at(member, self.first_seen.get(member.identity), self.timings)
        if stop is None:
            return _NEVER, _NEVER
        return stop, stop + self.timings.handover_margin

    def departing(self, now: datetime) -> tuple[str, ...]:
        """Members gone for less than the renew deadline (this replica's clock): another
        replica whose last listing still showed one may act on that view that long."""
        live = set(self.identities)
        return tuple(
            sorted(
                identity
                for identity, gone in self.departed.items()
                if identity not in live and now < gone + self.timings.renew_deadline
            )
        )

    def rings(self, now: datetime) -> Rings:
        """The members buckets are assigned among right now, as (stopping, starting,
        departing). `stopping`: the live members, less those still joining (`joins_at`'s
        stop); a previous owner acts only on what it owns there. `starting`: the live members
        whose handover is complete, plus the members departing; a new owner acts only on what
        it owns there too, or what a departing member owns there. So what a member that left
        held goes over at once, and what bounded loads shift between two remaining members
        when one leaves waits out the renew deadline (the previous owner's stale view)."""
        early, late = [], []
        for member in self.members:
            joins = self.joins_at(member)
            if joins is None or joins[0] <= now:
                early.append(member.identity)
            if joins is None or joins[1] <= now:
                late.append(member.identity)
        departing = self.departing(now)
        return tuple(early), tuple(sorted({*late, *departing})), departing

    def holds(self, uid: str, now: datetime) -> bool:
        """`uid` is this replica's to act on now, as far as the assignment goes (see
        `rings`). An instance changing hands is nobody's for the margin in between."""
        return held(uid, self.me, self.rings(now))

    def next_change(self, now: datetime) -> datetime | None:
        """The next moment `rings` changes without a new listing (a handover falls due)."""
        upcoming = [
            moment
            for m in self.members
            if (joins := self.joins_at(m)) is not None
            for moment in joins
            if now < moment < _NEVER
        ]
        upcoming += [
            gone + self.timings.renew_deadline
            for identity, gone in self.departed.items()
            if identity in self.departing(now)
        ]
        return min(upcoming, default=None)

    def owner(self, uid: str) -> str | None:
        return owner(uid, self.identities)

    def owns(self, uid: str) -> bool:
        """The assignment among all live members (metrics): this replica wins `uid` once every
        handover under way completed."""
        return self.owner(uid) == self.me

    def may_act(self, uid: str, now: datetime) -> bool:
        """The fence: act on `uid` now (reconcile it, mutate Fly for it). A previous owner
        keeps acting on what moves to a newcomer until the handover time; the newcomer starts
        once settled, a margin later; what a member that left held goes at once."""
        return self.can_mutate(now) and self.settled(now) and self.holds(uid, now)


def moved(
    uids: Iterable[str], before: Sequence[str], after: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    """The UIDs whose owner differs between two memberships: uid -> (old owner, new owner)."""
    changes: dict[str, tuple[str | None, str | None]] = {}
    for uid in uids:
        old, new = owner(uid, before), owner(uid, after)
        if old != new:
            changes[uid] = (old, new)
    return changes


def inherited(created: datetime | None, stable_since: datetime, timings: ShardTimings) -> bool:
    """Another replica may have acted on an instance this replica owns now: it existed before
    the ring last changed (plus a lease duration, the longest another replica's stale view
    could last). Such an instance is not "born under watch": its recovery lists come first."""
    return created is None or created <= stable_since + timings.lease_duration


def lease_name(identity: str) -> str:
    """The Lease of a replica: `claw-operator-<pod>`."""
    return identity if identity.startswith(LEASE_PREFIX) else f"{LEASE_PREFIX}{identity}"
