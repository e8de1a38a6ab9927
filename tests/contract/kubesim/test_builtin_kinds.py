"""Issue 15, findings 4, 5 and 6: the built-in kinds kubectl and kopf users touch first are served,
validated and defaulted as the apiserver does, with their initial status, and DELETE answers
what the apiserver answers for each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from claw_operator.sim.kubesim import KubeSimThread

from .kubectl import Kubectl, requires_kubectl
from .test_kopf import claw, eventually, operator_settings

LABELS = {"app": "demo"}
POD_SPEC = {"containers": [{"name": "main", "image": "busybox:1.36", "ports": [{"containerPort": 80}]}]}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": POD_SPEC}


def manifests() -> list[dict[str, Any]]:
    meta = {"labels": LABELS}
    workload = {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}
    job_template = {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod", **meta}, "spec": POD_SPEC},
        {
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "rc", **meta},
            "spec": {"template": TEMPLATE},
        },
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", **meta}, "spec": workload},
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "sts", **meta},
            "spec": workload,
        },
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds", **meta}, "spec": workload},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job", **meta}, "spec": job_template},
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "cron", **meta},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": job_template}},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "pvc", **meta},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "pv", **meta},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "capacity": {"storage": "1Gi"},
                "hostPath": {"path": "/d"},
            },
        },
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", **meta}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ep", **meta}, "subsets": []},
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "ing", **meta},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
        },
    ]


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


# --- finding 4 -------------------------------------------------------------------------------------


@requires_kubectl
def test_kubectl_applies_gets_and_prunes_every_common_kind(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "all.yaml"
    manifest.write_text(yaml.safe_dump_all(manifests()))
    applied = kubectl.run("apply", "-f", str(manifest)).stdout
    assert applied.count(" created") == len(manifests()), applied
    pod = kubectl.json("get", "pod", "pod")
    assert pod["status"]["phase"] == "Pending"
    pending = kubectl.run("get", "pods", "--field-selector=status.phase=Pending", "-o", "name").stdout
    assert pending.split() == ["pod/pod"]
    assert {line.split()[0] for line in kubectl.run("get", "all").stdout.splitlines() if "/" in line} >= {
        "pod/pod",
        "replicationcontroller/rc",
        "replicaset.apps/rs",
        "statefulset.apps/sts",
        "daemonset.apps/ds",
        "job.batch/job",
        "cronjob.batch/cron",
    }
    job = kubectl.json("get", "job", "job")
    assert (
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == job["metadata"]["uid"]
    )

    # `--prune` without an allowlist walks kubectl's default list of kinds: every one must answer.
    manifest.write_text(yaml.safe_dump(manifests()[0]))
    pruned = kubectl.run("apply", "-f", str(manifest), "-l", "app=demo", "--prune").stdout
    for pruned_kind in (
        "replicaset.apps/rs",
        "persistentvolume/pv",
        "cronjob.batch/cron",
        "ingress.networking.k8s.io/ing",
    ):
        assert f"{pruned_kind} pruned" in pruned, pruned
    assert kubectl.run("get", "rs", "rs", check=False).returncode != 0


@requires_kubectl
def test_kinds_are_validated_as_the_apiserver_does(kubectl: Kubectl) -> None:
    no_containers = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    refused = kubectl.run("create", "-f", "-", stdin=json.dumps(no_containers), check=False)
    assert refused.returncode != 0 and "spec.containers: Required value" in refused.stderr
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": POD_SPEC}},
    }
    refused = kubectl.run("create", "-f", "-", stdin=json.dumps(job), check=False)
    assert (
        refused.returncode != 0
        and 'spec.template.spec.restartPolicy: Unsupported value: "Always"' in refused.stderr
    )
    mismatched = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "other"}}, "template": TEMPLATE},
    }
    refused = kubectl.run("create", "-f", "-", stdin=json.dumps(mismatched), check=False)
    assert refused.returncode != 0 and "`selector` does not match template `labels`" in refused.stderr


async def test_kopf_children_pods_example(kubesim_thread: KubeSimThread) -> None:
    """kopf's second tutorial example: a handler creates an adopted child Pod per object."""
    assert kubesim_thread.kubeconfig is not None
    document = yaml.safe_load(kubesim_thread.kubeconfig.read_text())
    registry = kopf.OperatorRegistry()
    seen_pods: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(
            server=document["clusters"][0]["cluster"]["server"],
            scheme="Bearer",
            token=document["users"][0]["user"]["token"],
        )

    @kopf.on.create("claw.dev", "v1alpha1", "clawinstances", registry=registry)
    def create_child(name: str, namespace: str, **_: Any) -> dict[str, str]:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{name}-child"}, "spec": POD_SPEC}
        kopf.adopt(pod)
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(kubesim_thread.kubeconfig), client_configuration=configuration
        )
        with client.ApiClient(configuration) as api:
            created = client.CoreV1Api(api).create_namespaced_pod(namespace, pod)
        return {"child": created.metadata.name}

    @kopf.on.create("v1", "pods", registry=registry)
    def pod_created(name: str, **_: Any) -> None:
        seen_pods.append(name)

    task = asyncio.create_task(
        kopf.operator(registry=registry, settings=operator_settings(), standalone=True, clusterwide=True)
    )
    try:
        kubesim_thread.create(claw("parent"))
        await eventually(lambda: kubesim_thread.get("v1", "Pod", "parent-child", "default") is not None)
        await eventually(lambda: "parent-child" in seen_pods)
        pod = kubesim_thread.get("v1", "Pod", "parent-child", "default")
        assert pod is not None and pod["status"]["phase"] == "Pending"
        assert [ref["name"] for ref in pod["metadata"]["ownerReferences"]] == ["parent"]
        kubesim_thread.delete("claw.dev/v1alpha1", "ClawInstance", "parent", "default")
        await eventually(lambda: kubesim_thread.get("v1", "Pod", "parent-child", "default") is None)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- finding 5 -------------------------------------------------------------------------------------


