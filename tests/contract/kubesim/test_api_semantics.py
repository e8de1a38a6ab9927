"""apiserver semantics over raw HTTP, one behaviour per test (what kopf and kubectl rely on)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml

from claw_operator.sim.kubesim import KubeSim
from tests.fixtures.kubesim import crds_directory

CLAWS = "/apis/claw.dev/v1alpha1/namespaces/default/clawinstances"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **params: str
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json", **(headers or {})}
        async with self.session.request(
            method, self.base + path, data=data, headers=headers, params=params
        ) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text.startswith(("{", "[")) else text), r.headers

    async def ok(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **params: str
    ) -> Any:
        status, payload, _ = await self.call(method, path, body, headers, **params)
        assert status in (200, 201), (status, payload)
        return payload

    async def watch(self, path: str, until: int, **params: str) -> list[dict[str, Any]]:
        """Watch events until `until` of them arrived or the server ends the stream."""
        events: list[dict[str, Any]] = []
        async with self.session.get(self.base + path, params={"watch": "1", **params}) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "application/json"
            async for line in response.content:
                events.append(json.loads(line))
                if len(events) >= until:
                    break
        return events


def claw(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "claw.dev/v1alpha1",
        "kind": "ClawInstance",
        "metadata": {"name": name},
        "spec": {"region": "iad", "image": "registry.fly.io/claw:1", **spec},
    }


@pytest.fixture
async def api(kubesim: KubeSim) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, kubesim.base_url)


# --- discovery and OpenAPI -------------------------------------------------------------------------


async def test_discovery_names_group_versions_and_keeps_short_names_off_subresources(api: Api) -> None:
    core = await api.ok("GET", "/api/v1")
    assert core["groupVersion"] == "v1"
    assert {"namespaces", "secrets", "configmaps", "events", "namespaces/status"} <= {
        r["name"] for r in core["resources"]
    }
    groups = {g["name"]: g for g in (await api.ok("GET", "/apis"))["groups"]}
    assert {"claw.dev", "apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io"} <= set(groups)
    assert groups["claw.dev"]["preferredVersion"]["groupVersion"] == "claw.dev/v1alpha1"
    claw_resources = {r["name"]: r for r in (await api.ok("GET", "/apis/claw.dev/v1alpha1"))["resources"]}
    assert claw_resources["clawinstances"]["shortNames"] == ["claw"]
    assert claw_resources["clawinstances"]["categories"] == ["claw"]
    assert claw_resources["clawinstances/status"]["verbs"] == ["get", "patch", "update"]
    assert "shortNames" not in claw_resources["clawinstances/status"]
    assert (await api.ok("GET", "/version"))["major"] == "1"
    assert (await api.call("GET", "/apis/nothing.example.com/v1"))[0] == 404


async def test_openapi_v3_advertises_field_validation_and_the_schema(api: Api) -> None:
    index = await api.ok("GET", "/openapi/v3")
    url = index["paths"]["apis/claw.dev/v1alpha1"]["serverRelativeURL"]
    path, _, query = url.partition("?")
    doc = await api.ok("GET", path, **dict([query.split("=")]))
    patch = doc["paths"]["/apis/claw.dev/v1alpha1/namespaces/{namespace}/clawinstances/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "claw.dev",
        "version": "v1alpha1",
        "kind": "ClawInstance",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    schema = doc["components"]["schemas"]["dev.claw.v1alpha1.ClawInstance"]
    assert (
        schema["properties"]["spec"]["properties"]["guest"]["description"] == "The machine's CPU and memory."
    )
    assert "api/v1" in index["paths"]
    assert (await api.call("GET", "/openapi/v2"))[0] == 404  # kubectl then relies on v3


# --- create, read, update ----------------------------------------------------------------------------


async def test_create_fills_server_fields_and_answers_201(api: Api) -> None:
    status, created, _ = await api.call("POST", CLAWS, {**claw("a"), "status": {"phase": "Running"}})
    assert status == 201
    metadata = created["metadata"]
    assert metadata["namespace"] == "default" and metadata["generation"] == 1
    assert metadata["uid"] and metadata["creationTimestamp"].endswith("Z") and metadata["resourceVersion"]
    assert "status" not in created  # the status subresource owns status
    assert (await api.call("POST", CLAWS, claw("a")))[0] == 409
    generated = await api.ok("POST", CLAWS, {**claw(""), "metadata": {"generateName": "gen-"}})
    assert generated["metadata"]["name"].startswith("gen-") and len(generated["metadata"]["name"]) == 9
    other_namespace = {**claw("b"), "metadata": {"name": "b", "namespace": "elsewhere"}}
    assert (await api.call("POST", CLAWS, other_namespace))[0] == 400
    missing_namespace = await api.call("POST", CLAWS.replace("default", "nowhere"), claw("c"))
    assert missing_namespace[0] == 404


async def test_status_subresource_splits_spec_and_status_and_generation_tracks_spec(api: Api) -> None:
    created = await api.ok("POST", CLAWS, claw("a"))
    ignored = await api.ok("PATCH", f"{CLAWS}/a", {"status": {"phase": "Running"}}, MERGE)
    assert (
        "status" not in ignored
        and ignored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    )
    status_only = await api.ok(
        "PATCH", f"{CLAWS}/a/status", {"status": {"phase": "Running"}, "spec": {"image": "no"}}, MERGE
    )
    assert (
        status_only["status"] == {"phase": "Running"}
        and status_only["spec"]["image"] == "registry.fly.io/claw:1"
    )
    assert status_only["metadata"]["generation"] == 1
    labelled = await api.ok("PATCH", f"{CLAWS}/a", {"metadata": {"labels": {"x": "y"}}}, MERGE)
    assert labelled["metadata"]["generation"] == 1
    respec = await api.ok("PATCH", f"{CLAWS}/a", {"spec": {"image": "registry.fly.io/claw:2"}}, MERGE)
    assert respec["metadata"]["generation"] == 2 and respec["status"] == {"phase": "Running"}
    immutable = await api.ok(
        "PATCH",
        f"{CLAWS}/a",
        {"metadata": {"uid": "forged", "creationTimestamp": "2000-01-01T00:00:00Z"}},
        MERGE,
    )
    assert immutable["metadata"]["uid"] == created["metadata"]["uid"]
    assert immutable["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


async def test_put_needs_a_current_resource_version(api: Api) -> None:
    created = await api.ok("POST", CLAWS, claw("a"))
    no_version = {**created, "metadata": {**created["metadata"], "resourceVersion": ""}}
    assert (await api.call("PUT", f"{CLAWS}/a", no_version))[0] == 422
    updated = await api.ok("PUT", f"{CLAWS}/a", {**created, "spec": {**created["spec"], "image": "x:2"}})
    status, body, _ = await api.call("PUT", f"{CLAWS}/a", created)
    assert status == 409 and body["reason"] == "Conflict"
    assert (
        await api.call(
            "PUT", f"{CLAWS}/missing", {**updated, "metadata": {"name": "missing", "resourceVersion": "1"}}
        )
    )[0] == 404


async def test_patch_types(api: Api) -> None:
    await api.ok("POST", CLAWS, claw("a", env={"A": "1", "B": "2"}))
    merged = await api.ok("PATCH", f"{CLAWS}/a", {"spec": {"env": {"A": None, "C": "3"}}}, MERGE)
    assert merged["spec"]["env"] == {"B": "2", "C": "3"}
    rv = merged["metadata"]["resourceVersion"]
    tested = await api.ok(
        "PATCH",
        f"{CLAWS}/a",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]},
        ],
        JSON_PATCH,
    )
    assert tested["metadata"]["finalizers"] == ["f"]
    status, body, _ = await api.call(
        "PATCH", f"{CLAWS}/a", [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}], JSON_PATCH
    )
    assert status == 422, body
    strategic = {"Content-Type": "application/strategic-merge-patch+json"}
    assert (await api.call("PATCH", f"{CLAWS}/a", {"spec": {}}, strategic))[0] == 415
    await api.ok(
        "POST",
        CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
    )
    assert (await api.ok("PATCH", f"{CONFIGMAPS}/c", {"data": {"b": "2"}}, strategic))["data"] == {
        "a": "1",
        "b": "2",
    }
    stale = await api.call(
        "PATCH", f"{CLAWS}/a", {"metadata": {"resourceVersion": "1"}, "spec": {"image": "y"}}, MERGE
    )
    assert stale[0] == 409


async def test_server_side_apply_creates_then_merges_and_records_the_manager(api: Api) -> None:
    apply = {"Content-Type": "application/apply-patch+yaml"}
    manifest = {**claw("a"), "metadata": {"name": "a", "labels": {"team": "x"}}}
    assert (await api.call("PATCH", f"{CLAWS}/a", manifest, apply))[0] == 400  # fieldManager is required
    status, created, _ = await api.call("PATCH", f"{CLAWS}/a", manifest, apply, fieldManager="ci")
    assert status == 201 and created["metadata"]["managedFields"][0]["manager"] == "ci"
    manifest["spec"]["image"] = "registry.fly.io/claw:2"
    status, merged, _ = await api.call("PATCH", f"{CLAWS}/a", manifest, apply, fieldManager="ci")
    assert status == 200 and merged["spec"]["image"] == "registry.fly.io/claw:2"
    assert merged["metadata"]["labels"] == {"team": "x"} and merged["metadata"]["generation"] == 2


# --- validation ---------------------------------------------------------------------------------------


async def test_unknown_fields_are_pruned_with_a_warning_or_refused_when_strict(api: Api) -> None:
    body = claw("a", bogus=1)
    status, created, headers = await api.call("POST", CLAWS, body)
    assert status == 201 and "bogus" not in created["spec"]
    assert 'unknown field \\"spec.bogus\\"' in headers["Warning"]
    assert created["spec"]["guest"] == {"cpuKind": "shared", "cpus": 2, "memoryMB": 3072}
    assert created["spec"]["volume"] == {"sizeGB": 10, "mountPath": "/root"}
    status, refused, _ = await api.call("POST", CLAWS, claw("b", bogus=1), fieldValidation="Strict")
    assert status == 400 and 'unknown field "spec.bogus"' in refused["message"]


async def test_schema_and_cel_errors_are_422_with_causes_naming_fields(api: Api) -> None:
    status, refused, _ = await api.call("POST", CLAWS, claw("a", guest={"cpus": 0, "memoryMB": 100}))
    assert status == 422 and refused["reason"] == "Invalid"
    assert {c["field"] for c in refused["details"]["causes"]} == {"spec.guest.cpus", "spec.guest.memoryMB"}
    assert refused["message"].startswith(
        'ClawInstance.claw.dev "a" is invalid: [spec.guest.cpus: Invalid value: 0'
    )
    await api.ok("POST", CLAWS, claw("b"))
    status, moved, _ = await api.call("PATCH", f"{CLAWS}/b", {"spec": {"region": "ord"}}, MERGE)
    assert status == 422 and moved["details"]["causes"][0]["field"] == "spec.region"
    assert "region is immutable" in moved["message"]
    status, both, _ = await api.call(
        "POST",
        CLAWS,
        claw("c", env={"K": "v"}, secretEnv=[{"name": "K", "secretKeyRef": {"name": "s", "key": "k"}}]),
    )
    assert status == 422 and both["details"]["causes"][0]["field"] == "spec.secretEnv"


# --- delete, finalizers, garbage collection ---------------------------------------------------------


async def test_finalizers_hold_deletion_until_the_last_is_removed(api: Api) -> None:
    await api.ok("POST", CLAWS, {**claw("a"), "metadata": {"name": "a", "finalizers": ["x/one", "x/two"]}})
    deleting = await api.ok("DELETE", f"{CLAWS}/a")
    assert deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["generation"] == 2
    again = await api.ok("DELETE", f"{CLAWS}/a")
    assert again["metadata"]["resourceVersion"] == deleting["metadata"]["resourceVersion"]
    status, refused, _ = await api.call(
        "PATCH", f"{CLAWS}/a", {"metadata": {"finalizers": ["x/one", "x/two", "x/three"]}}, MERGE
    )
    assert status == 422 and "no new finalizers" in refused["message"]
    await api.ok("PATCH", f"{CLAWS}/a", {"metadata": {"finalizers": ["x/two"]}}, MERGE)
    assert (await api.call("GET", f"{CLAWS}/a"))[0] == 200
    watching = asyncio.create_task(
        api.watch(
            CLAWS, 1, resourceVersion=deleting["metadata"]["resourceVersion"], fieldSelector="metadata.name=a"
        )
    )
    gone = await api.ok("PATCH", f"{CLAWS}/a", {"metadata": {"finalizers": None}}, MERGE)
    assert (await api.call("GET", f"{CLAWS}/a"))[0] == 404
    events = await asyncio.wait_for(watching, 10)
    assert [e["type"] for e in events] == ["MODIFIED"]  # the first finalizer's removal
    tail = await api.watch(
        CLAWS, 1, resourceVersion=events[0]["object"]["metadata"]["resourceVersion"], timeoutSeconds="1"
    )
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in tail] == [
        ("DELETED", gone["metadata"]["resourceVersion"])
    ]


async def test_owner_references_are_garbage_collected_unless_orphaned(api: Api, kubesim: KubeSim) -> None:
    owner = await api.ok("POST", CLAWS, claw("owner"))
    reference = {
        "apiVersion": "claw.dev/v1alpha1",
        "kind": "ClawInstance",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    for name in ("dependent", "kept"):
        await api.ok(
            "POST",
            CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "ownerReferences": [reference]},
            },
        )
    await api.ok("DELETE", f"{CLAWS}/owner")
    await kubesim.wait_for(lambda: kubesim.get("v1", "ConfigMap", "dependent", "default") is None)
    owner2 = await api.ok("POST", CLAWS, claw("owner2"))
    ref2 = {**reference, "name": "owner2", "uid": owner2["metadata"]["uid"]}
    await api.ok(
        "POST",
        CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "orphan", "ownerReferences": [ref2]}},
    )
    await api.ok("DELETE", f"{CLAWS}/owner2", {"propagationPolicy": "Orphan"})
    orphan = kubesim.get("v1", "ConfigMap", "orphan", "default")
    assert orphan is not None and "ownerReferences" not in orphan["metadata"]


async def test_deleting_a_namespace_deletes_its_contents(api: Api, kubesim: KubeSim) -> None:
    await api.ok(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}},
    )
    path = CLAWS.replace("default", "doomed")
    await api.ok("POST", path, {**claw("a"), "metadata": {"name": "a", "finalizers": ["x/hold"]}})
    terminating = await api.ok("DELETE", "/api/v1/namespaces/doomed")
    assert terminating["status"]["phase"] == "Terminating"
    assert (await api.call("POST", path, claw("b")))[0] == 403
    await kubesim.wait_for(
        lambda: (
            (kubesim.get("claw.dev/v1alpha1", "ClawInstance", "a", "doomed") or {})
            .get("metadata", {})
            .get("deletionTimestamp")
            is not None
        )
    )
    assert kubesim.get("v1", "Namespace", "doomed") is not None  # held by the instance's finalizer
    await api.ok("PATCH", f"{path}/a", {"metadata": {"finalizers": None}}, MERGE)
    await kubesim.wait_for(lambda: kubesim.get("v1", "Namespace", "doomed") is None)


async def test_deleting_the_crd_removes_its_kind_and_objects(api: Api, kubesim: KubeSim) -> None:
    await api.ok("POST", CLAWS, claw("a"))
    await api.ok("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/clawinstances.claw.dev")
    await kubesim.wait_for(
        lambda: (api.base and kubesim.registry.lookup("claw.dev", "v1alpha1", "clawinstances")) is None
    )
    assert (await api.call("GET", CLAWS))[0] == 404
    assert (await api.call("GET", "/apis/claw.dev/v1alpha1"))[0] == 404
    crds = crds_directory()
    assert crds is not None
    await kubesim.apply_crds(crds)
    assert (await api.ok("GET", CLAWS))["items"] == []


async def test_deletecollection_honours_the_label_selector(api: Api) -> None:
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        await api.ok("POST", CLAWS, {**claw(name), "metadata": {"name": name, "labels": {"team": team}}})
    deleted = await api.ok("DELETE", CLAWS, labelSelector="team=x")
    assert sorted(i["metadata"]["name"] for i in deleted["items"]) == ["a", "b"]
    assert [i["metadata"]["name"] for i in (await api.ok("GET", CLAWS))["items"]] == ["c"]


# --- list and watch ------------------------------------------------------------------------------------


async def test_list_selectors_and_pagination(api: Api) -> None:
    for index in range(7):
        labels = {"tier": "gold" if index % 2 else "silver", "n": str(index)}
        await api.ok(
            "POST", CLAWS, {**claw(f"o{index}"), "metadata": {"name": f"o{index}", "labels": labels}}
        )
    gold = await api.ok("GET", CLAWS, labelSelector="tier in (gold),n!=5")
    assert [i["metadata"]["name"] for i in gold["items"]] == ["o1", "o3"]
    assert [i["metadata"]["name"] for i in (await api.ok("GET", CLAWS, labelSelector="!tier"))["items"]] == []
    named = await api.ok(
        "GET",
        "/apis/claw.dev/v1alpha1/clawinstances",
        fieldSelector="metadata.name=o4,metadata.namespace=default",
    )
    assert [i["metadata"]["name"] for i in named["items"]] == ["o4"]
    pages, token = [], ""
    while True:
        page = await api.ok("GET", CLAWS, limit="3", **({"continue": token} if token else {}))
        pages.append([i["metadata"]["name"] for i in page["items"]])
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert pages == [["o0", "o1", "o2"], ["o3", "o4", "o5"], ["o6"]]
    assert (await api.call("GET", CLAWS, labelSelector="tier in gold"))[0] == 400


async def test_watch_replays_after_a_version_filters_and_times_out(api: Api) -> None:
    start = (await api.ok("GET", CLAWS))["metadata"]["resourceVersion"]
    await api.ok("POST", CLAWS, {**claw("a"), "metadata": {"name": "a", "labels": {"w": "yes"}}})
    await api.ok("POST", CLAWS.replace("default", "kube-system"), claw("elsewhere"))
    await api.ok("PATCH", f"{CLAWS}/a", {"metadata": {"labels": {"w": "no"}}}, MERGE)
    await api.ok("PATCH", f"{CLAWS}/a", {"metadata": {"labels": {"w": "yes"}}}, MERGE)
    selected = await api.watch(CLAWS, 10, resourceVersion=start, labelSelector="w=yes", timeoutSeconds="1")
    assert [e["type"] for e in selected] == [
        "ADDED",
        "DELETED",
        "ADDED",
    ]  # leaving and re-entering the selector
    everywhere = await api.watch(
        "/apis/claw.dev/v1alpha1/clawinstances", 10, resourceVersion=start, timeoutSeconds="1"
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in everywhere] == [
        ("ADDED", "a"),
        ("ADDED", "elsewhere"),
        ("MODIFIED", "a"),
        ("MODIFIED", "a"),
    ]
    current = await api.watch(CLAWS, 10, timeoutSeconds="1")  # no version: the current state as ADDED
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in current] == [("ADDED", "a")]


async def test_watch_bookmarks_and_expired_versions() -> None:
    sim = KubeSim(history_limit=3, bookmark_interval=0.1)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, sim.base_url)
            for index in range(6):
                await api.ok(
                    "POST",
                    CONFIGMAPS,
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{index}"}},
                )
            expired = await api.watch(CONFIGMAPS, 5, resourceVersion="1")
            assert [e["type"] for e in expired] == ["ERROR"] and expired[0]["object"]["code"] == 410
            bookmark = await api.watch(
                CONFIGMAPS, 1, resourceVersion=str(sim.resource_version), allowWatchBookmarks="true"
            )
            assert bookmark[0]["type"] == "BOOKMARK"
            assert bookmark[0]["object"]["metadata"]["resourceVersion"] == str(sim.resource_version)
            assert sim.store.history_size <= 3
    finally:
        await sim.stop()


async def test_table_output_uses_the_printer_columns(api: Api) -> None:
    await api.ok("POST", CLAWS, claw("a"))
    await api.ok(
        "PATCH",
        f"{CLAWS}/a/status",
        {
            "status": {
                "phase": "Running",
                "machineId": "m1",
                "conditions": [
                    {
                        "type": "Stalled",
                        "status": "False",
                        "reason": "Fine",
                        "lastTransitionTime": "2026-11-24T08:00:00Z",
                    },
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Running",
                        "lastTransitionTime": "2026-11-24T08:00:00Z",
                    },
                ],
            }
        },
        MERGE,
    )
    table = await api.ok(
        "GET", CLAWS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    )
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Phase",
        "Ready",
        "Machine",
        "Region",
        "Age",
    ]
    cells = table["rows"][0]["cells"]
    assert cells[:5] == ["a", "Running", "True", "m1", "iad"] and cells[5].endswith("s")
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_protobuf_bodies_are_refused_and_json_is_answered(api: Api) -> None:
    status, _, _ = await api.call(
        "POST", CONFIGMAPS, {}, {"Content-Type": "application/vnd.kubernetes.protobuf"}
    )
    assert status == 415
    status, body, headers = await api.call(
        "GET", CONFIGMAPS, headers={"Accept": "application/vnd.kubernetes.protobuf,application/json"}
    )
    assert (
        status == 200
        and headers["Content-Type"].startswith("application/json")
        and body["kind"] == "ConfigMapList"
    )


async def test_field_selectors_are_limited_to_supported_field_labels(api: Api) -> None:
    await api.ok("POST", CLAWS, claw("a"))
    status, refused, _ = await api.call("GET", CLAWS, fieldSelector="spec.region=iad")
    assert status == 400 and "spec.region" in refused["message"]
    events = "/api/v1/namespaces/default/events"
    assert (await api.call("GET", events, fieldSelector="involvedObject.name=a,type=Normal"))[0] == 200
    assert (await api.call("GET", "/api/v1/namespaces", fieldSelector="status.phase=Active"))[0] == 200


async def test_a_terminating_crd_refuses_new_objects(api: Api, kubesim: KubeSim) -> None:
    await api.ok("POST", CLAWS, {**claw("held"), "metadata": {"name": "held", "finalizers": ["x/hold"]}})
    await api.ok("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/clawinstances.claw.dev")
    status, refused, _ = await api.call("POST", CLAWS, claw("late"))
    assert status == 405 and "terminating" in refused["message"]
    await kubesim.wait_for(
        lambda: bool(
            (kubesim.get("claw.dev/v1alpha1", "ClawInstance", "held", "default") or {})
            .get("metadata", {})
            .get("deletionTimestamp")
        )
    )
    await api.ok("PATCH", f"{CLAWS}/held", {"metadata": {"finalizers": None}}, MERGE)
    await kubesim.wait_for(lambda: kubesim.registry.lookup("claw.dev", "v1alpha1", "clawinstances") is None)


async def test_leases_support_optimistic_renewal(api: Api) -> None:
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "claw-operator"}}
    lease["spec"] = {"holderIdentity": "pod-a", "leaseDurationSeconds": 15}
    created = await api.ok("POST", leases, lease)
    renewed = await api.ok(
        "PUT",
        f"{leases}/claw-operator",
        {**created, "spec": {**created["spec"], "renewTime": "2026-11-24T08:00:00.000000Z"}},
    )
    assert renewed["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    taken = {**created, "spec": {**created["spec"], "holderIdentity": "pod-b"}}
    assert (await api.call("PUT", f"{leases}/claw-operator", taken))[0] == 409


async def test_events_expire_after_their_ttl() -> None:
    sim = KubeSim(event_ttl=0.0, gc_interval=0.05)
    await sim.start()
    try:
        event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"}}
        await sim.create({**event, "reason": "Old", "involvedObject": {"kind": "Pod", "name": "p"}})
        await sim.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "default"}}
        )
        await sim.wait_for(lambda: sim.get("v1", "Event", "e", "default") is None)
        assert sim.get("v1", "ConfigMap", "kept", "default") is not None
    finally:
        await sim.stop()


async def test_watch_list_sends_initial_events_then_a_marked_bookmark(api: Api) -> None:
    await api.ok("POST", CLAWS, claw("a"))
    events = await api.watch(
        CLAWS, 2, sendInitialEvents="true", allowWatchBookmarks="true", resourceVersionMatch="NotOlderThan"
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_dry_run_validates_without_storing(api: Api, kubesim: KubeSim) -> None:
    before = kubesim.resource_version
    status, created, _ = await api.call("POST", CLAWS, claw("a"), dryRun="All")
    assert status == 201 and created["spec"]["guest"]["cpus"] == 2
    assert (await api.call("POST", CLAWS, claw("b", guest={"cpus": 99}), dryRun="All"))[0] == 422
    assert kubesim.get("claw.dev/v1alpha1", "ClawInstance", "a", "default") is None
    assert kubesim.resource_version == before


async def test_a_watcher_that_falls_too_far_behind_is_closed(kubesim: KubeSim) -> None:
    store = kubesim.store
    subscription = store.subscribe("/configmaps", None)
    subscription.limit = 3
    for index in range(5):
        await kubesim.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"c{index}", "namespace": "default"},
            }
        )
    assert subscription.closed and subscription.overflowed
    assert len(subscription.drain()) == 3  # what it had: its client then re-watches from there
    store.unsubscribe(subscription)
    assert store.watcher_count == 0


async def test_connection_matches_the_written_kubeconfig(kubesim: KubeSim) -> None:
    assert kubesim.kubeconfig is not None
    document = yaml.safe_load(kubesim.kubeconfig.read_text())
    context = document["contexts"][0]["context"]
    assert (
        document["current-context"] == document["contexts"][0]["name"] and context["namespace"] == "default"
    )
    assert kubesim.connection() == {
        "server": document["clusters"][0]["cluster"]["server"],
        "scheme": "Bearer",
        "token": document["users"][0]["user"]["token"],
    }


async def test_server_side_apply_removes_fields_its_manager_stopped_applying(api: Api) -> None:
    apply = {"Content-Type": "application/apply-patch+yaml"}
    first = claw("a", env={"A": "1", "B": "2"}, restartedAt="now")
    first["metadata"] = {"name": "a", "labels": {"team": "x", "tier": "gold"}}
    await api.ok("PATCH", f"{CLAWS}/a", first, apply, fieldManager="flux")
    other = {"apiVersion": "claw.dev/v1alpha1", "kind": "ClawInstance", "metadata": {"name": "a"}}
    other["spec"] = {"env": {"B": "2"}}
    await api.ok("PATCH", f"{CLAWS}/a", other, apply, fieldManager="someone-else")
    second = claw("a", env={"A": "1"})
    second["metadata"] = {"name": "a", "labels": {"team": "x"}}
    result = await api.ok("PATCH", f"{CLAWS}/a", second, apply, fieldManager="flux")
    assert "restartedAt" not in result["spec"]  # dropped by its only manager
    assert result["spec"]["env"] == {"A": "1", "B": "2"}  # B is still applied by someone else
    assert result["metadata"]["labels"] == {"team": "x"}
    assert result["spec"]["guest"]["cpus"] == 2  # defaults are nobody's to remove


async def test_request_counts_are_kept_by_route_template(api: Api, kubesim: KubeSim) -> None:
    await api.ok("POST", CLAWS, claw("a"))
    await api.ok("PATCH", f"{CLAWS}/a/status", {"status": {"phase": "Running"}}, MERGE)
    await api.watch(CLAWS, 1, timeoutSeconds="1")
    template = "/apis/claw.dev/v1alpha1/namespaces/{namespace}/clawinstances"
    assert kubesim.request_counts[("POST", template)] == 1
    assert kubesim.request_counts[("PATCH", template + "/{name}/status")] == 1
    assert kubesim.request_counts[("WATCH", template)] == 1


async def test_request_counts_are_served_read_only_at_kubesim_stats(api: Api, kubesim: KubeSim) -> None:
    await api.ok("POST", CLAWS, claw("a"))
    await api.ok("PATCH", f"{CLAWS}/a/status", {"status": {"phase": "Running"}}, MERGE)
    stats = await api.ok("GET", "/_kubesim/stats")
    counts = {(row["verb"], row["route"]): row["count"] for row in stats["requests"]}
    template = "/apis/claw.dev/v1alpha1/namespaces/{namespace}/clawinstances"
    assert counts[("POST", template)] == 1
    assert counts[("PATCH", template + "/{name}/status")] == 1
    status, _, _ = await api.call("POST", "/_kubesim/stats", {})
    assert status == 405
    # Reading the stats is not itself counted as a resource request.
    assert dict(kubesim.request_counts) == counts


async def test_aggregated_discovery_when_asked_for(api: Api) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    status, groups, headers = await api.call("GET", "/apis", headers={"Accept": accept})
    assert status == 200 and "as=APIGroupDiscoveryList" in headers["Content-Type"]
    claw_group = next(item for item in groups["items"] if item["metadata"].get("name") == "claw.dev")
    resource = claw_group["versions"][0]["resources"][0]
    assert (resource["resource"], resource["scope"], resource["shortNames"]) == (
        "clawinstances",
        "Namespaced",
        ["claw"],
    )
    assert resource["subresources"][0]["subresource"] == "status"
    status, core, _ = await api.call("GET", "/api", headers={"Accept": accept})
    assert [v["version"] for v in core["items"][0]["versions"]] == ["v1"]
    legacy = await api.ok("GET", "/api", headers={"Accept": "application/json"})
    assert legacy["kind"] == "APIVersions"


async def test_foreground_deletion_waits_for_dependents(api: Api, kubesim: KubeSim) -> None:
    owner = await api.ok("POST", CLAWS, claw("owner"))
    reference = {
        "apiVersion": "claw.dev/v1alpha1",
        "kind": "ClawInstance",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "dep", "ownerReferences": [reference]},
    }
    dependent["metadata"]["finalizers"] = ["x/hold"]
    await api.ok("POST", CONFIGMAPS, dependent)
    deleting = await api.ok("DELETE", f"{CLAWS}/owner", {"propagationPolicy": "Foreground"})
    assert deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    await kubesim.wait_for(
        lambda: bool(
            (kubesim.get("v1", "ConfigMap", "dep", "default") or {})
            .get("metadata", {})
            .get("deletionTimestamp")
        )
    )
    assert kubesim.get("claw.dev/v1alpha1", "ClawInstance", "owner", "default") is not None
    await api.ok("PATCH", f"{CONFIGMAPS}/dep", {"metadata": {"finalizers": None}}, MERGE)
    await kubesim.wait_for(
        lambda: kubesim.get("claw.dev/v1alpha1", "ClawInstance", "owner", "default") is None
    )


async def test_crds_are_validated_and_conflicting_names_not_accepted(api: Api, kubesim: KubeSim) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    broken = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "x.claw.dev"},
    }
    status, refused, _ = await api.call("POST", crds, {**broken, "spec": {"group": "claw.dev"}})
    assert status == 422 and refused["details"]["causes"]
    clash = {
        **broken,
        "metadata": {"name": "others.claw.dev"},
        "spec": {
            "group": "claw.dev",
            "names": {"plural": "others", "kind": "ClawInstance"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    created = await api.ok("POST", crds, clash)
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "False", "Established": "False"}
    assert (await api.call("GET", "/apis/claw.dev/v1/namespaces/default/others"))[0] == 404
