"""Objects, the global resourceVersion, the change history, and watch subscriptions.

Stored objects are never mutated in place: every write stores a new dict, so a reader (an HTTP
response being encoded, a watch stream, a test in another thread) always sees a consistent one.
All writes happen on the server's event loop while holding `lock`, which the request handlers
take around every read-modify-write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
ObjectKey = tuple[str, str]  # (namespace or "", name)
# Aliases: inside the classes below, `list` names a method.
ObjectList = list[dict[str, Any]]


@dataclass(frozen=True)
class Change:
    """One committed write, as watchers see it."""

    resource_version: int
    type: str  # ADDED, MODIFIED or DELETED
    storage: str
    namespace: str
    obj: dict[str, Any]  # the object after the write (its last state for DELETED)
    old: dict[str, Any] | None  # the object before the write (None for ADDED)
    # Encoded watch lines, shared by every watcher of the same form (type, apiVersion, ...).
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


ChangeList = list[Change]


class ResourceExpired(Exception):
    """The requested resourceVersion is older than the retained history (a 410 to the client)."""


class Subscription:
    """A watcher's queue of changes of one storage (optionally one namespace).

    Bounded: a watcher that falls `limit` changes behind is closed (as the apiserver drops slow
    watchers), and its client re-lists.
    """

    def __init__(self, storage: str, namespace: str | None, limit: int) -> None:
        self.storage = storage
        self.namespace = namespace
        self.limit = limit
        self.pending: deque[Change] = deque()
        self.closed = False
        self.overflowed = False
        self._wake = asyncio.Event()

    def offer(self, change: Change) -> None:
        if self.closed or (self.namespace is not None and change.namespace != self.namespace):
            return
        if len(self.pending) >= self.limit:
            self.overflowed = True
            self.close()
            return
        self.pending.append(change)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def wait(self, timeout: float) -> None:
        """Until a change is pending, the subscription closes, or `timeout` seconds pass."""
        if self.pending or self.closed:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def drain(self) -> ChangeList:
        changes = list(self.pending)
        self.pending.clear()
        return changes


class ObjectStore:
    def __init__(self, *, history_limit: int = 10_000, watch_queue_limit: int = 100_000) -> None:
        self.lock = asyncio.Lock()
        self.resource_version = 0
        self.history_limit = history_limit
        self.watch_queue_limit = watch_queue_limit
        self._objects: dict[str, dict[ObjectKey, dict[str, Any]]] = {}
        self._uids: dict[str, tuple[str, ObjectKey]] = {}
        self._history: deque[Change] = deque()
        # Watching from a resourceVersion below this one needs history that was trimmed.
        self._oldest_watchable = 0
        self._subscriptions: dict[str, set[Subscription]] = {}

    # --- reads ---------------------------------------------------------------------------------

    def get(self, storage: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(storage, {}).get((namespace, name))

    def list(self, storage: str, namespace: str | None = None) -> ObjectList:
        """Objects of a storage (in one namespace, or all), sorted by namespace then name."""
        bucket = self._objects.get(storage, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def by_uid(self, uid: str) -> tuple[str, dict[str, Any]] | None:
        where = self._uids.get(uid)
        if where is None:
            return None
        storage, key = where
        obj = self._objects.get(storage, {}).get(key)
        return (storage, obj) if obj is not None else None

    def all_objects(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for storage, bucket in list(self._objects.items()):
            for obj in list(bucket.values()):
                yield storage, obj

    def count(self, storage: str | None = None) -> int:
        if storage is not None:
            return len(self._objects.get(storage, {}))
        return sum(len(bucket) for bucket in self._objects.values())

    @property
    def history_size(self) -> int:
        return len(self._history)

    # --- writes (call with `lock` held) ----------------------------------------------------------

    def next_resource_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def commit(
        self, change_type: str, storage: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> Change:
        """Store (or remove, for DELETED) `obj`, whose resourceVersion is already the new one."""
        metadata = obj["metadata"]
        namespace = metadata.get("namespace") or ""
        key = (namespace, metadata["name"])
        bucket = self._objects.setdefault(storage, {})
        if change_type == DELETED:
            bucket.pop(key, None)
            self._uids.pop(metadata.get("uid", ""), None)
        else:
            bucket[key] = obj
            self._uids[metadata["uid"]] = (storage, key)
        change = Change(int(metadata["resourceVersion"]), change_type, storage, namespace, obj, old)
        self._history.append(change)
        while len(self._history) > self.history_limit:
            self._oldest_watchable = self._history.popleft().resource_version
        for subscription in list(self._subscriptions.get(storage, ())):
            subscription.offer(change)
        return change

    def drop_storage(self, storage: str) -> ObjectList:
        """Forget every object of a storage without events (its CRD is gone); returns them."""
        bucket = self._objects.pop(storage, {})
        for obj in bucket.values():
            self._uids.pop(obj["metadata"].get("uid", ""), None)
        for subscription in self._subscriptions.pop(storage, set()):
            subscription.close()
        return list(bucket.values())

    # --- watching --------------------------------------------------------------------------------

    def changes_since(self, storage: str, namespace: str | None, resource_version: int) -> ChangeList:
        """Retained changes after `resource_version`; ResourceExpired when it is too old."""
        if resource_version < self._oldest_watchable:
            raise ResourceExpired(
                f"too old resource version: {resource_version} ({self._oldest_watchable + 1})"
            )
        return [
            change
            for change in self._history
            if change.resource_version > resource_version
            and change.storage == storage
            and (namespace is None or change.namespace == namespace)
        ]

    def history_covers(self, resource_version: int) -> bool:
        """Whether every change after `resource_version` is still retained."""
        return resource_version >= self._oldest_watchable

    def subscribe(self, storage: str, namespace: str | None) -> Subscription:
        subscription = Subscription(storage, namespace, self.watch_queue_limit)
        self._subscriptions.setdefault(storage, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        self._subscriptions.get(subscription.storage, set()).discard(subscription)

    def close_all_subscriptions(self) -> None:
        for subscriptions in self._subscriptions.values():
            for subscription in list(subscriptions):
                subscription.close()

    @property
    def watcher_count(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())
