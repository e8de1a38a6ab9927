"""Issue 15, finding 3: field ownership as the apiserver keeps it — managedFields for every write,
server-side apply conflicts (409 naming the manager and the field) and `force` moving ownership.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from claw_operator.sim.kubesim import KubeSimThread

from .kubectl import Kubectl, requires_kubectl

GROUP, VERSION, PLURAL = "claw.dev", "v1alpha1", "clawinstances"
CLAW = ("claw.dev/v1alpha1", "ClawInstance")


def claw(name: str = "a", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClawInstance",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"region": "iad", "image": "registry.fly.io/claw:1", **spec},
    }


def web(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
        },
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


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def apply(kubectl: Kubectl, obj: dict[str, Any], manager: str, *extra: str, check: bool = True) -> Any:
    return kubectl.run(
        "apply",
        "--server-side",
        f"--field-manager={manager}",
        *extra,
        "-f",
        "-",
        stdin=json.dumps(obj),
        check=check,
    )


@requires_kubectl
def test_a_second_applier_conflicts_until_it_forces(kubectl: Kubectl) -> None:
    apply(kubectl, claw(image="i:1"), "alice")
    refused = apply(kubectl, claw(image="i:2"), "bob", check=False)
    assert refused.returncode != 0
    assert 'conflict with "alice": .spec.image' in refused.stderr
    assert kubectl.json("get", "claw", "a")["spec"]["image"] == "i:1"

    # The same value is no conflict: both own the field.
    apply(kubectl, claw(image="i:1"), "bob")
    shared = managers(kubectl.json("get", "claw", "a", "--show-managed-fields"))
    assert (
        "f:image" in shared[("alice", "Apply")]["f:spec"] and "f:image" in shared[("bob", "Apply")]["f:spec"]
    )

    apply(kubectl, claw(image="i:2"), "bob", "--force-conflicts")
    forced = kubectl.json("get", "claw", "a", "--show-managed-fields")
    assert forced["spec"]["image"] == "i:2"
    owners = managers(forced)
    assert "f:image" in owners[("bob", "Apply")]["f:spec"]
    assert "f:image" not in owners[("alice", "Apply")]["f:spec"]
    assert "f:region" in owners[("alice", "Apply")]["f:spec"]  # what was not contested stays alice's


@requires_kubectl
def test_updates_record_their_manager_and_apply_conflicts_with_them(kubectl: Kubectl) -> None:
    kubectl.run("create", "-f", "-", stdin=json.dumps(claw()))
    kubectl.run("patch", "claw", "a", "--type=merge", "-p", '{"spec": {"image": "registry.fly.io/claw:2"}}')
    owners = managers(kubectl.json("get", "claw", "a", "--show-managed-fields"))
    assert set(owners) == {("kubectl-create", "Update"), ("kubectl-patch", "Update")}
    assert "f:image" in owners[("kubectl-patch", "Update")]["f:spec"]
    assert "f:image" not in owners[("kubectl-create", "Update")]["f:spec"]  # the patch took it
    assert "f:region" in owners[("kubectl-create", "Update")]["f:spec"]

    refused = apply(kubectl, claw(image="registry.fly.io/claw:3"), "ci", check=False)
    assert refused.returncode != 0
    assert 'conflict with "kubectl-patch" using claw.dev/v1alpha1: .spec.image' in refused.stderr


def test_client_writes_are_owned_by_the_user_agent_or_field_manager(
    api_client: client.ApiClient, kubesim_thread: KubeSimThread
) -> None:
    custom = client.CustomObjectsApi(api_client)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, claw())
    assert [(e["manager"], e["operation"]) for e in created["metadata"]["managedFields"]] == [
        ("OpenAPI-Generator", "Update")
    ]
    patched = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "a", {"status": {"phase": "Starting"}}, field_manager="operator"
    )
    status_entry = next(e for e in patched["metadata"]["managedFields"] if e["manager"] == "operator")
    assert status_entry["subresource"] == "status" and status_entry["fieldsV1"] == {
        "f:status": {"f:phase": {}}
    }

    with pytest.raises(ApiException) as refused:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "a", {"spec": {"region": "ord"}}, field_manager="x", force=True
        )
    assert refused.value.status == 422  # force is for apply only


@requires_kubectl
def test_appliers_own_list_items_by_key_in_built_ins(kubectl: Kubectl) -> None:
    app = {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}
    apply(kubectl, web([app]), "team-app")
    apply(kubectl, web([{"name": "app", "env": [{"name": "B", "value": "2"}]}]), "team-env")
    live = kubectl.json("get", "deployment", "web", "--show-managed-fields")
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "app:1"
    assert [e["name"] for e in container["env"]] == ["A", "B"]
    env_fields = managers(live)[("team-env", "Apply")]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(env_fields['k:{"name":"app"}']["f:env"]) == {".", 'k:{"name":"B"}'}

    # team-app stops applying its env var: it goes; team-env's stays.
    apply(kubectl, web([{"name": "app", "image": "app:1"}]), "team-app")
    container = kubectl.json("get", "deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    assert [e["name"] for e in container["env"]] == ["B"]

    refused = apply(kubectl, web([{"name": "app", "image": "app:2"}]), "team-env", check=False)
    assert refused.returncode != 0
    assert 'conflict with "team-app": .spec.template.spec.containers[name="app"].image' in refused.stderr