def test_delete_answers_the_object_where_the_apiserver_does(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    meta = client.V1ObjectMeta(name="x")
    core.create_namespaced_service(
        "default",
        client.V1Service(metadata=meta, spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])),
    )
    core.create_namespaced_service_account("default", client.V1ServiceAccount(metadata=meta))
    core.create_namespaced_pod("default", client.V1Pod(metadata=meta, spec=client.V1PodSpec(**_pod_spec())))
    claim_spec = client.V1PersistentVolumeClaimSpec(
        access_modes=["ReadWriteOnce"],
        resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
    )
    core.create_namespaced_persistent_volume_claim(
        "default", client.V1PersistentVolumeClaim(metadata=meta, spec=claim_spec)
    )
    volume_spec = client.V1PersistentVolumeSpec(
        access_modes=["ReadWriteOnce"],
        capacity={"storage": "1Gi"},
        host_path=client.V1HostPathVolumeSource(path="/d"),
    )
    core.create_persistent_volume(client.V1PersistentVolume(metadata=meta, spec=volume_spec))
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=meta))

    assert isinstance(core.delete_namespaced_service("x", "default"), client.V1Service)
    assert isinstance(core.delete_namespaced_service_account("x", "default"), client.V1ServiceAccount)
    assert core.delete_namespaced_pod("x", "default").metadata.name == "x"
    assert core.delete_namespaced_persistent_volume_claim("x", "default").kind == "PersistentVolumeClaim"
    assert core.delete_persistent_volume("x").kind == "PersistentVolume"
    assert core.delete_namespaced_config_map("x", "default")["status"] == "Success"  # a Status, as before
    with pytest.raises(ApiException):
        core.read_namespaced_service("x", "default")


def _pod_spec() -> dict[str, Any]:
    return {"containers": [client.V1Container(name="main", image="busybox:1.36")]}


# --- finding 6 -------------------------------------------------------------------------------------


def test_services_get_defaults_an_address_and_an_initial_status(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    spec = client.V1ServiceSpec(selector=LABELS, ports=[client.V1ServicePort(name="http", port=80)])
    first = core.create_namespaced_service(
        "default", client.V1Service(metadata=client.V1ObjectMeta(name="a"), spec=spec)
    )
    assert first.spec.type == "ClusterIP" and first.spec.session_affinity == "None"
    assert first.spec.cluster_ip and first.spec.cluster_ips == [first.spec.cluster_ip]
    assert first.spec.ports[0].protocol == "TCP" and first.spec.ports[0].target_port == 80
    assert first.spec.ip_families == ["IPv4"] and first.spec.internal_traffic_policy == "Cluster"
    assert first.status.load_balancer is not None
    node_port = client.V1ServiceSpec(type="NodePort", ports=[client.V1ServicePort(port=80)])
    second = core.create_namespaced_service(
        "default", client.V1Service(metadata=client.V1ObjectMeta(name="b"), spec=node_port)
    )
    assert second.spec.cluster_ip != first.spec.cluster_ip
    assert 30000 <= second.spec.ports[0].node_port <= 32767
    assert second.spec.external_traffic_policy == "Cluster"
    replaced = core.patch_namespaced_service("b", "default", {"metadata": {"labels": {"x": "y"}}})
    assert replaced.spec.cluster_ip == second.spec.cluster_ip
    assert replaced.spec.ports[0].node_port == second.spec.ports[0].node_port


@requires_kubectl
def test_deployments_get_the_apiservers_defaults(kubectl: Kubectl) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": LABELS}, "template": TEMPLATE},
    }
    kubectl.run("apply", "-f", "-", stdin=json.dumps(deployment))
    live = kubectl.json("get", "deployment", "web")
    spec = live["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"]) == (
        "Always",
        "ClusterFirst",
        "default-scheduler",
    )
    assert pod["terminationGracePeriodSeconds"] == 30 and pod["securityContext"] == {}
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["ports"][0]["protocol"] == "TCP"
    assert "status" in live
    # Re-applying the same manifest changes nothing: the defaults are not a difference.
    assert "unchanged" in kubectl.run("apply", "-f", "-", stdin=json.dumps(deployment)).stdout


