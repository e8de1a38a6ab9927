"""The chart with `shards: auto`: several replicas, RollingUpdate, a PodDisruptionBudget and
Lease RBAC in the release's namespace only."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from claw_operator.cli import build_parser
from tests.contract.helm.chart import (
    CHART,
    FULLNAME,
    NON_DEFAULT,
    RELEASE_NAMESPACE,
    SHARDED,
    kinds,
    one,
    render,
    render_files,
)
from tests.contract.helm.test_chart_rbac import permissions

KUBE_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return containers[0]


def test_sharded_deployment_rolls_several_replicas() -> None:
    deployment = one(render(SHARDED), "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


def test_sharded_args_reach_the_cli_and_the_pod_knows_its_name() -> None:
    main = container(render(SHARDED))
    args = build_parser().parse_args(["run", *main["args"]])
    assert args.shards == "auto"
    assert (args.shard_lease_duration, args.shard_renew_deadline, args.shard_retry_period) == (20, 12, 3)
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in main["env"]}
    assert env["POD_NAME"] == "metadata.name" and env["POD_NAMESPACE"] == "metadata.namespace"


def test_unsharded_defaults_render_no_shard_objects() -> None:
    for values in ({}, NON_DEFAULT):
        objects = render(values)
        assert "PodDisruptionBudget" not in kinds(objects)
        assert "--shards=auto" not in container(objects)["args"]
        assert not any(o["metadata"]["name"].endswith("-shards") for o in objects)


def test_several_replicas_without_shards_are_refused() -> None:
    with pytest.raises(Exception, match="shards: auto"):
        render_files({"replicas": 2})


def test_values_outside_the_schema_are_refused() -> None:
    for bad in ({"shards": "on"}, {"replicas": 0}, {"shardTimings": {"leaseDuration": 1.5}}):
        with pytest.raises(helm.HelmValuesError):
            render_files(bad)


def test_pod_disruption_budget_selects_the_operator_pods() -> None:
    objects = render(SHARDED)
    budget = one(objects, "PodDisruptionBudget")
    labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["metadata"]["namespace"] == RELEASE_NAMESPACE


@pytest.mark.parametrize("values", [SHARDED, {**SHARDED, **NON_DEFAULT}], ids=["cluster-wide", "namespaced"])
def test_lease_rbac_is_the_release_namespace_only(values: dict[str, Any]) -> None:
    objects = render(values)
    role = next(o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == f"{FULLNAME}-shards")
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert permissions(role["rules"]) == {
        ("coordination.k8s.io", "leases", verb) for verb in ("get", "list", "create", "update")
    }
    binding = next(
        o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["name"] == f"{FULLNAME}-shards"
    )
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["namespace"] == RELEASE_NAMESPACE
    cluster = one(objects, "ClusterRole")
    assert not any(g == "coordination.k8s.io" for g, _, _ in permissions(cluster["rules"]))


def test_lint_reports_no_errors() -> None:
    report = helm.lint(CHART, SHARDED, strict=True, namespace=RELEASE_NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_rendered_manifest_validates(kube_version: str) -> None:
    validated = []
    for obj in render(SHARDED):
        kubernetes_validate.validate(obj, kube_version, strict=True)
        validated.append(obj["kind"])
    assert {"Deployment", "PodDisruptionBudget", "Role", "RoleBinding"} <= set(validated)
