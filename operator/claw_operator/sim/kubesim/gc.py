"""Background deletion, as kube-controller-manager does it: dependents whose owners are all gone
(ownerReference garbage collection), the contents of terminating namespaces, and the custom
resources of a deleted CRD. Each is an ordinary delete, so finalizers are honoured. Events
expire after `event_ttl` seconds, as with the apiserver's `--event-ttl` (1 h by default), which
keeps a long demo's memory bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from datetime import UTC, datetime
from typing import Any

from .admission import CRD_CLEANUP_FINALIZER
from .objects import FOREGROUND_FINALIZER as FOREGROUND
from .objects import ObjectService
from .resources import ResourceType
from .store import DELETED, MODIFIED
from .table import parse_time

logger = logging.getLogger(__name__)

NAMESPACES = "/namespaces"
EVENTS = "/events"
CRDS = "apiextensions.k8s.io/customresourcedefinitions"


class GarbageCollector:
    def __init__(self, objects: ObjectService, *, interval: float = 1.0, event_ttl: float = 3600.0) -> None:
        self.objects = objects
        self.interval = interval  # also the cadence of event expiry; deletes wake the collector at once
        self.event_ttl = event_ttl
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kubesim-gc")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        wakeup = self.objects.gc_wakeup
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), self.interval)
            wakeup.clear()
            try:
                async with self.objects.store.lock:
                    self.sweep_locked()
            except Exception:  # a bug here must not stop collection for the rest of the run
                logger.exception("kubesim garbage collection failed")

    def sweep_locked(self) -> None:
        """Collect until nothing more can be collected right now (finalizers may hold some)."""
        while self._sweep_once():
            pass

    def _sweep_once(self) -> bool:
        store, registry = self.objects.store, self.objects.registry
        progressed = False
        now = datetime.now(UTC)
        for storage, obj in store.all_objects():
            metadata = obj["metadata"]
            rtype = registry.primary_for_storage(storage)
            if (
                rtype is None
                or store.get(storage, metadata.get("namespace") or "", metadata["name"]) is not obj
            ):
                continue  # changed or gone earlier in this pass: the next pass sees it afresh
            if FOREGROUND in (metadata.get("finalizers") or ()) and metadata.get("deletionTimestamp"):
                progressed |= self._finish_foreground(rtype, obj)
            elif storage == NAMESPACES and metadata.get("deletionTimestamp"):
                progressed |= self._finish_namespace(obj)
            elif storage == CRDS and metadata.get("deletionTimestamp"):
                progressed |= self._finish_crd(obj)
            elif storage == EVENTS and self._expired(obj, now):
                self.objects.delete_locked(rtype, obj, {})
                progressed = True
            elif metadata.get("ownerReferences") and not metadata.get("deletionTimestamp"):
                owners = [ref.get("uid") for ref in metadata["ownerReferences"]]
                if all(store.by_uid(str(uid)) is None for uid in owners):
                    self.objects.delete_locked(rtype, obj, {})
                    progressed = True
        return progressed

    def _finish_foreground(self, rtype: ResourceType, owner: dict[str, Any]) -> bool:
        """Foreground deletion: delete the dependents; once none is left, release the owner."""
        store, uid = self.objects.store, owner["metadata"]["uid"]
        dependents = [
            (storage, obj)
            for storage, obj in store.all_objects()
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or ())
        ]
        progressed = False
        for storage, dependent in dependents:
            dependent_type = self.objects.registry.primary_for_storage(storage)
            if dependent_type is not None and not dependent["metadata"].get("deletionTimestamp"):
                self.objects.delete_locked(dependent_type, dependent, {})
                progressed = True
        if dependents:
            return progressed
        released = copy.deepcopy(owner)
        released["metadata"]["finalizers"] = [f for f in owner["metadata"]["finalizers"] if f != FOREGROUND]
        released["metadata"]["resourceVersion"] = store.next_resource_version()
        if released["metadata"]["finalizers"]:
            store.commit(MODIFIED, rtype.storage, released, owner)
        else:
            released["metadata"].pop("finalizers")
            self.objects.remove_locked(rtype, released)
        return True

    def _expired(self, event: dict[str, Any], now: datetime) -> bool:
        created = parse_time(event["metadata"].get("creationTimestamp", ""))
        return created is not None and (now - created).total_seconds() > self.event_ttl

    def _delete_all_locked(self, storage: str, namespace: str | None) -> int:
        """Delete every object of `storage` (in `namespace`); returns how many remain."""
        store = self.objects.store
        rtype = self.objects.registry.primary_for_storage(storage)
        for obj in store.list(storage, namespace):
            if rtype is not None and not obj["metadata"].get("deletionTimestamp"):
                self.objects.delete_locked(rtype, obj, {})
        return len(store.list(storage, namespace))

    def _finish_namespace(self, namespace_obj: dict[str, Any]) -> bool:
        store, registry = self.objects.store, self.objects.registry
        name = namespace_obj["metadata"]["name"]
        remaining = 0
        for storage in sorted(registry.storages()):
            rtype = registry.primary_for_storage(storage)
            if rtype is not None and rtype.namespaced:
                remaining += self._delete_all_locked(storage, name)
        if remaining:
            return False
        final = copy.deepcopy(namespace_obj)
        final["spec"] = {**(final.get("spec") or {}), "finalizers": []}
        final["metadata"]["resourceVersion"] = store.next_resource_version()
        store.commit(DELETED, NAMESPACES, final, namespace_obj)
        return True

    def _finish_crd(self, crd: dict[str, Any]) -> bool:
        finalizers = list(crd["metadata"].get("finalizers") or [])
        if CRD_CLEANUP_FINALIZER not in finalizers:
            return False
        spec = crd["spec"]
        if self._delete_all_locked(f"{spec['group']}/{spec['names']['plural']}", None):
            return False
        rtype = self.objects.registry.primary_for_storage(CRDS)
        if rtype is None:
            return False
        new = copy.deepcopy(crd)
        finalizers.remove(CRD_CLEANUP_FINALIZER)
        new["metadata"]["finalizers"] = finalizers
        new["metadata"]["resourceVersion"] = self.objects.store.next_resource_version()
        if finalizers:
            self.objects.store.commit(MODIFIED, CRDS, new, crd)
        else:
            self.objects.remove_locked(rtype, new)
        return True
