"""The kinds kubesim serves: built-ins, and those registered by CustomResourceDefinitions.

Every version of one group/resource shares one storage (`storage` key), as in etcd; a kind whose
wire form differs from the stored one (events.k8s.io/v1 Event over core/v1 Event) converts on the
way in and out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
Converter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_status: bool = False
    custom: bool = False  # served from a CRD: schema validation, 415 for strategic merge
    tracks_generation: bool = False
    schema: dict[str, Any] | None = field(default=None, compare=False)  # openAPIV3Schema
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    crd_name: str | None = None
    # events.k8s.io/v1 Event is stored as a core/v1 Event (one storage, two wire forms).
    to_storage: Converter | None = field(default=None, compare=False)
    from_storage: Converter | None = field(default=None, compare=False)
    storage_override: str | None = None
    # A review kind: POSTed, answered with a status, never stored (SelfSubjectAccessReview, ...).
    review: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def storage(self) -> str:
        """Key of the object store shared by every version of this group/resource."""
        return self.storage_override or f"{self.group}/{self.plural}"

    def url(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base

    def present(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The stored object in this type's wire form (converted or re-versioned as needed)."""
        if self.from_storage is not None:
            return self.from_storage(stored)
        if stored.get("apiVersion") == self.api_version:
            return stored
        return {**stored, "apiVersion": self.api_version, "kind": self.kind}

    def accept(self, obj: dict[str, Any]) -> dict[str, Any]:
        """An incoming object in storage form."""
        return self.to_storage(obj) if self.to_storage is not None else obj


# --- events.k8s.io/v1 <-> core/v1 Event ----------------------------------------------------------

_EVENT_RENAMES = (
    # (events.k8s.io/v1 field, core/v1 field)
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)


def _events_v1_to_core(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in {new for new, _ in _EVENT_RENAMES}}
    for new, old in _EVENT_RENAMES:
        if new in obj:
            out[old] = obj[new]
    out["apiVersion"], out["kind"] = "v1", "Event"
    return out


def _core_to_events_v1(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in {old for _, old in _EVENT_RENAMES}}
    for new, old in _EVENT_RENAMES:
        if old in obj:
            out[new] = obj[old]
    out["apiVersion"], out["kind"] = "events.k8s.io/v1", "Event"
    if not out.get("eventTime"):
        # Required in events.k8s.io/v1 (clients with strict models refuse a null one).
        when = obj.get("firstTimestamp") or obj.get("metadata", {}).get("creationTimestamp")
        if isinstance(when, str) and when.endswith("Z") and "." not in when:
            out["eventTime"] = when[:-1] + ".000000Z"
    return out


