"""Issue 15, finding 1: a server-side dry-run DELETE deletes nothing, however the client says so.

kubectl and the `kubernetes` client send `dryRun` inside the DeleteOptions body, not in the query.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from claw_operator.sim.kubesim import KubeSimThread

from .kubectl import Kubectl, requires_kubectl

GROUP, VERSION, PLURAL = "claw.dev", "v1alpha1", "clawinstances"
CLAW = ("claw.dev/v1alpha1", "ClawInstance")


def claw(
    name: str, labels: dict[str, str] | None = None, finalizers: list[str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "default", "labels": labels or {}}
    if finalizers:
        metadata["finalizers"] = finalizers
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClawInstance",
        "metadata": metadata,
        "spec": {"region": "iad", "image": "registry.fly.io/claw:1"},
    }


@pytest.fixture
def kubectl(kubesim_thread: KubeSimThread, tmp_path: Path) -> Kubectl:
    assert kubesim_thread.kubeconfig is not None
    return Kubectl(kubesim_thread.kubeconfig, tmp_path / "kube-cache")


@pytest.fixture
def api_client(kubesim_thread: KubeSimThread) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubesim_thread.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


def names(kubesim_thread: KubeSimThread) -> set[str]:
    return {o["metadata"]["name"] for o in kubesim_thread.list(*CLAW, "default")}


@requires_kubectl
def test_kubectl_delete_dry_run_server_deletes_nothing(
    kubectl: Kubectl, kubesim_thread: KubeSimThread
) -> None:
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        kubesim_thread.create(claw(name, {"team": team}))
    rv = kubesim_thread.sim.resource_version

    one = kubectl.run("delete", "clawinstance", "a", "--dry-run=server")
    assert "deleted (server dry run)" in one.stdout
    by_label = kubectl.run("delete", "clawinstances", "-l", "team=x", "--dry-run=server")
    assert by_label.stdout.count("(server dry run)") == 2
    everything = kubectl.run("delete", "clawinstances", "--all", "--dry-run=server")
    assert everything.stdout.count("(server dry run)") == 3

    assert names(kubesim_thread) == {"a", "b", "c"}
    assert kubesim_thread.sim.resource_version == rv  # nothing was written at all


@requires_kubectl
def test_kubectl_apply_prune_dry_run_server_prunes_nothing(
    kubectl: Kubectl, kubesim_thread: KubeSimThread, tmp_path: Path
) -> None:
    manifest = tmp_path / "claws.yaml"
    manifest.write_text(yaml.safe_dump_all([claw("keep", {"app": "claws"}), claw("drop", {"app": "claws"})]))
    kubectl.run("apply", "-f", str(manifest))
    manifest.write_text(yaml.safe_dump(claw("keep", {"app": "claws"})))
    pruned = kubectl.run(
        "apply",
        "-f",
        str(manifest),
        "-l",
        "app=claws",
        "--prune",
        "--prune-allowlist=claw.dev/v1alpha1/ClawInstance",
        "--dry-run=server",
    )
    assert "clawinstance.claw.dev/drop pruned (server dry run)" in pruned.stdout
    assert names(kubesim_thread) == {"keep", "drop"}


def test_client_delete_options_dry_run_deletes_nothing(
    api_client: client.ApiClient, kubesim_thread: KubeSimThread
) -> None:
    custom = client.CustomObjectsApi(api_client)
    kubesim_thread.create(claw("plain"))
    kubesim_thread.create(claw("held", finalizers=["claw.dev/cleanup"]))
    dry = client.V1DeleteOptions(dry_run=["All"])

    answered = custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "plain", body=dry)
    assert answered["metadata"]["name"] == "plain"
    held = custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "held", body=dry)
    assert held["metadata"]["deletionTimestamp"]  # what a real delete would do, shown, not stored
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body=dry)
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm")))
    core.delete_namespaced_config_map("cm", "default", body=dry)

    assert names(kubesim_thread) == {"plain", "held"}
    assert "deletionTimestamp" not in kubesim_thread.get(*CLAW, "held", "default")["metadata"]  # type: ignore[index]
    assert kubesim_thread.get("v1", "ConfigMap", "cm", "default") is not None


def test_delete_options_kubesim_cannot_honour_are_refused(
    api_client: client.ApiClient, kubesim_thread: KubeSimThread
) -> None:
    custom = client.CustomObjectsApi(api_client)
    kubesim_thread.create(claw("a"))
    for body in (
        {"dryRun": ["Some"]},
        {"propagationPolicy": "Sideways"},
        {"propagationPolicy": "Orphan", "orphanDependents": True},
    ):
        with pytest.raises(ApiException) as refused:
            custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a", body=body)
        assert refused.value.status == 422, body
    # A misspelt option (the typed client would not even send it) could hide a dry run: refused.
    url = f"{kubesim_thread.base_url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/a"
    unknown = httpx.request("DELETE", url, json={"dryrun": ["All"]})
    assert unknown.status_code == 400 and 'unknown field \\"dryrun\\"' in unknown.text
    assert names(kubesim_thread) == {"a"}


def test_an_unknown_dry_run_value_is_refused_on_every_write(kubesim_thread: KubeSimThread) -> None:
    url = f"{kubesim_thread.base_url}/api/v1/namespaces/default/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    refused = httpx.post(url, json=body, params={"dryRun": "Yes"})
    assert refused.status_code == 422 and 'supported values: \\"All\\"' in refused.text
    assert kubesim_thread.get("v1", "ConfigMap", "c", "default") is None
    assert httpx.post(url, json=body, params={"dryRun": "All"}).status_code == 201
    assert kubesim_thread.get("v1", "ConfigMap", "c", "default") is None
