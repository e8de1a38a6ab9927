"""Object semantics: create, read, update, patch, delete — what kube-apiserver's generic registry
does around storage. HTTP-free, so the server and the in-process API share it.

Every read-modify-write runs while holding the store's one lock. Objects are stored in storage
form and shown to clients in the requested type's wire form (`ResourceType.present`).
"""

from __future__ import annotations

import asyncio
import copy
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import defaults, fieldmanager, strategic
from . import patch as patching
from . import scale as scaling
from .admission import CRD_CLEANUP_FINALIZER, admit_custom, prepare_builtin, validate_metadata
from .errors import ApiError, already_exists, bad_request, conflict, forbidden, invalid, not_found
from .resources import ResourceRegistry, ResourceType
from .store import ADDED, DELETED, MODIFIED, ObjectList, ObjectStore

FOREGROUND_FINALIZER = "foregroundDeletion"
# Go's `utilrand.String`: no vowels, no confusable digits.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Metadata a client cannot change with an update: the server carries it over from the old object.
_IMMUTABLE_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


# An alias: inside the classes below, `list` names a method.
Names = list[str]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str | None = None  # `?fieldManager=`
    field_validation: str = "Warn"  # Ignore, Warn (the server's default) or Strict
    user_agent_manager: str = "kubesim"  # the manager when no fieldManager is given
    force: bool = False  # server-side apply takes conflicting fields

    @property
    def manager(self) -> str:
        return self.field_manager or self.user_agent_manager


@dataclass
class WriteResult:
    obj: dict[str, Any]  # in the requested type's wire form
    created: bool = False
    warnings: list[str] = field(default_factory=list)


