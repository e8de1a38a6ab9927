"""Leases, sharded list/watch (KEP-5866 `shardSelector`) and client partitions, with real
clients: the official `kubernetes` client and kubectl."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from claw_operator.api.sharding import shard_selector
from claw_operator.lifecycle.shards import owner, share
from claw_operator.sim.kubesim import KubeSimThread
from claw_operator.sim.kubesim.sharding import fnv1a_64
from tests.contract.kubesim.kubectl import Kubectl, requires_kubectl

HALF = "0x8000000000000000"
TOP = "0x10000000000000000"


def lower_half(field: str = "object.metadata.uid") -> str:
    return f"shardRange({field}, '0x0000000000000000', '{HALF}')"


def upper_half(field: str = "object.metadata.uid") -> str:
    return f"shardRange({field}, '{HALF}', '{TOP}')"


def api_for(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.retries = 0
    return client.ApiClient(configuration)


@pytest.fixture
def api_client(kubesim_thread: KubeSimThread) -> Iterator[client.ApiClient]:
    assert kubesim_thread.kubeconfig is not None
    with api_for(kubesim_thread.kubeconfig) as api:
        yield api


def lease(name: str, holder: str, duration: int = 15) -> client.V1Lease:
    now = datetime.now(UTC)
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name=name, labels={"claw.dev/ring": "claw-operator"}),
        spec=client.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=duration,
            acquire_time=now,
            renew_time=now,
            lease_transitions=0,
        ),
    )


def test_lease_create_renew_conflict_list(api_client: client.ApiClient) -> None:
    coordination = client.CoordinationV1Api(api_client)
    created = coordination.create_namespaced_lease("default", lease("claw-operator-a", "a"))
    assert created.spec.holder_identity == "a" and created.spec.lease_duration_seconds == 15
    assert created.spec.renew_time is not None

    with pytest.raises(ApiException) as exists:
        coordination.create_namespaced_lease("default", lease("claw-operator-a", "b"))
    assert exists.value.status == 409

    # A renew is a PUT carrying the resourceVersion read: a stale one answers 409.
    renewed_spec = created.spec
    renewed_spec.renew_time = datetime.now(UTC)
    renewed = coordination.replace_namespaced_lease("claw-operator-a", "default", created)
    assert int(renewed.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(ApiException) as stale:
        coordination.replace_namespaced_lease("claw-operator-a", "default", created)
    assert stale.value.status == 409

    coordination.create_namespaced_lease("default", lease("claw-operator-b", "b"))
    other = lease("unrelated", "x")
    other.metadata.labels = {}
    coordination.create_namespaced_lease("default", other)
    members = coordination.list_namespaced_lease("default", label_selector="claw.dev/ring=claw-operator")
    assert sorted(item.metadata.name for item in members.items) == ["claw-operator-a", "claw-operator-b"]
    assert members.items[0].spec.renew_time.tzinfo is not None  # MicroTime round-trips


def test_lease_watch_sees_renewals(api_client: client.ApiClient) -> None:
    coordination = client.CoordinationV1Api(api_client)
    created = coordination.create_namespaced_lease("default", lease("claw-operator-a", "a"))
    events: list[tuple[str, str]] = []

    def follow() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            coordination.list_namespaced_lease,
            "default",
            resource_version=created.metadata.resource_version,
            timeout_seconds=5,
        ):
            events.append((event["type"], event["object"].spec.holder_identity))
            if len(events) == 2:
                stream.stop()

    watcher = threading.Thread(target=follow)
    watcher.start()
    created.spec.holder_identity = "b"
    coordination.replace_namespaced_lease("claw-operator-a", "default", created)
    coordination.delete_namespaced_lease("claw-operator-a", "default")
    watcher.join(10)
    assert events == [("MODIFIED", "b"), ("DELETED", "b")]


@requires_kubectl
def test_kubectl_get_leases(
    kubesim_thread: KubeSimThread, api_client: client.ApiClient, tmp_path: Path
) -> None:
    client.CoordinationV1Api(api_client).create_namespaced_lease("default", lease("claw-operator-a", "pod-a"))
    assert kubesim_thread.kubeconfig is not None
    kubectl = Kubectl(kubesim_thread.kubeconfig, tmp_path / "cache")
    table = kubectl.run("get", "leases").stdout
    assert "claw-operator-a" in table and "pod-a" in table
    got = kubectl.json("get", "lease", "claw-operator-a")
    assert got["spec"]["holderIdentity"] == "pod-a"


def test_fnv1a_64_matches_the_reference_vectors() -> None:
    # The FNV test suite's vectors for FNV-1a 64.
    assert fnv1a_64("") == 0xCBF29CE484222325
    assert fnv1a_64("a") == 0xAF63DC4C8601EC8C
    assert fnv1a_64("foobar") == 0x85944171F73967E8


def _create_configmaps(api_client: client.ApiClient, count: int) -> dict[str, str]:
    core = client.CoreV1Api(api_client)
    uids = {}
    for i in range(count):
        made = core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm-{i}"))
        )
        uids[made.metadata.name] = made.metadata.uid
    return uids


def test_shard_selector_partitions_a_list_and_echoes_shard_info(api_client: client.ApiClient) -> None:
    uids = _create_configmaps(api_client, 24)
    halves = {}
    for selector in (lower_half(), upper_half()):
        # The Python client has no shardSelector parameter (yet): the query goes raw.
        answer = requests.get(
            f"{api_client.configuration.host}/api/v1/namespaces/default/configmaps",
            params={"shardSelector": selector},
            timeout=5,
        )
        assert answer.status_code == 200
        body = answer.json()
        assert body["metadata"]["shardInfo"] == {"selector": selector}
        halves[selector] = {item["metadata"]["name"] for item in body["items"]}
    low, high = halves[lower_half()], halves[upper_half()]
    assert low.isdisjoint(high) and low | high == set(uids)
    assert low == {name for name, uid in uids.items() if fnv1a_64(uid) < 1 << 63}
    # Both halves in one selector: everything; no selector: no shardInfo.
    both = requests.get(
        f"{api_client.configuration.host}/api/v1/namespaces/default/configmaps",
        params={"shardSelector": f"{lower_half()} || {upper_half()}"},
        timeout=5,
    ).json()
    assert {item["metadata"]["name"] for item in both["items"]} == set(uids)
    plain = requests.get(f"{api_client.configuration.host}/api/v1/namespaces/default/configmaps", timeout=5)
    assert len(plain.json()["items"]) == 24 and "shardInfo" not in plain.json()["metadata"]


@requires_kubectl
def test_kubectl_raw_sharded_list(
    kubesim_thread: KubeSimThread, api_client: client.ApiClient, tmp_path: Path
) -> None:
    uids = _create_configmaps(api_client, 8)
    assert kubesim_thread.kubeconfig is not None
    kubectl = Kubectl(kubesim_thread.kubeconfig, tmp_path / "cache")
    path = "/api/v1/namespaces/default/configmaps?" + urllib.parse.urlencode({"shardSelector": upper_half()})
    body = json.loads(kubectl.run("get", "--raw", path).stdout)
    assert body["metadata"]["shardInfo"]["selector"] == upper_half()
    assert {i["metadata"]["name"] for i in body["items"]} == {
        name for name, uid in uids.items() if fnv1a_64(uid) >= 1 << 63
    }


def test_shard_selector_by_namespace(api_client: client.ApiClient, kubesim_thread: KubeSimThread) -> None:
    core = client.CoreV1Api(api_client)
    for ns in ("team-a", "team-b", "team-c", "team-d"):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    selector = lower_half("object.metadata.namespace")
    answer = requests.get(
        f"{kubesim_thread.base_url}/api/v1/configmaps", params={"shardSelector": selector}, timeout=5
    ).json()
    namespaces = {item["metadata"]["namespace"] for item in answer["items"]}
    expected = {ns for ns in ("team-a", "team-b", "team-c", "team-d") if fnv1a_64(ns) < 1 << 63}
    assert namespaces == expected


@pytest.mark.parametrize(
    "selector",
    [
        "shardRange(object.metadata.name, '0x0', '0x10')",
        "shardRange(object.metadata.uid, '0x10', '0x10')",
        "shardRange(object.metadata.uid, '0x0', '0x10000000000000001')",
        "shardRange(object.metadata.uid, 0x0, 0x10)",
        "shardRange(object.metadata.uid, '0x0', '0x10') || "
        "shardRange(object.metadata.namespace, '0x0', '0x10')",
    ],
)
def test_malformed_shard_selectors_are_refused(kubesim_thread: KubeSimThread, selector: str) -> None:
    answer = requests.get(
        f"{kubesim_thread.base_url}/api/v1/configmaps", params={"shardSelector": selector}, timeout=5
    )
    assert answer.status_code == 400 and "shardSelector" in answer.json()["message"]


def test_sharded_watch_delivers_only_its_share(
    kubesim_thread: KubeSimThread, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    start_rv = core.list_namespaced_config_map("default").metadata.resource_version
    seen: list[str] = []
    query = urllib.parse.urlencode(
        {"watch": "1", "resourceVersion": start_rv, "timeoutSeconds": "3", "shardSelector": lower_half()}
    )

    def follow() -> None:
        with requests.get(
            f"{kubesim_thread.base_url}/api/v1/namespaces/default/configmaps?{query}", stream=True, timeout=10
        ) as stream:
            for line in stream.iter_lines():
                if line:
                    seen.append(json.loads(line)["object"]["metadata"]["name"])

    watcher = threading.Thread(target=follow)
    watcher.start()
    uids = _create_configmaps(api_client, 16)
    watcher.join(10)
    expected = sorted(name for name, uid in uids.items() if fnv1a_64(uid) < 1 << 63)
    assert sorted(seen) == expected and 0 < len(expected) < 16


def test_partition_refuses_one_client_only(kubesim_thread: KubeSimThread, tmp_path: Path) -> None:
    isolated = kubesim_thread.write_kubeconfig(tmp_path / "isolated", token="replica-b")
    assert kubesim_thread.kubeconfig is not None
    base = kubesim_thread.base_url
    with api_for(kubesim_thread.kubeconfig) as healthy, api_for(isolated) as cut_off:
        client.CoreV1Api(cut_off).list_namespaced_config_map("default")  # fine before
        made = requests.post(f"{base}/_kubesim/partitions", json={"token": "replica-b"}, timeout=5)
        assert made.status_code == 201
        with pytest.raises(Exception) as refused:  # the connection is dropped: no HTTP answer
            client.CoreV1Api(cut_off).list_namespaced_config_map("default", _request_timeout=5)
        assert not isinstance(refused.value, ApiException)
        client.CoreV1Api(healthy).list_namespaced_config_map("default")  # others are served

        requests.delete(f"{base}/_kubesim/partitions/{made.json()['id']}", timeout=5)
        requests.post(f"{base}/_kubesim/partitions", json={"token": "replica-b", "mode": "error"}, timeout=5)
        with pytest.raises(ApiException) as unavailable:
            client.CoreV1Api(cut_off).list_namespaced_config_map("default")
        assert unavailable.value.status == 503
        report = requests.get(f"{base}/_kubesim/partitions", timeout=5).json()
        assert [p["token"] for p in report["partitions"]] == ["replica-b"]

        requests.delete(f"{base}/_kubesim/partitions", timeout=5)
        client.CoreV1Api(cut_off).list_namespaced_config_map("default")  # healed


def test_partition_by_user_agent_and_hang(kubesim_thread: KubeSimThread) -> None:
    base = kubesim_thread.base_url
    requests.post(f"{base}/_kubesim/partitions", json={"userAgent": "replica-c", "mode": "hang"}, timeout=5)
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(f"{base}/api/v1/namespaces", headers={"User-Agent": "replica-c/1"}, timeout=0.5)
    assert requests.get(f"{base}/api/v1/namespaces", headers={"User-Agent": "other"}, timeout=5).ok
    answers: list[int] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            requests.get(
                f"{base}/api/v1/namespaces", headers={"User-Agent": "replica-c"}, timeout=10
            ).status_code
        )
    )
    waiter.start()
    requests.delete(f"{base}/_kubesim/partitions", timeout=5)
    waiter.join(10)
    assert answers == [200]  # lifted while it hung: served after all


@requires_kubectl
def test_a_forbidden_client_gets_the_rbac_denial_kubectl_and_the_client_show(
    kubesim_thread: KubeSimThread, tmp_path: Path
) -> None:
    denied = kubesim_thread.write_kubeconfig(tmp_path / "denied", token="no-rbac")
    base = kubesim_thread.base_url
    made = requests.post(
        f"{base}/_kubesim/partitions",
        json={"token": "no-rbac", "mode": "forbidden", "resource": "configmaps"},
        timeout=5,
    )
    assert made.status_code == 201
    with api_for(denied) as api:
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api).list_namespaced_config_map("default")
        assert refused.value.status == 403
        status = json.loads(refused.value.body)
        assert status["reason"] == "Forbidden"
        assert status["message"] == (
            'configmaps is forbidden: User "system:serviceaccount:kubesim:denied" cannot list '
            'resource "configmaps" in API group "" in the namespace "default"'
        )
        client.CoreV1Api(api).list_namespaced_secret("default")  # another resource: allowed
    # kubectl sends no bearer token over plain HTTP: told apart by its User-Agent instead.
    requests.post(
        f"{base}/_kubesim/partitions",
        json={"userAgent": "kubectl/", "mode": "forbidden", "resource": "configmaps"},
        timeout=5,
    ).raise_for_status()
    kubectl = Kubectl(denied, tmp_path / "cache")
    shown = kubectl.run("get", "configmap", "absent", "-n", "default", check=False)
    assert shown.returncode != 0
    assert 'Error from server (Forbidden): configmaps "absent" is forbidden' in shown.stderr
    assert 'cannot get resource "configmaps"' in shown.stderr
    assert kubectl.run("get", "secrets", "-n", "default").returncode == 0  # discovery stays open
    with pytest.raises(requests.HTTPError):
        requests.post(
            f"{base}/_kubesim/partitions", json={"token": "x", "mode": "reset", "resource": "pods"}, timeout=5
        ).raise_for_status()


def test_a_replicas_share_as_a_selector_lists_exactly_what_it_owns(api_client: client.ApiClient) -> None:
    """The operator's bucket assignment written as a shardSelector (what a 1.36 apiserver
    could filter): each of three replicas lists exactly the instances the ring gives it."""
    uids = _create_configmaps(api_client, 60)
    members = ["claw-operator-a", "claw-operator-b", "claw-operator-c"]
    seen: set[str] = set()
    for identity in members:
        selector = shard_selector(share(identity, members))
        answer = requests.get(
            f"{api_client.configuration.host}/api/v1/namespaces/default/configmaps",
            params={"shardSelector": selector},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text[:300]
        names = {item["metadata"]["name"] for item in answer.json()["items"]}
        assert names == {name for name, uid in uids.items() if owner(uid, members) == identity}
        assert names.isdisjoint(seen)
        seen |= names
    assert seen == set(uids)


def test_without_the_feature_shard_selector_is_ignored_like_an_apiserver_before_1_36(
    kubesim_thread: KubeSimThread, api_client: client.ApiClient
) -> None:
    """`POST /_kubesim/features {"shardSelector": false}`: the parameter is ignored (1.28-1.35
    ignore an unknown list option): the whole collection, no `shardInfo`, no 400 on a malformed
    one, and watches unfiltered. Switched back on, it filters again."""
    uids = _create_configmaps(api_client, 12)
    base = kubesim_thread.base_url
    assert requests.get(f"{base}/_kubesim/features", timeout=5).json() == {"shardSelector": True}
    off = requests.post(f"{base}/_kubesim/features", json={"shardSelector": False}, timeout=5)
    assert off.json() == {"shardSelector": False}
    try:
        body = requests.get(
            f"{base}/api/v1/namespaces/default/configmaps", params={"shardSelector": lower_half()}, timeout=5
        ).json()
        assert {i["metadata"]["name"] for i in body["items"]} == set(uids)
        assert "shardInfo" not in body["metadata"]
        malformed = requests.get(
            f"{base}/api/v1/configmaps", params={"shardSelector": "shardRange(nonsense)"}, timeout=5
        )
        assert malformed.status_code == 200
        query = urllib.parse.urlencode({"watch": "1", "timeoutSeconds": "1", "shardSelector": lower_half()})
        with requests.get(
            f"{base}/api/v1/namespaces/default/configmaps?{query}", stream=True, timeout=10
        ) as s:
            names = {json.loads(line)["object"]["metadata"]["name"] for line in s.iter_lines() if line}
        assert names == set(uids)
    finally:
        requests.post(f"{base}/_kubesim/features", json={"shardSelector": True}, timeout=5)
    body = requests.get(
        f"{base}/api/v1/namespaces/default/configmaps", params={"shardSelector": lower_half()}, timeout=5
    ).json()
    assert body["metadata"]["shardInfo"] == {"selector": lower_half()}
    assert len(body["items"]) < 12


def test_stats_count_objects_listed_and_watched_per_client(
    kubesim_thread: KubeSimThread, api_client: client.ApiClient, tmp_path: Path
) -> None:
    """`/_kubesim/stats` `clients`: per bearer token, the lists made, the objects they answered
    and the object events watches sent (bookmarks not counted)."""
    uids = _create_configmaps(api_client, 10)
    low = sum(1 for uid in uids.values() if fnv1a_64(uid) < 1 << 63)
    base = kubesim_thread.base_url
    headers = {"Authorization": "Bearer counted-client"}
    requests.get(
        f"{base}/api/v1/namespaces/default/configmaps",
        params={"shardSelector": lower_half()},
        headers=headers,
        timeout=5,
    )
    query = urllib.parse.urlencode(
        {"watch": "1", "timeoutSeconds": "1", "allowWatchBookmarks": "true", "shardSelector": lower_half()}
    )
    with requests.get(
        f"{base}/api/v1/namespaces/default/configmaps?{query}", headers=headers, stream=True, timeout=10
    ) as stream:
        list(stream.iter_lines())
    counts = requests.get(f"{base}/_kubesim/stats", timeout=5).json()["clients"]["counted-client"]
    assert counts == {
        "list:configmaps": 1,
        "listed:configmaps": low,
        "watch:configmaps": 1,
        "watched:configmaps": low,
    }
