"""What reaching Ready and staying there costs, in Fly calls and Kubernetes writes.

The fleet benchmark (`benchmarks/fleet.py`) measures these at scale; here they are pinned per
instance, so a change that adds a call or a write to the common path is noticed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from claw_operator.edge import FlyGateway
from claw_operator.kube.reconciler import PassOutcome, Reconciler
from tests.integration.conftest import FAST, Sandbox

# No periodic check while the figures of the path to Running are taken.
NO_CHECKS = replace(FAST, poll_running=timedelta(seconds=60), poll_jitter=timedelta(seconds=0))
CLAWS = "/apis/claw.dev/v1alpha1/namespaces/{namespace}/clawinstances"


def fly_calls(sandbox: Sandbox) -> Counter[str]:
    calls: Counter[str] = Counter()
    for row in sandbox.fly.stats()["requests"]:  # one row per (method, route, status)
        if row["route"].startswith("/v1/apps/{app}/"):
            calls[f"{row['method']} {row['route']}"] += row["count"]
    return calls


def kube_writes(sandbox: Sandbox) -> Counter[str]:
    return Counter(
        {
            f"{verb} {route}": count
            for (verb, route), count in sandbox.kube.sim.request_counts.items()
            if verb in ("POST", "PUT", "PATCH", "DELETE")
        }
    )


def test_reaching_running_takes_the_minimum_of_fly_calls_and_kube_writes(sandbox: Sandbox) -> None:
    sandbox.start_operator(timings=NO_CHECKS)
    writes_before = kube_writes(sandbox)
    sandbox.create("lean")
    sandbox.wait_condition("lean", "Ready", "True", "Running")
    time.sleep(0.3)  # anything still in flight would show now
    assert fly_calls(sandbox) == Counter(
        {
            # Metadata recovery before creating: one look by tag, one by name.
            "GET /v1/apps/{app}/machines": 1,
            "GET /v1/apps/{app}/volumes": 1,
            # The necessary minimum: create volume, create machine, one wait.
            "POST /v1/apps/{app}/volumes": 1,
            "POST /v1/apps/{app}/machines": 1,
            "GET /v1/apps/{app}/machines/{id}/wait": 1,
        }
    )
    writes = kube_writes(sandbox) - writes_before
    assert writes == Counter(
        {
            f"POST {CLAWS}": 1,  # the test's own create
            f"PATCH {CLAWS}/{{name}}": 1,  # kopf's finalizer (no diff-base annotation)
            # machineId (with the volume) before the wait, then Running.
            f"PUT {CLAWS}/{{name}}/status": 2,
            "POST /api/v1/namespaces/{namespace}/events": 3,  # VolumeCreated, MachineCreated, Started
        }
    ), writes
    annotations = (sandbox.get("lean") or {})["metadata"].get("annotations") or {}
    assert not any(key.startswith("claw.dev/last-handled") for key in annotations)


def test_a_periodic_check_of_a_running_instance_is_one_get(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("steady")
    sandbox.wait_condition("steady", "Ready", "True", "Running")
    time.sleep(0.3)
    before = fly_calls(sandbox)
    time.sleep(3.0)  # several checks at FAST's 0.5 s cadence
    checks = fly_calls(sandbox) - before
    assert set(checks) == {"GET /v1/apps/{app}/machines/{id}"}, checks
    assert checks["GET /v1/apps/{app}/machines/{id}"] >= 3


def test_a_volume_grown_in_the_spec_is_still_looked_at_and_extended(sandbox: Sandbox) -> None:
    """The periodic check skips the volume GET only while the volume cannot need anything."""
    sandbox.start_operator()
    sandbox.create("grows", volume={"sizeGB": 10})
    sandbox.wait_condition("grows", "Ready", "True", "Running")
    sandbox.patch("grows", {"spec": {"volume": {"sizeGB": 20}}})
    sandbox.wait(lambda: [v["size_gb"] for v in sandbox.volumes()] == [20], what="the volume extended")


def test_an_instance_born_while_the_operator_watches_needs_no_recovery_lists(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing can exist on Fly for an object created after the operator started and never
    acted on: its path to Running is the three necessary calls."""
    monkeypatch.setattr(FlyGateway, "BORN_WATCHED_MARGIN", timedelta(seconds=-60))
    sandbox.start_operator(timings=NO_CHECKS)
    sandbox.create("newborn")
    sandbox.wait_condition("newborn", "Ready", "True", "Running")
    time.sleep(0.3)
    assert fly_calls(sandbox) == Counter(
        {
            "POST /v1/apps/{app}/volumes": 1,
            "POST /v1/apps/{app}/machines": 1,
            "GET /v1/apps/{app}/machines/{id}/wait": 1,
        }
    )