def _spec_part(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What `generation` tracks: everything but metadata (and status, with a status subresource)."""
    skip = {"metadata", "status"} if rtype.has_status else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip}


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as no-op detection sees it: a write that changes only the resourceVersion or
    managedFields timestamps stores nothing (a new manager or owned field set does count)."""
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    if "managedFields" in metadata:
        metadata["managedFields"] = [
            {k: v for k, v in entry.items() if k != "time"} for entry in metadata["managedFields"]
        ]
    return {**obj, "metadata": metadata}


class ObjectService:
    """The apiserver's object semantics over an `ObjectStore`."""

    def __init__(self, store: ObjectStore, registry: ResourceRegistry) -> None:
        self.store = store
        self.registry = registry
        self.gc_wakeup = asyncio.Event()  # set when a delete may have orphaned dependents

    # --- reads -------------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return rtype.present(self._stored(rtype, namespace, name))

    def list(
        self, rtype: ResourceType, namespace: str | None, predicate: Callable[[dict[str, Any]], bool]
    ) -> ObjectList:
        scope = namespace if rtype.namespaced else None
        return [obj for obj in map(rtype.present, self.store.list(rtype.storage, scope)) if predicate(obj)]

    # --- create ------------------------------------------------------------------------------------

    def _check_type(self, rtype: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if (kind and kind != rtype.kind) or (api_version and api_version != rtype.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rtype.api_version})"
                if api_version != rtype.api_version
                else f"{kind} is not a {rtype.kind}"
            )
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        if obj.get("metadata") is None:
            obj["metadata"] = {}
        if not isinstance(obj["metadata"], dict):
            raise bad_request("metadata must be an object")
        return obj

    def _require_namespace(self, rtype: ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get("/namespaces", "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise forbidden(
                rtype.plural,
                rtype.group,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _admit(
        self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, options: WriteOptions
    ) -> Names:
        """Per-kind preparation and validation, in place; returns warnings."""
        validate_metadata(rtype, obj)
        names_conflict = (
            self.registry.names_conflict(obj) if rtype.plural == "customresourcedefinitions" else None
        )
        prepare_builtin(rtype, obj, old, names_conflict, self._allocate)
        if rtype.custom:
            admitted = admit_custom(rtype, obj, old, options.field_validation)
            obj.clear()
            obj.update(admitted.obj)
            return admitted.warnings
        return []

    def _allocate(self, what: str) -> Any:
        """A free Service ClusterIP ("clusterIP") or NodePort ("nodePort"), as the allocators give."""
        services = self.store.list("/services")
        if what == "nodePort":
            used_ports = {
                port.get("nodePort")
                for svc in services
                for port in (svc.get("spec") or {}).get("ports") or []
            }
            port = next((p for p in defaults.NODE_PORTS if p not in used_ports), None)
            if port is None:
                raise invalid(
                    "Service",
                    "",
                    "",
                    [{"reason": "FieldValueInvalid", "message": "range is full", "field": "spec.ports"}],
                )
            return port
        used = {(svc.get("spec") or {}).get("clusterIP") for svc in services}
        for address in defaults.SERVICE_CIDR.hosts():
            if int(address) - int(defaults.SERVICE_CIDR.network_address) < 10:
                continue  # the first addresses are the apiserver's and DNS's
            if str(address) not in used:
                return str(address)
        raise invalid(
            "Service",
            "",
            "",
            [{"reason": "FieldValueInvalid", "message": "range is full", "field": "spec.clusterIP"}],
        )

    async def create(
        self, rtype: ResourceType, namespace: str | None, body: Any, options: WriteOptions | None = None
    ) -> WriteResult:
        async with self.store.lock:
            return self.create_locked(rtype, namespace, body, options or WriteOptions())

    def _write(
        self, rtype: ResourceType, options: WriteOptions, subresource: str = "", applied: Any = None
    ) -> fieldmanager.Write:
        return fieldmanager.Write(
            manager=options.manager,
            operation="Update" if applied is None else "Apply",
            api_version=rtype.api_version,
            subresource=subresource,
            applied=applied,
            force=options.force,
            now=now_rfc3339(),
        )

    def create_locked(
        self,
        rtype: ResourceType,
        namespace: str | None,
        body: Any,
        options: WriteOptions,
        write: fieldmanager.Write | None = None,
    ) -> WriteResult:
        obj = rtype.accept(self._check_type(rtype, body))
        metadata = obj["metadata"]
        if rtype.namespaced:
            body_namespace = metadata.get("namespace")
            if namespace and body_namespace and body_namespace != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            namespace = namespace or body_namespace
            if not namespace:
                raise bad_request("the namespace of the object is required")
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
            namespace = ""
        for key in (*fieldmanager.SERVER_OWNED_METADATA, "managedFields"):
            metadata.pop(key, None)
        bucket_storage = rtype.storage
        if not metadata.get("name"):
            prefix = metadata.get("generateName")
            if not prefix:
                raise invalid(
                    rtype.kind,
                    rtype.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: name or generateName is required",
                            "field": "metadata.name",
                        }
                    ],
                )
            for _ in range(16):
                candidate = prefix + "".join(random.choices(_NAME_ALPHABET, k=5))
                if self.store.get(bucket_storage, namespace, candidate) is None:
                    break
            metadata["name"] = candidate
        name = metadata["name"]
        if rtype.namespaced:
            self._require_namespace(rtype, namespace, name)
        if self.store.get(bucket_storage, namespace, name) is not None:
            raise already_exists(rtype.plural, rtype.group, name)
        if rtype.crd_name is not None:
            crd = self.store.get("apiextensions.k8s.io/customresourcedefinitions", "", rtype.crd_name)
            if crd is not None and crd["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    f'create not allowed while custom resource definition "{rtype.crd_name}" is terminating',
                )
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now_rfc3339()
        if rtype.tracks_generation:
            metadata["generation"] = 1
        if rtype.has_status:
            obj.pop("status", None)  # the status subresource owns it
        warnings = self._admit(rtype, obj, None, options)
        fieldmanager.track(rtype, None, obj, write or self._write(rtype, options))
        if options.dry_run:
            obj["metadata"]["resourceVersion"] = str(self.store.resource_version)
            return WriteResult(rtype.present(obj), created=True, warnings=warnings)
        obj["metadata"]["resourceVersion"] = self.store.next_resource_version()
        self.store.commit(ADDED, bucket_storage, obj, None)
        self._after_commit(rtype, obj, deleted=False)
        return WriteResult(rtype.present(obj), created=True, warnings=warnings)

    # --- update ------------------------------------------------------------------------------------

    async def update(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        options: WriteOptions | None = None,
        subresource: str = "",
    ) -> WriteResult:
        async with self.store.lock:
            old = self._stored(rtype, namespace, name)
            new = self._check_type(rtype, body)
            if new["metadata"].get("name") not in (None, name):
                raise bad_request(
                    f"the name of the object ({new['metadata']['name']}) does not match the name on "
                    f"the URL ({name})"
                )
            new["metadata"]["name"] = name
            if rtype.custom and not new["metadata"].get("resourceVersion"):
                raise invalid(
                    rtype.kind,
                    rtype.group,
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "message": "Invalid value: 0x0: must be specified for an update",
                            "field": "metadata.resourceVersion",
                        }
                    ],
                )
            return self.update_locked(rtype, old, rtype.accept(new), options or WriteOptions(), subresource)

    def _stored(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        stored = self.store.get(rtype.storage, (namespace or "") if rtype.namespaced else "", name)
        if stored is None:
            raise not_found(rtype.plural, rtype.group, name)
        return stored

    def update_locked(
        self,
        rtype: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        options: WriteOptions,
        subresource: str = "",
        write: fieldmanager.Write | None = None,
    ) -> WriteResult:
        """Store `new` (storage form) over `old`, with the apiserver's update rules."""
        name = old["metadata"]["name"]
        sent_rv = new.get("metadata", {}).get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, rtype.group, name)
        if subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            metadata = result.setdefault("metadata", {})
            for key in _IMMUTABLE_METADATA:
                if key in old["metadata"]:
                    metadata[key] = old["metadata"][key]
                else:
                    metadata.pop(key, None)
            metadata["name"] = name
            if old["metadata"].get("namespace"):
                metadata["namespace"] = old["metadata"]["namespace"]
            else:
                metadata.pop("namespace", None)
            if "managedFields" not in metadata and "managedFields" in old["metadata"]:
                metadata["managedFields"] = old["metadata"]["managedFields"]
            if rtype.has_status:
                if "status" in old:
                    result["status"] = old["status"]
                else:
                    result.pop("status", None)
            if old["metadata"].get("deletionTimestamp"):
                added = set(metadata.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
                if added:
                    raise invalid(
                        rtype.kind,
                        rtype.group,
                        name,
                        [
                            {
                                "reason": "FieldValueForbidden",
                                "message": "Forbidden: no new finalizers can be added if "
                                "the object is being deleted, found new finalizers "
                                + str(sorted(added)).replace("'", '"'),
                                "field": "metadata.finalizers",
                            }
                        ],
                    )
        write = write or self._write(rtype, options, subresource)
        if write.operation == "Apply":
            # Conflicts come first, as the apiserver's field manager runs before validation.
            fieldmanager.track(rtype, old, copy.deepcopy(result), write)
        warnings = self._admit(rtype, result, old, options)
        fieldmanager.track(rtype, old, result, write)
        if rtype.tracks_generation and _spec_part(rtype, result) != _spec_part(rtype, old):
            result["metadata"]["generation"] = int(old["metadata"].get("generation", 0)) + 1
        if _comparable(result) == _comparable(old):
            return WriteResult(rtype.present(old), warnings=warnings)  # a no-op write keeps the RV
        if options.dry_run:
            return WriteResult(rtype.present(result), warnings=warnings)
        result["metadata"]["resourceVersion"] = self.store.next_resource_version()
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            self.remove_locked(rtype, result)
        else:
            self.store.commit(MODIFIED, rtype.storage, result, old)
            self._after_commit(rtype, result, deleted=False)
        return WriteResult(rtype.present(result), warnings=warnings)

    # --- patch -------------------------------------------------------------------------------------

    async def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: Any,
        options: WriteOptions | None = None,
        subresource: str = "",
    ) -> WriteResult:
        options = options or WriteOptions()
        if patch_type == patching.STRATEGIC and strategic.root_type(rtype.group, rtype.kind) is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            )
        if patch_type == patching.APPLY and not options.field_manager:
            raise bad_request("PATCH, fieldManager is required for apply requests")
        if options.force and patch_type != patching.APPLY:
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [
                    {
                        "reason": "FieldValueForbidden",
                        "message": "Forbidden: may not be specified for non-apply patch",
                        "field": "force",
                    }
                ],
            )
        async with self.store.lock:
            stored = self.store.get(rtype.storage, (namespace or "") if rtype.namespaced else "", name)
            if stored is None:
                if patch_type != patching.APPLY:
                    raise not_found(rtype.plural, rtype.group, name)
                if not isinstance(body, dict):
                    raise bad_request("an apply patch must be an object")
                if (body.get("metadata") or {}).get("name") not in (None, name):
                    raise bad_request("the name of the object does not match the name on the URL")
                created = copy.deepcopy(body)
                created.setdefault("metadata", {})["name"] = name
                applying = self._write(rtype, options, subresource, applied=body)
                return self.create_locked(rtype, namespace, created, options, applying)
            current = rtype.present(stored)
            write: fieldmanager.Write | None = None
            if patch_type == patching.JSON_PATCH:
                patched = patching.json_patch(current, body)
            elif patch_type == patching.MERGE:
                patched = patching.merge_patch(current, body)
            elif patch_type == patching.STRATEGIC:
                patched = strategic.apply(current, body, strategic.root_type(rtype.group, rtype.kind) or "")
            elif patch_type == patching.APPLY:
                if not isinstance(body, dict):
                    raise bad_request("an apply patch must be an object")
                write = self._write(rtype, options, subresource, applied=body)
                patched = fieldmanager.apply_configuration(rtype, current, write)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join(patching.PATCH_TYPES)}",
                )
            if not isinstance(patched, dict):
                raise bad_request("the patch must produce an object")
            patched = self._check_type(rtype, patched)
            if patched["metadata"].get("name") != name:
                raise bad_request("metadata.name cannot be changed by a patch")
            return self.update_locked(rtype, stored, rtype.accept(patched), options, subresource, write)

    # --- the scale subresource ----------------------------------------------------------------

    def get_scale(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return scaling.to_scale(rtype.present(self._stored(rtype, namespace, name)))

    async def write_scale(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        options: WriteOptions,
        patch_type: str | None = None,
    ) -> WriteResult:
        """PUT (patch_type None) or PATCH a Scale: the object's spec.replicas changes."""
        async with self.store.lock:
            stored = self._stored(rtype, namespace, name)
            current = rtype.present(stored)
            wanted = body
            if patch_type is not None:
                wanted = scaling.patched_scale(scaling.to_scale(current), patch_type, body)
            replicas = scaling.replicas_from(wanted, stored, rtype.plural, rtype.group)
            new = copy.deepcopy(current)
            new.setdefault("spec", {})["replicas"] = replicas
            result = self.update_locked(rtype, stored, rtype.accept(new), options, "scale")
            return WriteResult(scaling.to_scale(result.obj), warnings=result.warnings)

    # --- delete ------------------------------------------------------------------------------------

    async def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        delete_options: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        async with self.store.lock:
            stored = self._stored(rtype, namespace, name)
            return rtype.present(self.delete_locked(rtype, stored, delete_options or {}, dry_run))

    def delete_locked(
        self,
        rtype: ResourceType,
        stored: dict[str, Any],
        delete_options: dict[str, Any],
        dry_run: bool = False,
    ) -> dict[str, Any]:
        metadata = stored["metadata"]
        preconditions = delete_options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            wanted = preconditions.get(key)
            if wanted and wanted != metadata.get(key):
                raise conflict(
                    rtype.plural,
                    rtype.group,
                    metadata["name"],
                    f"Precondition failed: {key} in precondition: {wanted}, "
                    f"{key} in object meta: {metadata.get(key)}",
                )
        if (
            delete_options.get("propagationPolicy") == "Orphan" or delete_options.get("orphanDependents")
        ) and not dry_run:
            self._orphan_dependents_locked(metadata["uid"])
        finalizers = list(metadata.get("finalizers") or [])
        terminating_namespace = rtype.group == "" and rtype.plural == "namespaces"
        is_crd = rtype.plural == "customresourcedefinitions"
        if is_crd and CRD_CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CRD_CLEANUP_FINALIZER)
        foreground = delete_options.get("propagationPolicy") == "Foreground"
        # Namespaces and CRDs cascade on their own; other owners wait for their dependents.
        if foreground and not (terminating_namespace or is_crd) and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        if finalizers or terminating_namespace:
            if metadata.get("deletionTimestamp"):
                return stored  # already being deleted: nothing changes
            new = copy.deepcopy(stored)
            new_metadata = new["metadata"]
            new_metadata["deletionTimestamp"] = now_rfc3339()
            new_metadata["deletionGracePeriodSeconds"] = 0
            if finalizers:
                new_metadata["finalizers"] = finalizers
            if rtype.tracks_generation:
                new_metadata["generation"] = int(new_metadata.get("generation", 0)) + 1
            if terminating_namespace:
                new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
            if dry_run:
                return new  # what the delete would have stored; nothing is written
            new_metadata["resourceVersion"] = self.store.next_resource_version()
            self.store.commit(MODIFIED, rtype.storage, new, stored)
            self.gc_wakeup.set()
            return new
        if dry_run:
            return stored  # what the delete would have removed; nothing is written
        new = copy.deepcopy(stored)
        new["metadata"]["resourceVersion"] = self.store.next_resource_version()
        self.remove_locked(rtype, new)
        return new

    def remove_locked(self, rtype: ResourceType, final: dict[str, Any]) -> None:
        """Remove an object for good (its RV already bumped): DELETED to watchers, GC woken."""
        old = self.store.get(
            rtype.storage, final["metadata"].get("namespace") or "", final["metadata"]["name"]
        )
        self.store.commit(DELETED, rtype.storage, final, old)
        self._after_commit(rtype, final, deleted=True)
        self.gc_wakeup.set()

    def _orphan_dependents_locked(self, owner_uid: str) -> None:
        for storage, obj in self.store.all_objects():
            references = obj["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") == owner_uid for ref in references):
                continue
            new = copy.deepcopy(obj)
            kept = [ref for ref in references if ref.get("uid") != owner_uid]
            if kept:
                new["metadata"]["ownerReferences"] = kept
            else:
                new["metadata"].pop("ownerReferences", None)
            new["metadata"]["resourceVersion"] = self.store.next_resource_version()
            self.store.commit(MODIFIED, storage, new, obj)

    async def delete_collection(
        self,
        rtype: ResourceType,
        namespace: str | None,
        predicate: Callable[[dict[str, Any]], bool],
        delete_options: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> ObjectList:
        async with self.store.lock:
            scope = namespace if rtype.namespaced else None
            deleted = []
            for stored in self.store.list(rtype.storage, scope):
                if predicate(rtype.present(stored)):
                    deleted.append(
                        rtype.present(self.delete_locked(rtype, stored, delete_options or {}, dry_run))
                    )
            return deleted

    # --- CRDs --------------------------------------------------------------------------------------

    def _after_commit(self, rtype: ResourceType, obj: dict[str, Any], *, deleted: bool) -> None:
        if rtype.group != "apiextensions.k8s.io" or rtype.plural != "customresourcedefinitions":
            return
        name = obj["metadata"]["name"]
        if deleted:
            for removed in self.registry.unregister_crd(name):
                self.store.drop_storage(removed.storage)
        elif (obj.get("status") or {}).get("acceptedNames"):
            self.registry.register_crd(obj)
