"""Which operator replica acts on which ClawInstance (`claw-operator run --shards auto`).

Pure decisions over the ring's Leases; `kube/shards.py` does the I/O.

- **Membership**: every replica holds one `coordination.k8s.io/v1` Lease labelled as a member
  of the ring. A member is *live* while `renewTime + leaseDurationSeconds > now` and its
  `holderIdentity` is set (a replica that shuts down releases its Lease by clearing it).
- **Assignment**: rendezvous (highest-random-weight) hashing of `metadata.uid` over the live
  members: each member scores every UID, the highest score owns it. A member that joins or
  leaves moves only the UIDs it wins or held (about 1/N of the fleet), and every replica that
  sees the same Leases computes the same owner, with no coordinator.
- **The fence**: a replica must stop acting on an instance it lost *before* the new owner may
  start. A replica acts only while its own view of the ring is at most `renew_deadline` old
  and its Lease was renewed within `renew_deadline` (otherwise it stops all Fly mutations at
  once), and it stops acting on a UID as soon as its view gives it to someone else.
  - A UID moves away from a member that *left* only when that member's Lease expired
    (`renewTime + leaseDurationSeconds`) or was released: by then it had stopped, since it
    stops `renew_deadline` (< `lease_duration`) after its last successful renew.
  - A UID moves to a member that *joined* from members still alive. Those may not have seen
    the newcomer yet, but they will within `renew_deadline` of its Lease's creation. So a
    newcomer acts on nothing until it is *settled*: `acquireTime + lease_duration` has passed
    — unless it *founded* the ring: the first listing after its Lease was created showed no
    other live member. Every replica that joins later lists after that Lease exists, so it
    sees the founder (of two replicas starting at once, at least one sees the other).
  Two replicas acting on one instance stays harmless (status writes are conditional on the
  resourceVersion), but by these rules it does not happen while the clocks agree within the
  margin between `renew_deadline` and `lease_duration`.

Timings default to client-go's leader election: lease 15 s, renew deadline 10 s, retry 2 s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from claw_operator.api.timefmt import parse_rfc3339

RING_LABEL = "claw.dev/ring"
RING_NAME = "claw-operator"
LEASE_PREFIX = "claw-operator-"


@dataclass(frozen=True)
class ShardTimings:
    """client-go's leader-election timings (`LeaseDuration`, `RenewDeadline`, `RetryPeriod`)."""

    lease_duration: timedelta = timedelta(seconds=15)
    renew_deadline: timedelta = timedelta(seconds=10)
    retry_period: timedelta = timedelta(seconds=2)

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > timedelta(0):
            raise ValueError(
                "shard timings must satisfy lease duration > renew deadline > retry period > 0 "
                f"(got {self.lease_duration.total_seconds()}, {self.renew_deadline.total_seconds()}, "
                f"{self.retry_period.total_seconds()})"
            )

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


def weight(identity: str, uid: str) -> int:
    """The rendezvous score of a member for a UID (a stable, well-mixed 64-bit hash)."""
    digest = hashlib.blake2b(f"{identity}\x00{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(uid: str, identities: Iterable[str]) -> str | None:
    """The member with the highest weight for `uid` (ties, never seen in practice, go to the
    smaller identity); None without members."""
    best: tuple[int, str] | None = None
    for identity in identities:
        key = (weight(identity, uid), identity)
        if best is None or key[0] > best[0] or (key[0] == best[0] and identity < best[1]):
            best = key
    return None if best is None else best[1]


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

    def owner(self, uid: str) -> str | None:
        return owner(uid, self.identities)

    def owns(self, uid: str) -> bool:
        """The assignment alone (for metrics and filtering): this replica wins `uid`."""
        return self.owner(uid) == self.me

    def may_act(self, uid: str, now: datetime) -> bool:
        """The fence: act on `uid` now (reconcile it, mutate Fly for it)."""
        return self.can_mutate(now) and self.owns(uid) and self.settled(now)


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