def builtin_types() -> list[ResourceType]:
    return [
        ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",), (), has_status=True),
        ResourceType("", "v1", "secrets", "secret", "Secret", True),
        ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
        ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
        ResourceType(
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            True,
            ("ev",),
            to_storage=_events_v1_to_core,
            from_storage=_core_to_events_v1,
            storage_override="/events",
        ),
        ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
        # What an operator install (the Helm chart) creates. Stored and served like any object
        # (no controller runs them: a Deployment never gets pods), so a chart can be applied.
        ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
        ResourceType("", "v1", "services", "service", "Service", True, ("svc",), ("all",), has_status=True),
        ResourceType(
            "apps",
            "v1",
            "deployments",
            "deployment",
            "Deployment",
            True,
            ("deploy",),
            ("all",),
            has_status=True,
            tracks_generation=True,
        ),
        # The kinds kubectl and kopf users touch first: stored, defaulted and validated as the
        # apiserver does (defaults.py); no controller, scheduler or kubelet acts on them.
        ResourceType("", "v1", "pods", "pod", "Pod", True, ("po",), ("all",), has_status=True),
        ResourceType(
            "",
            "v1",
            "replicationcontrollers",
            "replicationcontroller",
            "ReplicationController",
            True,
            ("rc",),
            ("all",),
            has_status=True,
            tracks_generation=True,
        ),
        ResourceType("", "v1", "nodes", "node", "Node", False, ("no",), has_status=True),
        ResourceType(
            "",
            "v1",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            True,
            ("pvc",),
            has_status=True,
        ),
        ResourceType(
            "",
            "v1",
            "persistentvolumes",
            "persistentvolume",
            "PersistentVolume",
            False,
            ("pv",),
            has_status=True,
        ),
        ResourceType("", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",)),
        *(
            ResourceType(
                group,
                "v1",
                plural,
                plural[:-1],
                kind,
                True,
                short_names,
                ("all",),
                has_status=True,
                tracks_generation=True,
            )
            for group, plural, kind, short_names in (
                ("apps", "replicasets", "ReplicaSet", ("rs",)),
                ("apps", "statefulsets", "StatefulSet", ("sts",)),
                ("apps", "daemonsets", "DaemonSet", ("ds",)),
                ("batch", "jobs", "Job", ()),
                ("batch", "cronjobs", "CronJob", ("cj",)),
            )
        ),
        ResourceType(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "ingress",
            "Ingress",
            True,
            ("ing",),
            has_status=True,
            tracks_generation=True,
        ),
        ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False),
        ResourceType(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            False,
        ),
        ResourceType("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True),
        ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True),
        # `kubectl auth can-i` and `kubectl auth whoami`: kubesim authorizes everyone.
        ResourceType(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "",
            "SelfSubjectAccessReview",
            False,
            verbs=("create",),
            review=True,
        ),
        ResourceType(
            "authorization.k8s.io",
            "v1",
            "selfsubjectrulesreviews",
            "",
            "SelfSubjectRulesReview",
            False,
            verbs=("create",),
            review=True,
        ),
        ResourceType(
            "authentication.k8s.io",
            "v1",
            "selfsubjectreviews",
            "",
            "SelfSubjectReview",
            False,
            verbs=("create",),
            review=True,
        ),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            False,
            ("crd", "crds"),
            ("api-extensions",),
            has_status=True,
            tracks_generation=True,
        ),
    ]


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The served versions of a CRD as resource types."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status="status" in (version.get("subresources") or {}),
                custom=True,
                tracks_generation=True,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                crd_name=crd["metadata"]["name"],
            )
        )
    return types


class ResourceRegistry:
    """Lookup of resource types by group/version/plural, kind, short name; CRDs add and remove."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self.revision = 0  # bumped on every change: discovery and OpenAPI documents' hash
        for rtype in builtin_types():
            self._add(rtype)

    def _add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype
        self.revision += 1

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rtype in self._types.values():
            if rtype.group == group and rtype.version == version and rtype.kind == kind:
                return rtype
        return None

    def group_versions(self) -> dict[str, list[str]]:
        """Group → its versions, in registration order (the first is preferred)."""
        out: dict[str, list[str]] = {}
        for group, version, _ in self._types:
            versions = out.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for (g, v, _), t in self._types.items() if g == group and v == version]

    def storages(self) -> set[str]:
        return {t.storage for t in self._types.values()}

    def primary_for_storage(self, storage: str) -> ResourceType | None:
        for rtype in self._types.values():
            if rtype.storage == storage and rtype.from_storage is None:
                return rtype
        return None

    def register_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        self.unregister_crd(crd["metadata"]["name"], bump=False)
        types = types_from_crd(crd)
        for rtype in types:
            self._add(rtype)
        self.revision += 1
        return types

    def unregister_crd(self, crd_name: str, *, bump: bool = True) -> list[ResourceType]:
        removed = [t for t in self._types.values() if t.crd_name == crd_name]
        for rtype in removed:
            del self._types[(rtype.group, rtype.version, rtype.plural)]
        if bump:
            self.revision += 1
        return removed

    def names_conflict(self, crd: dict[str, Any]) -> str | None:
        """Why the CRD's names cannot be accepted (another CRD or a built-in owns them), or None."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        if not isinstance(names, dict):
            return None  # malformed: validation reports it
        for rtype in self._types.values():
            if rtype.group != spec.get("group") or rtype.crd_name == crd.get("metadata", {}).get("name"):
                continue
            if rtype.plural == names.get("plural"):
                return f'"{rtype.plural}" is already in use'
            if rtype.kind == names.get("kind"):
                return f'"{rtype.kind}" is already in use'
        return None
