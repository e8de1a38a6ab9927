"""crdschema's pruning, defaulting and ratcheting, as kubesim applies them before storing."""

from __future__ import annotations

import copy
from typing import Any

from claw_operator.sim.crdschema import apply_defaults, cel_errors, prune, validate


def minimal() -> dict[str, Any]:
    return {
        "apiVersion": "claw.dev/v1alpha1",
        "kind": "ClawInstance",
        "metadata": {"name": "a", "namespace": "default"},
        "spec": {"region": "iad", "image": "registry.fly.io/claw:1"},
    }


def test_prune_drops_undeclared_fields_and_reports_their_paths(crd_schema: dict[str, Any]) -> None:
    obj = minimal()
    obj["spec"]["bogus"] = {"deep": 1}
    obj["spec"]["secretEnv"] = [{"name": "A", "secretKeyRef": {"name": "s", "key": "k", "extra": 1}}]
    obj["metadata"]["unknownMeta"] = "x"
    obj["topLevel"] = 1
    original = copy.deepcopy(obj)
    pruned, paths = prune(crd_schema, obj)
    assert obj == original, "prune must not change its input"
    assert sorted(paths) == [
        "metadata.unknownMeta",
        "spec.bogus",
        "spec.secretEnv[0].secretKeyRef.extra",
        "topLevel",
    ]
    assert pruned["spec"]["secretEnv"] == [{"name": "A", "secretKeyRef": {"name": "s", "key": "k"}}]
    assert pruned["metadata"] == {"name": "a", "namespace": "default"}


def test_prune_keeps_free_form_maps_and_drops_non_nullable_nulls(crd_schema: dict[str, Any]) -> None:
    obj = minimal()
    obj["spec"]["env"] = {"ANY_NAME": "kept"}
    obj["spec"]["guest"] = None
    obj["status"] = {"machineId": None}
    pruned, paths = prune(crd_schema, obj)
    assert paths == []
    assert pruned["spec"]["env"] == {"ANY_NAME": "kept"}
    assert "guest" not in pruned["spec"]  # not nullable: pruned, then defaulted
    assert pruned["status"] == {"machineId": None}  # nullable: kept


def test_defaults_fill_absent_fields_top_down(crd_schema: dict[str, Any]) -> None:
    defaulted = apply_defaults(crd_schema, minimal())
    spec = defaulted["spec"]
    assert spec["guest"] == {"cpuKind": "shared", "cpus": 2, "memoryMB": 3072}
    assert spec["volume"] == {"sizeGB": 10, "mountPath": "/root"}
    assert (spec["state"], spec["deletionPolicy"]) == ("Running", "Delete")
    partial = minimal()
    partial["spec"]["guest"] = {"cpus": 4}
    assert apply_defaults(crd_schema, partial)["spec"]["guest"] == {
        "cpuKind": "shared",
        "cpus": 4,
        "memoryMB": 3072,
    }
    assert validate(crd_schema, defaulted) == []


def test_ratcheting_skips_rules_on_unchanged_values_only(crd_schema: dict[str, Any]) -> None:
    old = apply_defaults(crd_schema, minimal())
    old["spec"]["env"] = {"FLY_LEGACY": "stored before the rule existed"}
    status_only = copy.deepcopy(old)
    status_only["status"] = {"phase": "Running"}
    assert [c.field for c in cel_errors(crd_schema, status_only, old)] == ["spec.env"]
    assert cel_errors(crd_schema, status_only, old, ratcheting=True) == []
    moved = copy.deepcopy(status_only)
    moved["spec"]["region"] = "ord"
    fields = [c.field for c in cel_errors(crd_schema, moved, old, ratcheting=True)]
    assert "spec.region" in fields and "spec.env" not in fields
