"""The `/scale` subresource of Deployments, ReplicaSets, StatefulSets and ReplicationControllers:
an `autoscaling/v1` Scale over the object's `spec.replicas` (what `kubectl scale` and autoscalers
read and write). Nothing acts on the new count: no controller runs.
"""

from __future__ import annotations

from typing import Any

from . import patch as patching
from . import strategic
from .errors import bad_request, conflict

SCALE_API_VERSION = "autoscaling/v1"
SCALABLE = {
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("", "replicationcontrollers"),
}


def _selector(obj: dict[str, Any]) -> str:
    selector = (obj.get("spec") or {}).get("selector") or {}
    labels = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if isinstance(v, str))


def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": SCALE_API_VERSION,
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in metadata
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": _selector(obj)},
    }


def patched_scale(current: dict[str, Any], patch_type: str, body: Any) -> dict[str, Any]:
    """The Scale after a PATCH of it (merge, JSON or strategic)."""
    if patch_type == patching.MERGE:
        result = patching.merge_patch(current, body)
    elif patch_type == patching.JSON_PATCH:
        result = patching.json_patch(current, body)
    elif patch_type == patching.STRATEGIC:
        result = strategic.apply(current, body, "$Scale")  # no lists in a Scale: a plain merge
    else:
        raise bad_request(f"{patch_type} is not supported on the scale subresource")
    if not isinstance(result, dict):
        raise bad_request("the patch must produce a Scale")
    return result


def replicas_from(scale: Any, current: dict[str, Any], plural: str, group: str) -> int:
    """The new `spec.replicas` a written Scale asks for; 409 on a stale resourceVersion."""
    if not isinstance(scale, dict) or scale.get("kind") not in (None, "Scale"):
        raise bad_request("the body of a scale subresource write must be a Scale")
    sent_rv = (scale.get("metadata") or {}).get("resourceVersion")
    if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
        raise conflict(plural, group, current["metadata"]["name"])
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise bad_request(f"spec.replicas must be a non-negative integer, not {replicas!r}")
    return replicas