@requires_kubectl
def test_kubectl_scale_and_the_scale_subresource(kubectl: Kubectl, api_client: client.ApiClient) -> None:
    workload = {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": workload,
    }
    kubectl.run("apply", "-f", "-", stdin=json.dumps(deployment))
    assert "deployment.apps/web scaled" in kubectl.run("scale", "deployment", "web", "--replicas=3").stdout
    assert kubectl.json("get", "deployment", "web")["spec"]["replicas"] == 3
    scale = kubectl.json("get", "deployment", "web", "--subresource=scale")
    assert (scale["kind"], scale["spec"]["replicas"], scale["status"]["selector"]) == ("Scale", 3, "app=demo")

    apps = client.AppsV1Api(api_client)
    patched = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    assert patched.spec.replicas == 5
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 5
    # A stale resourceVersion in the Scale conflicts, as for the object itself.
    stale = client.V1Scale(
        metadata=client.V1ObjectMeta(name="web", resource_version="1"), spec=client.V1ScaleSpec(replicas=1)
    )
    with pytest.raises(ApiException) as refused:
        apps.replace_namespaced_deployment_scale("web", "default", stale)
    assert refused.value.status == 409


@requires_kubectl
def test_typed_create_commands_send_protobuf_that_kubesim_decodes(kubectl: Kubectl) -> None:
    for command in (
        ("deployment", "web", "--image=nginx:1.27", "--port=80", "--replicas=0"),
        ("job", "once", "--image=busybox:1.36"),
        ("cronjob", "tick", "--image=busybox:1.36", "--schedule=*/5 * * * *", "--", "echo", "hi"),
        ("service", "nodeport", "svc", "--tcp=80:8080"),
        ("serviceaccount", "robot"),
        ("role", "reader", "--verb=get", "--resource=pods"),
        ("rolebinding", "reads", "--role=reader", "--serviceaccount=default:robot"),
        ("ingress", "ing", "--rule=example.com/api=svc:80"),
    ):
        assert " created" in kubectl.run("create", *command).stdout, command
    web = kubectl.json("get", "deployment", "web")["spec"]
    assert web["replicas"] == 0  # a pointer's zero is kept, not taken for "unset"
    container = web["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"], container["ports"]) == (
        "nginx",
        "nginx:1.27",
        [{"containerPort": 80, "protocol": "TCP"}],
    )
    assert "hostNetwork" not in web["template"]["spec"]  # protobuf's empty fields are left out
    port = kubectl.json("get", "service", "svc")["spec"]["ports"][0]
    assert (port["port"], port["targetPort"], port["protocol"]) == (80, 8080, "TCP")
    tick = kubectl.json("get", "cronjob", "tick")["spec"]
    assert tick["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    rule = kubectl.json("get", "ingress", "ing")["spec"]["rules"][0]
    assert rule["host"] == "example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "svc", "port": {"number": 80}}
    binding = kubectl.json("get", "rolebinding", "reads")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]


def test_protobuf_that_is_not_understood_is_refused(kubesim_thread: KubeSimThread) -> None:
    import httpx

    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    type_meta = field(1, b"v1") + field(2, b"ConfigMap")
    metadata = field(1, field(1, b"c"))
    unknown = bytes([99 << 3 & 0x7F | 0x80, 99 >> 4, 1])  # field 99, a varint: not in ConfigMap
    for raw in (metadata + unknown, metadata):
        body = b"k8s\x00" + field(1, type_meta) + field(2, raw)
        answer = httpx.post(
            f"{kubesim_thread.base_url}/api/v1/namespaces/default/configmaps",
            content=body,
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        )
        if raw is metadata:
            assert answer.status_code == 201, answer.text
        else:
            assert answer.status_code == 415, answer.text
