"""Issue 15, finding 2: strategic merge patch merges lists by each built-in field's patchMergeKey,
honours the directives, and refuses (400/415) what it does not understand.

The clients that send these patches: kubectl's client-side apply and `kubectl patch` (three-way
strategic merges computed from its compiled-in types), `helm upgrade` (the same three-way merge),
and the `kubernetes` client (`patch_namespaced_*` sends a strategic merge patch for a dict body).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes import client, config

from claw_operator.sim.kubesim import KubeSim, KubeSimThread

from .kubectl import Kubectl, requires_kubectl

STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def deployment(env_b: str = "2", image: str = "app:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": env_b},
                                {"name": "C", "value": "3"},
                            ],
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        },
                        {"name": "sidecar", "image": "sidecar:1"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **(headers or {})}
        data = json.dumps(body) if body is not None else None
        async with self.session.request(method, self.base + path, data=data, headers=headers) as r:
            return r.status, json.loads(await r.text())

    async def patch(self, path: str, body: Any) -> dict[str, Any]:
        status, answer = await self.call("PATCH", path, body, STRATEGIC)
        assert status == 200, answer
        return answer  # type: ignore[no-any-return]


@pytest.fixture
async def api(kubesim: KubeSim) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, kubesim.base_url)


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


def containers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


@requires_kubectl
def test_kubectl_client_side_apply_keeps_every_container_env_var_and_port(
    kubectl: Kubectl, kubesim_thread: KubeSimThread, tmp_path: Path
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(yaml.safe_dump(deployment()))
    kubectl.run("apply", "-f", str(manifest))
    manifest.write_text(yaml.safe_dump(deployment(env_b="two")))
    assert "deployment.apps/web configured" in kubectl.run("apply", "-f", str(manifest)).stdout

    live = containers(kubectl.json("get", "deployment", "web"))
    assert set(live) == {"app", "sidecar"}
    assert live["app"]["image"] == "app:1" and live["sidecar"]["image"] == "sidecar:1"
    assert [(e["name"], e["value"]) for e in live["app"]["env"]] == [("A", "1"), ("B", "two"), ("C", "3")]
    assert live["app"]["ports"][0]["containerPort"] == 8080
    assert live["app"]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]

    # A container dropped from the manifest is removed (the three-way patch says `$patch: delete`).
    without_sidecar = deployment(env_b="two")
    del without_sidecar["spec"]["template"]["spec"]["containers"][1]
    manifest.write_text(yaml.safe_dump(without_sidecar))
    kubectl.run("apply", "-f", str(manifest))
    assert set(containers(kubectl.json("get", "deployment", "web"))) == {"app"}


@requires_kubectl
def test_kubectl_patch_adds_a_container_without_dropping_the_others(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=json.dumps(deployment()))
    kubectl.run(
        "patch",
        "deployment",
        "web",
        "-p",
        json.dumps({"spec": {"template": {"spec": {"containers": [{"name": "extra", "image": "extra:1"}]}}}}),
    )
    assert list(containers(kubectl.json("get", "deployment", "web"))) == ["app", "sidecar", "extra"]


def test_client_patch_of_service_ports_merges_by_port(
    api_client: client.ApiClient, kubesim_thread: KubeSimThread
) -> None:
    core = client.CoreV1Api(api_client)
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(
            selector={"app": "web"}, ports=[client.V1ServicePort(name="http", port=80, target_port=8080)]
        ),
    )
    core.create_namespaced_service("default", service)
    patched = core.patch_namespaced_service(
        "web", "default", {"spec": {"ports": [{"name": "metrics", "port": 9090, "targetPort": 9090}]}}
    )
    assert [(p.name, p.port) for p in patched.spec.ports] == [("http", 80), ("metrics", 9090)]
    stored = kubesim_thread.get("v1", "Service", "web", "default")
    assert stored is not None and [p["port"] for p in stored["spec"]["ports"]] == [80, 9090]


async def test_directives_are_honoured(api: Api) -> None:
    status, created = await api.call("POST", DEPLOYMENTS, deployment())
    assert status == 201, created
    url = f"{DEPLOYMENTS}/web"

    deleted = await api.patch(
        url, {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    )
    assert list(containers(deleted)) == ["app"]

    reordered = await api.patch(
        url,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "$setElementOrder/env": [{"name": "C"}, {"name": "A"}, {"name": "B"}],
                                "env": [{"name": "A", "value": "one"}],
                            }
                        ]
                    }
                }
            }
        },
    )
    env = containers(reordered)["app"]["env"]
    assert [(e["name"], e["value"]) for e in env] == [("C", "3"), ("A", "one"), ("B", "2")]

    replaced = await api.patch(
        url,
        {
            "spec": {
                "template": {"spec": {"volumes": [{"name": "tmp", "emptyDir": {}}, {"$patch": "replace"}]}}
            }
        },
    )
    assert replaced["spec"]["template"]["spec"]["volumes"] == [{"name": "tmp", "emptyDir": {}}]

    # `$retainKeys`: switching the strategy drops rollingUpdate, which only RollingUpdate may carry.
    await api.patch(url, {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}}}})
    recreated = await api.patch(url, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert recreated["spec"]["strategy"] == {"type": "Recreate"}

    whole_map = await api.patch(url, {"metadata": {"labels": {"$patch": "replace", "tier": "front"}}})
    assert whole_map["metadata"]["labels"] == {"tier": "front"}


async def test_metadata_lists_merge_by_uid_and_as_sets(api: Api) -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a/x"]}}
    assert (await api.call("POST", CONFIGMAPS, configmap))[0] == 201
    url = f"{CONFIGMAPS}/c"
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-1"}
    await api.patch(url, {"metadata": {"ownerReferences": [owner]}})
    merged = await api.patch(
        url,
        {
            "metadata": {
                "ownerReferences": [{**owner, "name": "o2", "uid": "u-2"}],
                "finalizers": ["b/y", "a/x"],
            }
        },
    )
    assert [r["uid"] for r in merged["metadata"]["ownerReferences"]] == ["u-1", "u-2"]
    assert merged["metadata"]["finalizers"] == ["a/x", "b/y"]
    removed = await api.patch(
        url,
        {
            "metadata": {
                "$deleteFromPrimitiveList/finalizers": ["a/x"],
                "ownerReferences": [{"uid": "u-1", "$patch": "delete"}],
            }
        },
    )
    assert removed["metadata"]["finalizers"] == ["b/y"]
    assert [r["uid"] for r in removed["metadata"]["ownerReferences"]] == ["u-2"]


async def test_what_is_not_understood_is_refused_and_nothing_changes(api: Api, kubesim: KubeSim) -> None:
    assert (await api.call("POST", DEPLOYMENTS, deployment()))[0] == 201
    url = f"{DEPLOYMENTS}/web"
    before = kubesim.get("apps/v1", "Deployment", "web", "default")
    for patch in (
        {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}},  # no merge key
        {"spec": {"$frobnicate": True}},  # an unknown directive
        {"spec": {"strategy": {"$patch": "sideways"}}},  # an unknown $patch
        {"spec": {"template": {"spec": {"containers": {"name": "app"}}}}},  # an object for a list
    ):
        status, answer = await api.call("PATCH", url, patch, STRATEGIC)
        assert status == 400, (patch, answer)
    assert kubesim.get("apps/v1", "Deployment", "web", "default") == before
    claws = "/apis/claw.dev/v1alpha1/namespaces/default/clawinstances/x"
    assert (await api.call("PATCH", claws, {"spec": {}}, STRATEGIC))[0] == 415  # as for any CR


@requires_kubectl
def test_helm_chart_upgrade_as_a_three_way_strategic_merge_keeps_everything(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    from tests.contract.helm.chart import RELEASE_NAMESPACE, render

    kubectl.run("create", "namespace", RELEASE_NAMESPACE)
    before = render({})
    after_values = {
        "flyToken": {"key": "other-key"},
        "logFormat": "text",
        "extraEnv": [{"name": "X", "value": "1"}],
    }
    after = render(after_values)
    manifest = tmp_path / "release.yaml"
    manifest.write_text(yaml.safe_dump_all(before))
    kubectl.run("apply", "-f", str(manifest))
    manifest.write_text(yaml.safe_dump_all(after))
    kubectl.run("apply", "-f", str(manifest))  # the same three-way strategic merge as helm upgrade

    for rendered in after:
        if rendered["kind"] not in ("Deployment", "Service"):
            continue
        live = kubectl.json("get", rendered["kind"], rendered["metadata"]["name"], "-n", RELEASE_NAMESPACE)
        if rendered["kind"] == "Service":
            assert [p["port"] for p in live["spec"]["ports"]] == [
                p["port"] for p in rendered["spec"]["ports"]
            ]
            continue
        want, got = containers(rendered), containers(live)
        assert set(got) == set(want)
        for name, container in want.items():
            assert got[name]["image"] == container["image"]
            assert got[name]["args"] == container["args"]
            assert got[name]["env"] == container["env"]
            assert [p["containerPort"] for p in got[name]["ports"]] == [
                p["containerPort"] for p in container["ports"]
            ]
            assert [m["mountPath"] for m in got[name].get("volumeMounts", [])] == [
                m["mountPath"] for m in container.get("volumeMounts", [])
            ]