def test_an_instance_older_than_the_operator_is_looked_for_before_any_create(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created before this operator started: an earlier one may have created its machine and
    died before writing the status, so the recovery lists come first (behaviour 8)."""
    monkeypatch.setattr(FlyGateway, "BORN_WATCHED_MARGIN", timedelta(seconds=3600))
    sandbox.start_operator(timings=NO_CHECKS)
    sandbox.create("elder")
    sandbox.wait_condition("elder", "Ready", "True", "Running")
    calls = fly_calls(sandbox)
    assert calls["GET /v1/apps/{app}/machines"] == 1 and calls["GET /v1/apps/{app}/volumes"] == 1


def kube_requests(sandbox: Sandbox) -> Counter[str]:
    """Every request to the apiserver but the watches (reads included)."""
    return Counter(
        {
            f"{verb} {route}": count
            for (verb, route), count in sandbox.kube.sim.request_counts.items()
            if verb != "WATCH"
        }
    )


def test_an_idle_periodic_check_makes_no_kubernetes_request(sandbox: Sandbox) -> None:
    """A check that finds nothing to do is decided on the object the watch delivered: its one
    Fly GET, and not a single Kubernetes request (no read, no write, no Event)."""
    sandbox.start_operator()
    sandbox.create("idle")
    sandbox.wait_condition("idle", "Ready", "True", "Running")
    time.sleep(0.5)  # the status write of Running and its pass settle
    kube_before, fly_before = kube_requests(sandbox), fly_calls(sandbox)
    time.sleep(3.0)  # several checks at FAST's 0.5 s cadence
    checks = fly_calls(sandbox) - fly_before
    assert checks["GET /v1/apps/{app}/machines/{id}"] >= 3, checks
    assert kube_requests(sandbox) - kube_before == Counter()


def test_a_check_on_a_stale_watched_object_acts_on_the_fresh_read(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watch may lag behind a spec change: a check that would act on the object it holds
    reads it fresh and decides again. Here every check is handed the object as it stood before
    an image change (which the operator has since applied): on that stale spec it would put the
    old image back; on the fresh read there is nothing to do."""
    pinned: dict[str, dict[str, Any]] = {}
    original = Reconciler.reconcile

    async def reconcile_on_pinned(
        self: Reconciler,
        namespace: str,
        name: str,
        *,
        deleting: bool = False,
        watched: Mapping[str, Any] | None = None,
    ) -> PassOutcome:
        if watched is not None and name in pinned:
            watched = pinned[name]
        return await original(self, namespace, name, deleting=deleting, watched=watched)

    monkeypatch.setattr(Reconciler, "reconcile", reconcile_on_pinned)
    sandbox.start_operator()
    sandbox.create("lagging")
    sandbox.wait_condition("lagging", "Ready", "True", "Running")
    stale = sandbox.get("lagging")
    assert stale is not None
    machine_id = stale["status"]["machineId"]
    sandbox.patch("lagging", {"spec": {"image": "registry.fly.io/claw:2"}})
    sandbox.wait(
        lambda: (
            sandbox.machine(machine_id)["config"]["image"] == "registry.fly.io/claw:2"
            and (sandbox.get("lagging") or {}).get("status", {}).get("observedGeneration") == 2
            and sandbox.condition("lagging", "Ready")["status"] == "True"
        ),
        what="the new image applied and Ready",
    )
    time.sleep(0.5)
    pinned["lagging"] = stale  # from now on every check starts from the image-1 object
    kube_before, fly_before = kube_requests(sandbox), fly_calls(sandbox)
    time.sleep(3.0)
    checks = fly_calls(sandbox) - fly_before
    assert checks["GET /v1/apps/{app}/machines/{id}"] >= 3, checks
    # Each check read the object fresh (it would have acted on the stale one) ...
    reads = kube_requests(sandbox) - kube_before
    assert reads[f"GET {CLAWS}/{{name}}"] >= 3, reads
    # ... and, deciding on it, did nothing: no Fly mutation, no status write.
    assert set(checks) == {"GET /v1/apps/{app}/machines/{id}"}, checks
    assert set(reads) == {f"GET {CLAWS}/{{name}}"}, reads
    assert sandbox.machine(machine_id)["config"]["image"] == "registry.fly.io/claw:2"
