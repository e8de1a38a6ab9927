"""`/openapi/v3` and its per-group-version documents.

kubectl reads them for three things: whether the server validates fields itself (a
`fieldValidation` query parameter on the kind's PATCH operation; then `kubectl apply` skips
client-side validation), `kubectl explain` (the kind's schema, found by its
`x-kubernetes-group-version-kind`), and whether to build a strategic merge patch (only when the
PATCH operation accepts `application/strategic-merge-patch+json`; kubesim never advertises it, so
kubectl uses merge patches for custom resources and its compiled-in types for built-ins).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .resources import ResourceRegistry, ResourceType

OBJECT_META_REF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_OBJECT_META = {
    "description": "ObjectMeta is metadata that all persisted resources must have, which includes all "
    "objects users must create.",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name must be unique within a namespace."},
        "generateName": {
            "type": "string",
            "description": "An optional prefix, used by the server, to generate a unique name.",
        },
        "namespace": {"type": "string", "description": "The namespace the object belongs to."},
        "uid": {"type": "string", "description": "Unique in time and space value for this object."},
        "resourceVersion": {"type": "string", "description": "An opaque value for optimistic concurrency."},
        "generation": {
            "type": "integer",
            "format": "int64",
            "description": "A sequence number representing a specific generation of the desired state.",
        },
        "creationTimestamp": {"type": "string", "format": "date-time", "description": "When it was created."},
        "deletionTimestamp": {
            "type": "string",
            "format": "date-time",
            "description": "When this object will be deleted (set by the server on a graceful delete).",
        },
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Map of string keys and values for organizing and selecting objects.",
        },
        "annotations": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Unstructured key value map stored with a resource.",
        },
        "finalizers": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Must be empty before the object is deleted from the registry.",
        },
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Objects this object depends on; when all are deleted, it is garbage collected.",
        },
    },
}

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

_BUILTIN_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("", "Namespace"): {
        "spec": {
            "type": "object",
            "properties": {"finalizers": {"type": "array", "items": {"type": "string"}}},
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
    ("", "Secret"): {
        "data": {**_STRING_MAP, "description": "Secret data, base64-encoded."},
        "stringData": {**_STRING_MAP, "description": "Write-only plain-text data, merged into data."},
        "type": {"type": "string", "description": "Used to facilitate programmatic handling of secret data."},
        "immutable": {"type": "boolean"},
    },
    ("", "ConfigMap"): {
        "data": _STRING_MAP,
        "binaryData": _STRING_MAP,
        "immutable": {"type": "boolean"},
    },
    ("coordination.k8s.io", "Lease"): {
        "spec": {
            "type": "object",
            "properties": {
                "holderIdentity": {"type": "string"},
                "leaseDurationSeconds": {"type": "integer"},
                "acquireTime": {"type": "string", "format": "date-time"},
                "renewTime": {"type": "string", "format": "date-time"},
                "leaseTransitions": {"type": "integer"},
            },
        }
    },
    ("apiextensions.k8s.io", "CustomResourceDefinition"): {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def _reverse_domain(group: str) -> str:
    return ".".join(reversed(group.split("."))) if group else "io.k8s.api.core"


def schema_name(rtype: ResourceType) -> str:
    return f"{_reverse_domain(rtype.group)}.{rtype.version}.{rtype.kind}"


def _gvk(rtype: ResourceType) -> dict[str, str]:
    return {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}


def _kind_schema(rtype: ResourceType) -> dict[str, Any]:
    if rtype.schema is not None:
        schema = copy.deepcopy(rtype.schema)
    else:
        properties = {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this object.",
            },
            "kind": {
                "type": "string",
                "description": "Kind is a string value representing the REST resource.",
            },
            **copy.deepcopy(_BUILTIN_SCHEMAS.get((rtype.group, rtype.kind), {})),
        }
        if rtype.plural == "events":
            properties.update(
                {k: {"type": "string"} for k in ("reason", "message", "note", "type", "action")}
            )
            properties.update({k: {"type": "object"} for k in ("involvedObject", "regarding", "source")})
        schema = {
            "type": "object",
            "description": f"{rtype.kind} ({rtype.api_version})",
            "properties": properties,
        }
    schema.setdefault("properties", {})["metadata"] = {
        "description": "Standard object's metadata.",
        "allOf": [{"$ref": f"#/components/schemas/{OBJECT_META_REF}"}],
        "default": {},
    }
    schema["x-kubernetes-group-version-kind"] = [_gvk(rtype)]
    return schema


def _list_schema(rtype: ResourceType) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{rtype.list_kind} is a list of {rtype.kind}",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{schema_name(rtype)}"}},
            "metadata": {"type": "object"},
        },
        "x-kubernetes-group-version-kind": [{**_gvk(rtype), "kind": rtype.list_kind}],
    }


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string"},
        "uniqueItems": True,
    }


_WRITE_PARAMS = [
    _query("dryRun", "When present, modifications are not persisted."),
    _query("fieldManager", "A name associated with the actor or entity making these changes."),
    _query(
        "fieldValidation",
        "How the server handles unknown or duplicate fields: Ignore, Warn (default) or Strict.",
    ),
]


def _operation(
    rtype: ResourceType, action: str, operation_id: str, *, body: list[str] | None = None
) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema_name(rtype)}"}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rtype),
    }
    if body is not None:
        operation["parameters"] = copy.deepcopy(_WRITE_PARAMS)
        operation["requestBody"] = {"content": {media: {"schema": ref} for media in body}, "required": True}
    return operation


def _paths(rtype: ResourceType) -> dict[str, Any]:
    prefix = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else "/api/v1"
    scope = "/namespaces/{namespace}" if rtype.namespaced else ""
    op_suffix = f"{rtype.kind}{_reverse_domain(rtype.group).title().replace('.', '')}{rtype.version.title()}"
    collection = f"{prefix}{scope}/{rtype.plural}"
    item = collection + "/{name}"
    patch_media = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ]
    paths: dict[str, Any] = {
        collection: {
            "get": _operation(rtype, "list", f"list{op_suffix}"),
            "post": _operation(
                rtype, "post", f"create{op_suffix}", body=["application/json", "application/yaml"]
            ),
            "delete": _operation(rtype, "deletecollection", f"deletecollection{op_suffix}"),
        },
        item: {
            "get": _operation(rtype, "get", f"read{op_suffix}"),
            "put": _operation(
                rtype, "put", f"replace{op_suffix}", body=["application/json", "application/yaml"]
            ),
            "patch": _operation(rtype, "patch", f"patch{op_suffix}", body=patch_media),
            "delete": _operation(rtype, "delete", f"delete{op_suffix}"),
        },
    }
    if rtype.has_status:
        paths[item + "/status"] = {
            "get": _operation(rtype, "get", f"read{op_suffix}Status"),
            "put": _operation(rtype, "put", f"replace{op_suffix}Status", body=["application/json"]),
            "patch": _operation(rtype, "patch", f"patch{op_suffix}Status", body=patch_media),
        }
    return paths


def group_version_path(rtype_group: str, version: str) -> str:
    return f"apis/{rtype_group}/{version}" if rtype_group else f"api/{version}"


def document(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {OBJECT_META_REF: copy.deepcopy(_OBJECT_META)}
    for rtype in types:
        if rtype.review:
            continue  # nothing to apply or explain
        paths.update(_paths(rtype))
        schemas[schema_name(rtype)] = _kind_schema(rtype)
        schemas[schema_name(rtype) + "List"] = _list_schema(rtype)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def document_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()


def index(registry: ResourceRegistry) -> dict[str, Any]:
    """`/openapi/v3`: each group-version document's URL, with a content hash kubectl caches by."""
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = document(registry, group, version)
            if doc is not None:
                relative = group_version_path(group, version)
                paths[relative] = {"serverRelativeURL": f"/openapi/v3/{relative}?hash={document_hash(doc)}"}
    return {"paths": paths}
