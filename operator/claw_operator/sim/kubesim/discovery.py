"""Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/G`, `/apis/G/V`.

The legacy (unaggregated) form, which kubectl and kopf fall back to when the response is plain
`application/json`. Short names, categories and all verbs go on main resources only: copied to
`x/status` entries they make kubectl warn about ambiguous short names.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .resources import ResourceRegistry, ResourceType
from .scale import SCALABLE

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def version() -> dict[str, Any]:
    return dict(KUBERNETES_VERSION)


def _storage_version_hash(rtype: ResourceType) -> str:
    return hashlib.sha256(f"{rtype.group}/{rtype.version}/{rtype.kind}".encode()).hexdigest()[:11]


def resource_entries(rtype: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
        "storageVersionHash": _storage_version_hash(rtype),
    }
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    entries = [main]
    if (rtype.group, rtype.plural) in SCALABLE:
        entries.append(
            {
                "name": f"{rtype.plural}/scale",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }
        )
    if rtype.has_status:
        entries.append(
            {
                "name": f"{rtype.plural}/status",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def resource_list(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources = [entry for rtype in types for entry in resource_entries(rtype)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: ResourceRegistry) -> dict[str, Any]:
    groups = [_group(name, versions) for name, versions in registry.group_versions().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: ResourceRegistry, name: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


# --- aggregated discovery (apidiscovery.k8s.io/v2): one document for /api, one for /apis --------

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """Whether the client's first acceptable answer is the v2 aggregated form (kubectl's is)."""
    for clause in accept.split(","):
        parameters = {p.strip() for p in clause.split(";")}
        if "g=apidiscovery.k8s.io" in parameters and "as=APIGroupDiscoveryList" in parameters:
            return "v=v2" in parameters
        if clause.strip().startswith("application/json"):
            return False
    return False


def _aggregated_resource(rtype: ResourceType) -> dict[str, Any]:
    kind = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    resource: dict[str, Any] = {
        "resource": rtype.plural,
        "responseKind": kind,
        "scope": "Namespaced" if rtype.namespaced else "Cluster",
        "singularResource": rtype.singular,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        resource["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        resource["categories"] = list(rtype.categories)
    subresources = []
    if rtype.has_status:
        subresources.append(
            {"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}
        )
    if (rtype.group, rtype.plural) in SCALABLE:
        scale_kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        subresources.append(
            {"subresource": "scale", "responseKind": scale_kind, "verbs": ["get", "patch", "update"]}
        )
    if subresources:
        resource["subresources"] = subresources
    return resource


def aggregated(registry: ResourceRegistry, *, core: bool) -> dict[str, Any]:
    """`/api` (core=True) or `/apis` in the aggregated form."""
    items = []
    for name, versions in registry.group_versions().items():
        if bool(name) == core:
            continue
        items.append(
            {
                "metadata": {"name": name, "creationTimestamp": None}
                if name
                else {"creationTimestamp": None},
                "versions": [
                    {
                        "version": version,
                        "resources": [
                            _aggregated_resource(t) for t in registry.in_group_version(name, version)
                        ],
                        "freshness": "Current",
                    }
                    for version in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
