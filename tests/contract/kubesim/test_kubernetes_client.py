"""The official `kubernetes` Python client against kubesim: CRUD, watch with RV resume, 409s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from claw_operator.sim.kubesim import KubeSim, KubeSimThread
from tests.fixtures.kubesim import crds_directory

GROUP, VERSION, PLURAL = "claw.dev", "v1alpha1", "clawinstances"


def claw(name: str, region: str = "iad") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClawInstance",
        "metadata": {"name": name},
        "spec": {"region": region, "image": "registry.fly.io/claw:1"},
    }


@pytest.fixture
def api_client(kubesim_thread: KubeSimThread) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubesim_thread.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


def test_custom_object_crud(api_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, claw("one"))
    assert created["metadata"]["uid"] and created["metadata"]["generation"] == 1
    assert created["spec"]["guest"] == {"cpuKind": "shared", "cpus": 2, "memoryMB": 3072}  # schema defaults

    got = custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "one")
    assert got == created
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert listed["kind"] == "ClawInstanceList" and [i["metadata"]["name"] for i in listed["items"]] == [
        "one"
    ]

    got["spec"]["image"] = "registry.fly.io/claw:2"
    replaced = custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "one", got)
    assert replaced["metadata"]["generation"] == 2
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    patched = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "one", {"status": {"phase": "Starting"}}
    )
    assert patched["status"] == {"phase": "Starting"} and patched["metadata"]["generation"] == 2

    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "one")
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "one")
    assert missing.value.status == 404


def test_core_objects_crud(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    secret = core.create_namespaced_secret(
        "default", client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"key": "value"})
    )
    assert secret.data == {"key": "dmFsdWU="} and secret.type == "Opaque"
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"a": "1"})
    )
    core.patch_namespaced_config_map("c", "default", {"data": {"b": "2"}})
    assert core.read_namespaced_config_map("c", "default").data == {"a": "1", "b": "2"}
    namespaces = [ns.metadata.name for ns in core.list_namespace().items]
    assert {"default", "kube-system"} <= set(namespaces)
    event = core.create_namespaced_event(
        "default",
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name="c."),
            involved_object=client.V1ObjectReference(kind="ConfigMap", name="c", namespace="default"),
            reason="Tested",
            message="hello",
            type="Normal",
        ),
    )
    assert event.metadata.name.startswith("c.") and len(event.metadata.name) == len("c.") + 5
    selected = core.list_namespaced_event("default", field_selector="involvedObject.name=c,reason=Tested")
    assert [e.message for e in selected.items] == ["hello"]
    # The same Event through events.k8s.io/v1, with that API's field names.
    events_v1 = client.EventsV1Api(api_client).list_namespaced_event("default")
    assert [(e.note, e.regarding.name) for e in events_v1.items] == [("hello", "c")]
    core.delete_collection_namespaced_config_map("default")
    assert core.list_namespaced_config_map("default").items == []


def test_stale_update_conflicts(api_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    first = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, claw("c"))
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "c", {"metadata": {"labels": {"a": "b"}}}
    )
    first["spec"]["image"] = "registry.fly.io/claw:stale"
    with pytest.raises(ApiException) as stale:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "c", first)
    assert stale.value.status == 409
    with pytest.raises(ApiException) as stale_patch:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            "c",
            {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}},
        )
    assert stale_patch.value.status == 409
    core = client.CoreV1Api(api_client)
    config_map = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="m"))
    )
    core.patch_namespaced_config_map("m", "default", {"data": {"x": "1"}})
    config_map.data = {"y": "2"}
    with pytest.raises(ApiException) as stale_core:
        core.replace_namespaced_config_map("m", "default", config_map)
    assert stale_core.value.status == 409


def test_watch_resumes_from_a_resource_version(api_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, claw("w1"))
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    resume_from = listed["metadata"]["resourceVersion"]
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, claw("w2"))
    custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1", {"spec": {"image": "x:2"}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w2")

    seen = []
    for event in watch.Watch().stream(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        "default",
        PLURAL,
        resource_version=resume_from,
        timeout_seconds=1,
    ):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
    assert seen == [("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]


def test_watch_from_a_trimmed_resource_version_is_gone(tmp_path: Any) -> None:
    with KubeSimThread(
        KubeSim(history_limit=5), crds=crds_directory(), kubeconfig=tmp_path / "kubeconfig"
    ) as sim:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(sim.kubeconfig), client_configuration=configuration)
        with client.ApiClient(configuration) as api:
            custom = client.CustomObjectsApi(api)
            for index in range(10):
                custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, claw(f"o{index}"))
            with pytest.raises(ApiException) as expired:
                for _ in watch.Watch().stream(
                    custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    "default",
                    PLURAL,
                    resource_version="2",
                    timeout_seconds=1,
                ):
                    pass
            assert expired.value.status == 410
