"""Several operator replicas share the fleet (`claw-operator run --shards auto`).

`LeaseKeeper` is the I/O around the pure rules of `lifecycle/shards.py`: every retry period it
renews this replica's Lease (`claw-operator-<pod>` in the operator's namespace, labelled
`claw.dev/ring=claw-operator`) and lists the ring's Leases. Everything else asks it:

- `may_act(uid)`: reconcile this instance now (it is ours, and the fence allows it);
- `can_mutate()`: this replica may touch Fly at all (a Lease renewed within the renew
  deadline, a view of the ring as fresh). Computed from the clock at each call, so it turns
  False the moment the deadline passes, whatever the loop is doing (a hung request included);
- `wait_change()`: until the ring (or this replica's standing in it) changes — including at
  the moments a handover falls due between two rounds (a timer wakes the waiting loops then);
- `handed_over(uid)`: once per gained instance, for its `HandedOver` Event.

A Lease not renewed within the renew deadline stops every Fly mutation; a late renew resumes
them while the Lease cannot have expired for anyone else. Once it may have (the others then
took this replica's instances over), it is acquired anew with a fresh `acquireTime`: this
replica is a newcomer again and waits a lease duration before acting.

Its Kubernetes calls go through the operator's one Kubernetes client (`KubeApi`: the
credentials of its ApiClient, kubeconfig or in-cluster), in a small pool of their own, a few
requests every retry period.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from claw_operator.api import GROUP, PLURAL, VERSION
from claw_operator.api.sharding import HASH_SPACE, fnv1a_64, shard_selector
from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.kube.kubeapi import KubeApi, KubeApiError
from claw_operator.lifecycle.model import Action, ActionResult, Instance
from claw_operator.lifecycle.shards import (
    RING_LABEL,
    RING_NAME,
    Rings,
    RingView,
    ShardTimings,
    held,
    inherited,
    lease_name,
    live_members,
    member_from_lease,
    owner,
    share,
    watched_share,
)

logger = logging.getLogger("claw_operator.shards")

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


class ShardFenced(Exception):
    """This replica may not mutate Fly for this instance now (lost it, or lost its Lease)."""


class LeaseConflict(Exception):
    """409: the Lease changed (or exists) since it was read."""


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    """The pod's name (POD_NAME from the downward API, else the hostname, which is the pod's)."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def default_namespace(kubeconfig: str | None = None) -> str:
    """The operator's namespace: POD_NAMESPACE, the in-cluster one, the kubeconfig context's."""
    configured = os.environ.get("POD_NAMESPACE")
    if configured:
        return configured
    with contextlib.suppress(OSError):
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    with contextlib.suppress(Exception):
        from kubernetes import config as kube_config

        _, active = kube_config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        return str((active or {}).get("context", {}).get("namespace") or "default")
    return "default"


class LeaseApi:
    """GET/POST/PUT/LIST of Leases, over the operator's one Kubernetes client (`KubeApi`, a
    pool of its own: a renew must not queue behind the hot path's calls)."""

    def __init__(self, kube: KubeApi) -> None:
        self.kube = kube

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] | None = await self.kube.request(method, path, **kwargs)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            if exc.status == 409:
                raise LeaseConflict(f"{method} {path}: 409") from exc
            raise
        return body

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._request("GET", f"{LEASES.format(namespace=namespace)}/{name}")

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        created = await self._request("POST", LEASES.format(namespace=namespace), body=body)
        assert created is not None
        return created

    async def replace(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        replaced = await self._request("PUT", f"{LEASES.format(namespace=namespace)}/{name}", body=body)
        if replaced is None:
            raise LeaseConflict(f"lease {name} is gone")
        return replaced

    async def list(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        listed = await self._request(
            "GET", LEASES.format(namespace=namespace), params={"labelSelector": label_selector}
        )
        return list((listed or {}).get("items") or [])

    async def aclose(self) -> None:
        await self.kube.aclose()


class LeaseKeeper:
    """This replica's membership of the ring (see the module's docstring)."""

    def __init__(
        self,
        api: LeaseApi,
        *,
        identity: str,
        namespace: str,
        timings: ShardTimings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_gained: Callable[[str], None] | None = None,
    ) -> None:
        self.api = api
        self.identity = identity
        self.namespace = namespace
        self.lease_name = lease_name(identity)
        self.timings = timings
        self._clock = clock
        self._on_gained = on_gained
        self._lease: dict[str, Any] | None = None  # the Lease as last written, while held
        self._renewed_at: datetime | None = None
        self._fresh_acquire = False
        self._founder = False
        self._view: RingView | None = None
        self.stable_since = clock()  # when this replica last saw the ring change
        self._changed = asyncio.Event()
        self._standing: tuple[Any, ...] = ()
        self._tracked: dict[str, datetime | None] = {}  # uid -> creationTimestamp
        self._inherited_in: dict[str, datetime] = {}  # uid -> the stable_since it was inherited in
        self._handed: dict[str, str] = {}  # uid -> the replica it was gained from, until its pass
        # (identity, acquireTime) -> when this replica first listed that Lease (its clock)
        self._first_seen: dict[tuple[str, datetime | None], datetime] = {}
        self._rings: Rings = ((), (), ())  # the rings as last computed (RingView.rings)
        self._last_before: Rings | None = None  # the rings before the last change
        self._departed: dict[str, datetime] = {}  # identity -> when first seen gone
        self._timer: asyncio.TimerHandle | None = None
        self.handovers = {"gained": 0, "lost": 0}
        self.ring_changes = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._overdue = False
        self.listeners: list[Callable[[], None]] = []  # told when the standing changes
        # Whether this replica's watch selects an instance (ShardWatch, server-side sharding).
        self.watches: Callable[[str], bool] = lambda uid: True
        self.linger_check = ShardWatch.LINGER_CHECK

    # ------------------------------------------------------------------ asking

    def view(self) -> RingView | None:
        return self._view

    def members(self) -> tuple[str, ...]:
        return self._view.identities if self._view is not None else ()

    def can_mutate(self) -> bool:
        view = self._view
        return view is not None and not self._stopping and view.can_mutate(self._clock())

    def may_act(self, uid: str) -> bool:
        view = self._view
        return view is not None and not self._stopping and view.may_act(uid, self._clock())

    def owns(self, uid: str) -> bool:
        """The assignment (whatever the fence says): metrics and logs."""
        view = self._view
        return view is not None and view.owns(uid)

    def owned_count(self) -> int:
        return sum(1 for uid in self._tracked if self.owns(uid))

    def acting_count(self) -> int:
        """Instances this replica may act on right now (owned, past the fence, Lease renewed)."""
        return sum(1 for uid in self._tracked if self.may_act(uid))

    def track(self, uid: str, created: str | datetime | None) -> None:
        """An instance exists (kopf saw it): counted, and followed across handovers."""
        if uid in self._tracked:
            return
        born = parse_rfc3339(created) if isinstance(created, str) else created
        self._tracked[uid] = born
        before = self._last_before
        if before is None or (born is not None and born > self.stable_since):
            return
        # Seen only after the ring changed (a server-side watch lists what this replica gained
        # once its share changed): a handover all the same.
        if not held(uid, self.identity, before) and held(uid, self.identity, self._rings):
            self.handovers["gained"] += 1
            previous = owner(uid, before[1])
            if previous not in (None, self.identity):
                self._handed[uid] = previous

    def handed_over(self, uid: str) -> str | None:
        """Once, at the first pass after this replica gained `uid` from another replica: that
        replica's identity (the caller posts the `HandedOver` Event); None otherwise. (The handover
        is taken into account first if its moment passed a hair before the timer fired.)"""
        self.refresh()
        return self._handed.pop(uid, None)

    def rings(self) -> Rings:
        """The rings as last computed (see `RingView.rings`)."""
        return self._rings

    async def prospective_share(self) -> list[tuple[int, int]]:
        """This replica's share once it joins the ring as the Leases stand now (before it
        holds its own Lease): what its first listing asks the apiserver for."""
        now = self._clock()
        leases = await self.api.list(self.namespace, f"{RING_LABEL}={RING_NAME}")
        identities = {m.identity for m in live_members(leases, now)} | {self.identity}
        return share(self.identity, identities)

    def refresh(self) -> None:
        """Take into account a handover whose moment passed (the timer does it a hair later)."""
        self._notify_if_changed()

    def forget(self, uid: str) -> None:
        self._tracked.pop(uid, None)
        self._handed.pop(uid, None)
        self._inherited_in.pop(uid, None)

    def before_pass(self, uid: str) -> None:
        """Before reconciling an instance this replica may act on: one that another replica may
        have acted on is handed to `on_gained` once per ring change (the gateway then treats it
        as after an operator restart: recovery lists first)."""
        if uid in self._inherited_in and self._inherited_in[uid] == self.stable_since:
            return
        created = self._tracked.get(uid)
        if inherited(created, self.stable_since, self.timings):
            self._inherited_in[uid] = self.stable_since
            if self._on_gained is not None:
                self._on_gained(uid)

    async def wait_change(self, timeout: float) -> None:
        """Until the ring or this replica's standing in it changes, or `timeout` seconds."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def fence(self, uid: str) -> None:
        """Raise ShardFenced unless this replica may mutate Fly for `uid` right now."""
        if not self.may_act(uid):
            reason = "its Lease is not renewed" if not self.can_mutate() else "the instance is not its own"
            raise ShardFenced(f"this replica ({self.identity}) may not act: {reason}")

    # ------------------------------------------------------------------ the loop

    async def start(self) -> None:
        """Join the ring now: the first round, then one every retry period in a task."""
        await self.step()
        self._task = asyncio.create_task(self._loop(), name="claw-operator-lease-keeper")

    def launch(self, when: asyncio.Event) -> None:
        """Join the ring once `when` is set, from a task created now. (kopf waits up to 5 s at
        shutdown for every task created after it started, before the Lease could be released.)"""
        self._task = asyncio.create_task(self._loop(when), name="claw-operator-lease-keeper")

    async def _loop(self, when: asyncio.Event | None = None) -> None:
        if when is not None:
            await when.wait()
            await self.step()
        period = self.timings.retry_period.total_seconds()
        while True:
            await asyncio.sleep(period)
            await self.step()

    async def step(self) -> None:
        """One round: renew (or acquire) the Lease, then list the ring."""
        try:
            await self._renew()
        except Exception as exc:  # a partition, a timeout, a 5xx: the deadline decides
            logger.warning(
                "lease renew failed",
                extra={"lease": self.lease_name, "error": f"{type(exc).__name__}: {exc}"},
            )
        now = self._clock()
        overdue = self._renewed_at is not None and now - self._renewed_at >= self.timings.renew_deadline
        if overdue and not self._overdue:
            logger.error(
                "lease not renewed within the renew deadline: no Fly mutations until it is renewed",
                extra={
                    "lease": self.lease_name,
                    "renew_deadline": self.timings.renew_deadline.total_seconds(),
                },
            )
        self._overdue = overdue
        try:
            await self._list()
        except Exception as exc:
            logger.warning(
                "listing the ring's Leases failed", extra={"error": f"{type(exc).__name__}: {exc}"}
            )
        self._notify_if_changed()

    def _may_have_expired(self, now: datetime) -> bool:
        """Another replica may have seen this replica's Lease expire (and taken its instances):
        its last renew is older than the lease duration, less half the margin between the lease
        duration and the renew deadline (for the clocks' disagreement)."""
        if self._renewed_at is None:
            return True
        margin = (self.timings.lease_duration - self.timings.renew_deadline) / 2
        return now - self._renewed_at >= self.timings.lease_duration - margin

    async def _renew(self) -> None:
        started = self._clock()
        if self._lease is not None and self._may_have_expired(started):
            # Past the renew deadline, but that alone moved nothing: while the Lease cannot have
            # expired for anyone, a late renew simply resumes. Once it may have, the others took
            # this replica's instances over: it joins anew (a fresh acquireTime, the fence).
            logger.warning("lease may have expired: acquiring it anew", extra={"lease": self.lease_name})
            self._lease = None
        if self._lease is not None:
            body = copy.deepcopy(self._lease)
            body["spec"]["renewTime"] = micro_time(started)
            try:
                self._lease = await self.api.replace(self.namespace, body)
                self._renewed_at = started
                return
            except LeaseConflict:
                current = await self.api.get(self.namespace, self.lease_name)
                spec = (current or {}).get("spec") or {}
                if (
                    current is not None
                    and spec.get("holderIdentity") == self.identity
                    and spec.get("acquireTime") == self._lease["spec"].get("acquireTime")
                ):
                    current["spec"]["renewTime"] = micro_time(started)
                    self._lease = await self.api.replace(self.namespace, current)
                    self._renewed_at = started
                    return
                logger.error("lease taken by someone else", extra={"lease": self.lease_name})
                self._lease, self._renewed_at = None, None
                return
        await self._acquire(started)

    async def _acquire(self, now: datetime) -> None:
        current = await self.api.get(self.namespace, self.lease_name)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.timings.lease_seconds,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
        }
        if current is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.lease_name, "labels": {RING_LABEL: RING_NAME}},
                "spec": {**spec, "leaseTransitions": 0},
            }
            self._lease = await self.api.create(self.namespace, body)
        else:
            holder = member_from_lease(current)
            if holder.identity and holder.identity != self.identity and holder.live(now):
                logger.error(
                    "lease held by another live holder",
                    extra={"lease": self.lease_name, "holder": holder.identity},
                )
                return
            transitions = int((current.get("spec") or {}).get("leaseTransitions") or 0)
            current["spec"] = {**spec, "leaseTransitions": transitions + 1}
            current.setdefault("metadata", {}).setdefault("labels", {})[RING_LABEL] = RING_NAME
            self._lease = await self.api.replace(self.namespace, current)
        self._renewed_at = now
        self._fresh_acquire = True
        logger.info("lease acquired", extra={"lease": self.lease_name, "namespace": self.namespace})

    async def _list(self) -> None:
        seen_at = self._clock()
        leases = await self.api.list(self.namespace, f"{RING_LABEL}={RING_NAME}")
        members = tuple(live_members(leases, seen_at))
        identities = tuple(m.identity for m in members)
        if self._fresh_acquire and self.identity in identities:
            self._founder = identities == (self.identity,)
            self._fresh_acquire = False
        elif self._lease is None:
            self._founder = False
        previous = self._view.identities if self._view is not None else ()
        first_seen: dict[str, datetime] = {}
        for member in members:
            key = (member.identity, member.acquired)
            first_seen[member.identity] = self._first_seen.setdefault(key, seen_at)
        live = {(m.identity, m.acquired) for m in members}
        for key in [k for k in self._first_seen if k not in live]:
            del self._first_seen[key]
        for gone in set(previous) - set(identities):
            self._departed[gone] = seen_at
        for identity, gone_at in list(self._departed.items()):
            if identity in identities or seen_at - gone_at >= self.timings.renew_deadline:
                del self._departed[identity]
        self._view = RingView(
            self.identity,
            members,
            seen_at,
            self._renewed_at,
            self.timings,
            founder=self._founder,
            first_seen=first_seen,
            departed=dict(self._departed),
        )
        if identities != previous:
            self._ring_changed(previous, identities, seen_at)

    def _ring_changed(self, before: tuple[str, ...], after: tuple[str, ...], now: datetime) -> None:
        """The live members changed (a Lease appeared, expired or was released)."""
        self.ring_changes += 1
        logger.info(
            "shard ring changed",
            extra={
                "members": ",".join(after),
                "joined": ",".join(sorted(set(after) - set(before))),
                "left": ",".join(sorted(set(before) - set(after))),
                "owned": self.owned_count(),
            },
        )

    def _rings_changed(self, before: Rings, after: Rings, now: datetime) -> None:
        """The members buckets are assigned among changed (a member left, a handover fell
        due, this replica settled): the instances this replica gained or lost change hands."""
        self.stable_since = now
        self._last_before = before
        changes: dict[str, str] = {}
        for uid in self._tracked:
            was, is_ = held(uid, self.identity, before), held(uid, self.identity, after)
            if was != is_:
                changes[uid] = "gained" if is_ else "lost"
        gained = sum(1 for d in changes.values() if d == "gained")
        lost = len(changes) - gained
        for uid, direction in changes.items():
            previous = owner(uid, before[1])
            if direction == "gained" and previous not in (None, self.identity):
                self._handed[uid] = previous  # from another replica: announced (not a founding)
            else:
                self._handed.pop(uid, None)
        self.handovers["gained"] += gained
        self.handovers["lost"] += lost
        if not changes and before[0] == after[0]:
            return
        logger.info(
            "shard handover",
            extra={
                "ring": ",".join(after[0]),
                "departing": ",".join(after[2]),
                "gained": gained,
                "lost": lost,
                "owned": self.owned_count(),
            },
        )

    def _notify_if_changed(self) -> None:
        view, now = self._view, self._clock()
        rings: Rings = view.rings(now) if view is not None else ((), (), ())
        if rings != self._rings:
            before, self._rings = self._rings, rings
            self._rings_changed(before, rings, now)
        standing = (
            self.members(),
            rings,
            self.can_mutate(),
            view is not None and view.settled(now),
        )
        if standing != self._standing:
            self._standing = standing
            self._changed.set()
            self._changed = asyncio.Event()
            for listener in self.listeners:
                listener()
        self._schedule(view, now)

    def _schedule(self, view: RingView | None, now: datetime) -> None:
        """Wake at the next handover time (between two rounds): the previous owner stops and
        the newcomer starts on time, not up to a retry period late."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        upcoming = view.next_change(now) if view is not None else None
        if upcoming is None or self._stopping:
            return
        delay = max(0.0, (upcoming - now).total_seconds()) + 0.001
        with contextlib.suppress(RuntimeError):  # no running loop (a synchronous test)
            self._timer = asyncio.get_running_loop().call_later(delay, self._notify_if_changed)

    async def _release(self, lease: dict[str, Any]) -> None:
        """Clear the holder. A renew cancelled in flight (the loop stopped mid-request) may
        have landed: on a conflict the current Lease is read and, still ours, released."""
        now = micro_time(self._clock())
        clear = {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": now, "acquireTime": now}
        body = copy.deepcopy(lease)
        body["spec"].update(clear)
        try:
            await self.api.replace(self.namespace, body)
            return
        except LeaseConflict:
            current = await self.api.get(self.namespace, self.lease_name)
        spec = (current or {}).get("spec") or {}
        if current is None or spec.get("holderIdentity") != self.identity:
            return
        if spec.get("acquireTime") != lease["spec"].get("acquireTime"):
            return
        current["spec"].update(clear)
        await self.api.replace(self.namespace, current)

    def stop_acting(self) -> None:
        """From now on this replica acts on nothing (`may_act`, `can_mutate` and the fence say
        no): the first step of a shutdown, before its Lease is released."""
        self._stopping = True

    async def stop(self, *, release: bool = True) -> None:
        """Stop renewing; with `release`, clear the holder so the others take over at once
        (call it only after this replica stopped acting)."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if release and self._lease is not None:
            try:
                await self._release(self._lease)
                logger.info("lease released", extra={"lease": self.lease_name})
            except Exception as exc:
                logger.warning("lease release failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._lease = None
        await self.api.aclose()


class ShardWatch:
    """Which ClawInstances this replica's watch asks the apiserver for (KEP-5866, Kubernetes
    1.36+): with server-side sharding each replica lists and watches only its share; without
    it (1.28-1.35 ignore the unknown `shardSelector`) every replica receives every instance and
    filters client-side, as before.

    - **Detected at start**, before kopf lists anything: one list of ClawInstances (limit 1)
      with a `shardSelector` covering the whole hash space. A server that applies it echoes
      `metadata.shardInfo`; one that does not answers without it. Logged (`shard watch mode`)
      and exported (`claw_shard_server_side`).
    - kopf 1.45 sends `settings.watching.shard_selectors` on every list and watch it starts,
      read at each (re)connection. The first listing asks for this replica's share as the
      Leases stand (`LeaseKeeper.prospective_share`).
    - **When the share changes**, the selector becomes `watched_share` (what this replica
      holds now, once the handovers under way complete, and among every live member), and the
      watch is listed anew: kopf otherwise continues a watch from its last resourceVersion
      and lists again only after a 410, so an instance this replica gains would stay unseen
      until it is next modified. kopf has no public "re-list" call: the ClawInstance resource
      is taken out of kopf's `Insights` (passed to `kopf.operator`) and put back once kopf's
      orchestrator stopped its watch (its per-object workers drained; the daemons, which
      belong to the objects, keep running), so the orchestrator starts it anew and it lists
      with the new selector. `claw_shard_relists_total` counts these.
    - What this replica lost stays in kopf's memory (a re-list sends no DELETED for objects
      it no longer selects): their loops idle (`may_act` is False) and look every
      `LINGER_CHECK` whether the instance still exists, ending when it does not.
    """

    LINGER_CHECK = 300.0  # seconds between existence checks of an instance lost to another replica

    def __init__(
        self,
        keeper: LeaseKeeper,
        settings: Any,
        insights: Any,
        kube: KubeApi,
        *,
        namespaces: tuple[str, ...] = (),
    ) -> None:
        self.keeper = keeper
        self._settings = settings
        self._insights = insights
        self._kube = kube
        self._namespaces = namespaces
        self.server_side = False
        self.selector: str | None = None
        self.ranges: list[tuple[int, int]] | None = None  # None: every instance
        self.relists = 0
        # Told after each re-list: what the watch selects now (gauges and the liveness check
        # forget the rest).
        self.on_relisted: list[Callable[[Callable[[str], bool]], None]] = []
        keeper.watches = self.watches
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def detect(self) -> bool:
        """Whether the apiserver applies `shardSelector` (it echoes `metadata.shardInfo`)."""
        base = f"/apis/{GROUP}/{VERSION}"
        path = f"{base}/namespaces/{self._namespaces[0]}/{PLURAL}" if self._namespaces else f"{base}/{PLURAL}"
        probe = shard_selector([(0, HASH_SPACE)])
        try:
            listed = await self._kube.request("GET", path, params={"limit": "1", "shardSelector": probe})
        except Exception as exc:
            logger.warning(
                "could not probe the apiserver for server-side sharding: filtering client-side",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
            listed = None
        info = ((listed or {}).get("metadata") or {}).get("shardInfo")
        self.server_side = bool(info)
        logger.info(
            "shard watch mode",
            extra={
                "mode": "server-side shardSelector" if self.server_side else "client-side filtering",
                "why": "the apiserver echoed shardInfo (KEP-5866)"
                if self.server_side
                else "the apiserver ignores shardSelector (before Kubernetes 1.36, or the feature gate off)",
            },
        )
        return self.server_side

    async def start(self) -> None:
        """Before kopf starts: detect server support and, with it, ask for the prospective share."""
        if not await self.detect():
            return
        try:
            ranges = await self.keeper.prospective_share()
        except Exception as exc:  # the keeper's own rounds will set it, with a re-list
            logger.warning(
                "listing the ring's Leases failed", extra={"error": f"{type(exc).__name__}: {exc}"}
            )
            ranges = []
        self._apply(ranges)
        self.keeper.listeners.append(self._dirty.set)
        self._task = asyncio.create_task(self._loop(), name="claw-operator-shard-watch")

    def watches(self, uid: str) -> bool:
        """The watch selects this instance (always, filtering client-side)."""
        ranges = self.ranges
        if ranges is None:
            return True
        digest = fnv1a_64(uid)
        return any(start <= digest < end for start, end in ranges)

    def _apply(self, ranges: list[tuple[int, int]]) -> bool:
        if not ranges or ranges == self.ranges:
            return False  # no member (yet): keep the selector this replica has
        self.ranges = ranges
        self.selector = shard_selector(ranges)
        # (group, plural): kopf parses a "group/plural" string key otherwise than it reads.
        self._settings.watching.shard_selectors[GROUP, PLURAL] = self.selector
        covered = sum(end - start for start, end in ranges) / HASH_SPACE
        logger.info("shard watch selector", extra={"ranges": len(ranges), "hash_space": f"{covered:.1%}"})
        return True

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            keeper = self.keeper
            if not self._apply(watched_share(keeper.identity, keeper.rings(), keeper.members())):
                continue
            try:
                await self.relist()
            except Exception as exc:
                logger.warning("re-listing the watch failed", extra={"error": f"{type(exc).__name__}: {exc}"})

    def _watchers(self) -> list[asyncio.Task[Any]]:
        prefix = f"watcher for {PLURAL}.{VERSION}.{GROUP}@"
        return [t for t in asyncio.all_tasks() if t.get_name().startswith(prefix) and not t.done()]

    async def relist(self, timeout: float = 30.0) -> None:
        """Stop kopf's watch of ClawInstances and start it anew: it lists with the selector
        now in the settings (see the class docstring)."""
        insights = self._insights
        ours = {r for r in insights.watched_resources if r.group == GROUP and r.plural == PLURAL}
        if not ours:
            logger.info("kopf watches no ClawInstances yet: its first listing will carry the selector")
            return
        started = time.monotonic()
        async with insights.revised:
            insights.watched_resources.difference_update(ours)
            insights.revised.notify_all()
        try:
            async with asyncio.timeout(timeout):
                while self._watchers():
                    await asyncio.sleep(0.01)
        except TimeoutError:
            logger.warning("kopf's watch did not stop in time: re-listing anyway")
        finally:
            async with insights.revised:
                insights.watched_resources.update(ours)
                insights.revised.notify_all()
        self.relists += 1
        for listener in self.on_relisted:
            listener(self.watches)
        logger.info(
            "shard watch re-listed",
            extra={
                "ranges": len(self.ranges or []),
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class FencedExecutor:
    """The Executor, refusing any Fly mutation this replica may not make right now (checked
    at the moment of the call, not at the start of the pass)."""

    def __init__(self, executor: Any, keeper: LeaseKeeper) -> None:
        self._executor, self._keeper = executor, keeper
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def execute(self, action: Action, instance: Instance, env: Any) -> ActionResult:
        self._keeper.fence(instance.uid)
        self._in_flight += 1
        self._idle.clear()
        try:
            result: ActionResult = await self._executor.execute(action, instance, env)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
        return result

    async def drained(self, timeout: float) -> bool:
        """Until no Fly mutation is in flight (False: some still were after `timeout` s)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


def register_metrics(registry: Any, keeper: LeaseKeeper, watch: ShardWatch | None = None) -> None:
    """claw_shard_* gauges and counters, computed at scrape time."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector

    class ShardCollector(Collector):
        def collect(self) -> Any:
            keeper.refresh()
            members = GaugeMetricFamily("claw_shard_members", "Live replicas this replica sees in the ring")
            members.add_metric([], len(keeper.members()))
            owned = GaugeMetricFamily("claw_shard_instances_owned", "ClawInstances assigned to this replica")
            owned.add_metric([], keeper.owned_count())
            acting = GaugeMetricFamily(
                "claw_shard_instances_acting",
                "ClawInstances this replica may act on now (owned, past the handover fence, Lease renewed)",
            )
            acting.add_metric([], keeper.acting_count())
            mutate = GaugeMetricFamily(
                "claw_shard_can_mutate", "1 while this replica holds a renewed Lease (may touch Fly)"
            )
            mutate.add_metric([], 1 if keeper.can_mutate() else 0)
            handovers = CounterMetricFamily(
                "claw_shard_handovers",
                "ClawInstances this replica gained or lost when the ring changed",
                labels=["direction"],
            )
            for direction in ("gained", "lost"):
                handovers.add_metric([direction], keeper.handovers[direction])
            changes = CounterMetricFamily("claw_shard_ring_changes", "Membership changes seen")
            changes.add_metric([], keeper.ring_changes)
            server_side = GaugeMetricFamily(
                "claw_shard_server_side",
                "1 while this replica's watch asks the apiserver for its share only (KEP-5866 "
                "shardSelector), 0 while it receives every instance and filters client-side",
            )
            server_side.add_metric([], 1 if watch is not None and watch.server_side else 0)
            relists = CounterMetricFamily(
                "claw_shard_relists", "Times the watch was listed anew for a changed share (server-side)"
            )
            relists.add_metric([], watch.relists if watch is not None else 0)
            yield from (members, owned, acting, mutate, handovers, changes, server_side, relists)

    registry.register(ShardCollector())
