"""The chart's RBAC rules are exactly what the operator uses: every verb on every resource.

Two sides are checked against the rendered ClusterRole/Roles:
- `OPERATOR_NEEDS`, the list derived by reading the code (each entry says where it comes from);
- what the real operator *did*: every request it sent to kubesim during a lifecycle that walks
  every code path touching the Kubernetes API (create with secretEnv, run, Events, delete with
  the finalizer), recorded by kubesim and translated to (API group, resource, verb).
Equality both ways: a missing rule would make the operator fail in a real cluster, an extra
one would grant more than it uses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from claw_operator.cli import build_parser
from claw_operator.demo.sandbox import Sandbox
from claw_operator.fly import FlyClientOptions, RateLimits, RetryPolicy
from claw_operator.lifecycle.model import Timings
from claw_operator.sim.kubesim import KubeSimThread
from tests.contract.gitops.test_argocd_health import health
from tests.contract.helm.chart import NON_DEFAULT, one, render

Permission = tuple[str, str, str]  # (API group, resource[/subresource], verb)

# What the operator needs in each namespace it watches.
NAMESPACED_NEEDS: frozenset[Permission] = frozenset(
    {
        # kopf: the initial LIST and the WATCH of the handled resource (kube/handlers.py).
        ("claw.dev", "clawinstances", "list"),
        ("claw.dev", "clawinstances", "watch"),
        # kopf: PATCH for its finalizer claw.dev/finalizer and its claw.dev/* annotations.
        ("claw.dev", "clawinstances", "patch"),
        # kube/kubeapi.py KubeApi.get_instance: a fresh GET before every pass.
        ("claw.dev", "clawinstances", "get"),
        # kube/kubeapi.py KubeApi.replace_status: PUT .../status with the read resourceVersion.
        ("claw.dev", "clawinstances/status", "update"),
        # kube/kubeapi.py KubeApi.get_secret: the Secrets named in spec.secretEnv.
        ("", "secrets", "get"),
        # kube/events.py → kopf.event: kopf posts core/v1 Events (never events.k8s.io).
        ("", "events", "create"),
        # kube/events.py EventSeries: a crash loop is one Event whose count grows (read once
        # per process, then patched).
        ("", "events", "get"),
        ("", "events", "patch"),
    }
)
# What kopf observes cluster-wide (kopf/_core/reactor/observation.py).
CLUSTER_NEEDS: frozenset[Permission] = frozenset(
    {
        # resource_observer: a watch on CRDs, to notice ours appear or change.
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    }
)
# namespace_observer: only when not cluster-wide, to notice the listed namespaces appear.
NAMESPACE_LIST_NEEDS: frozenset[Permission] = frozenset(
    {("", "namespaces", "list"), ("", "namespaces", "watch")}
)

OPERATOR_NEEDS = {
    "cluster-wide": {"cluster": NAMESPACED_NEEDS | CLUSTER_NEEDS, "namespaced": frozenset()},
    "namespaced": {"cluster": CLUSTER_NEEDS | NAMESPACE_LIST_NEEDS, "namespaced": NAMESPACED_NEEDS},
}


def permissions(rules: list[dict[str, Any]]) -> set[Permission]:
    found: set[Permission] = set()
    for rule in rules:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    found.add((group, resource, verb))
    return found


def test_cluster_wide_rules_are_exactly_what_the_operator_needs() -> None:
    objects = render()
    assert permissions(one(objects, "ClusterRole")["rules"]) == OPERATOR_NEEDS["cluster-wide"]["cluster"]
    assert [o for o in objects if o["kind"] in ("Role", "RoleBinding")] == []


def test_namespaced_rules_are_exactly_what_the_operator_needs_in_each_namespace() -> None:
    objects = render(NON_DEFAULT)
    assert permissions(one(objects, "ClusterRole")["rules"]) == OPERATOR_NEEDS["namespaced"]["cluster"]
    for namespace in NON_DEFAULT["watchNamespaces"]:
        role = one(objects, "Role", namespace)
        assert permissions(role["rules"]) == OPERATOR_NEEDS["namespaced"]["namespaced"]


# ---------------------------------------------------------------------------- a recorded run

APP = "claw-rbac"
TOKEN = "fo1_rbac-test-token"
FAST = Timings(
    poll_starting=timedelta(seconds=0.5),
    poll_running=timedelta(seconds=0.5),
    poll_destroying=timedelta(seconds=0.3),
    poll_idle=timedelta(seconds=1),
    poll_jitter=timedelta(seconds=0.1),
    starting_timeout=timedelta(seconds=4),
    stopped_threshold=5,
    fly_wait_timeout=timedelta(seconds=2),
    retry_base=timedelta(seconds=0.2),
    retry_cap=timedelta(seconds=1),
    crash_backoff=timedelta(seconds=0.2),
    crash_backoff_max=timedelta(seconds=0.5),
)
VERBS = {
    "GET": "get",
    "PUT": "update",
    "PATCH": "patch",
    "POST": "create",
    "DELETE": "delete",
    "WATCH": "watch",
}
ROUTE = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/[^/]+)"
    r"(?:/namespaces/(?P<namespace>\{namespace\}))?/(?P<resource>[^/]+)"
    r"(?:/(?P<name>\{name\})(?:/(?P<subresource>[^/]+))?)?$"
)


def as_permission(method: str, route: str) -> tuple[Permission, bool]:
    """A request kubesim served, as the RBAC permission it needs, and whether it was namespaced."""
    match = ROUTE.match(route)
    assert match, f"unexpected route {route}"
    group = "" if match["core"] else match["group"]
    resource = match["resource"] + (f"/{match['subresource']}" if match["subresource"] else "")
    verb = VERBS[method]
    if method == "GET" and match["name"] is None:
        verb = "list"
    elif method == "DELETE" and match["name"] is None:
        verb = "deletecollection"
    return (group, resource, verb), match["namespace"] is not None


def wait(predicate: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(
        tmp_path,
        app=APP,
        token=TOKEN,
        seed=3,
        timings=FAST,
        fly_client_options=FlyClientOptions(
            retry=RetryPolicy(attempts=3, timeout=5, wait_initial=0.05, wait_max=0.2),
            rate_limits=RateLimits(action_rate=100, action_burst=100, get_rate=100, get_burst=100),
        ),
        kopf_settings=_fast_kopf,
    ) as box:
        yield box


def record_lifecycle(box: Sandbox, mode: str) -> dict[str, set[Permission]]:
    """Run the operator (scoped as the chart's Deployment says) through a whole lifecycle.

    The test itself talks to kubesim in-process, so every HTTP request kubesim counts is the
    operator's own.
    """
    kube = box.kube
    values = {} if mode == "cluster-wide" else {"watchNamespaces": ["default"]}
    deployment = one(render(values), "Deployment")
    args = build_parser().parse_args(
        ["run", *deployment["spec"]["template"]["spec"]["containers"][0]["args"]]
    )
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "stringData": {"key": "s3cret"},
        }
    )
    box.start_operator(namespaces=tuple(args.namespaces or ()))
    try:
        kube.create(
            {
                "apiVersion": "claw.dev/v1alpha1",
                "kind": "ClawInstance",
                "metadata": {"name": "rbac", "namespace": "default"},
                "spec": {
                    "region": "iad",
                    "image": "registry.fly.io/claw:1",
                    "secretEnv": [{"name": "KEY", "secretKeyRef": {"name": "creds", "key": "key"}}],
                },
            }
        )

        def status() -> dict[str, Any]:
            obj = kube.get("claw.dev/v1alpha1", "ClawInstance", "rbac", "default")
            return (obj or {}).get("status") or {}

        wait(lambda: status().get("phase") == "Running", "phase Running")
        # The same run shows Argo CD's verdict on real objects (docs/gitops/argocd-health.lua).
        wait(lambda: argo_health(kube) == "Healthy", "Argo CD Healthy")
        kube.patch(
            API, "ClawInstance", "rbac", {"metadata": {"annotations": {"claw.dev/paused": "true"}}}, "default"
        )
        wait(lambda: reason(status(), "Reconciling") == "Paused", "Reconciling=False/Paused")
        assert argo_health(kube) == "Suspended"
        kube.patch(
            API, "ClawInstance", "rbac", {"metadata": {"annotations": {"claw.dev/paused": None}}}, "default"
        )
        wait(lambda: reason(status(), "Reconciling") == "Reconciled", "unpaused")
        assert argo_health(kube) == "Healthy"
        wait(
            lambda: "Started" in [e.get("reason") for e in kube.events(name="rbac", namespace="default")],
            "Event",
        )
        # A crash loop: its Warning Events are one series, read back and patched.
        kube.create(
            {
                "apiVersion": "claw.dev/v1alpha1",
                "kind": "ClawInstance",
                "metadata": {"name": "crashy", "namespace": "default"},
                "spec": {"region": "iad", "image": "registry.fly.io/claw:sim-exit-0.5"},
            }
        )
        wait(
            lambda: any(
                e.get("reason") == "CrashLoopBackOff" and e.get("count", 1) >= 2
                for e in kube.events(name="crashy", namespace="default")
            ),
            "a growing CrashLoopBackOff Event",
        )
        for name in ("rbac", "crashy"):
            kube.delete("claw.dev/v1alpha1", "ClawInstance", name, "default")
        wait(lambda: kube.get("claw.dev/v1alpha1", "ClawInstance", "rbac", "default") is None, "deleted")
        wait(lambda: kube.get("claw.dev/v1alpha1", "ClawInstance", "crashy", "default") is None, "deleted")
    finally:
        box.stop_operators()
    used: dict[str, set[Permission]] = {"cluster": set(), "namespaced": set()}
    for (method, route), count in dict(kube.sim.request_counts).items():
        if count:
            permission, namespaced = as_permission(method, route)
            used["namespaced" if namespaced else "cluster"].add(permission)
    return used


API = "claw.dev/v1alpha1"


def reason(status: dict[str, Any], type_: str) -> str | None:
    return next((c["reason"] for c in status.get("conditions", []) if c["type"] == type_), None)


def argo_health(kube: KubeSimThread) -> str:
    obj = kube.get(API, "ClawInstance", "rbac", "default")
    assert obj is not None
    return health(obj)[0]


def _fast_kopf(settings: Any) -> None:
    settings.watching.server_timeout = 30
    settings.watching.client_timeout = 40
    settings.posting.idle_timeout = 0.1


def test_route_translation() -> None:
    assert as_permission(
        "PUT", "/apis/claw.dev/v1alpha1/namespaces/{namespace}/clawinstances/{name}/status"
    ) == (
        ("claw.dev", "clawinstances/status", "update"),
        True,
    )
    assert as_permission("GET", "/api/v1/namespaces") == (("", "namespaces", "list"), False)
    assert as_permission("WATCH", "/apis/claw.dev/v1alpha1/clawinstances") == (
        ("claw.dev", "clawinstances", "watch"),
        False,
    )
    assert as_permission("POST", "/api/v1/namespaces/{namespace}/events") == (("", "events", "create"), True)


@pytest.mark.slow(31)
@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_the_rules_equal_what_the_operator_did(mode: str, sandbox: Sandbox) -> None:
    used = record_lifecycle(sandbox, mode)
    everything = used["cluster"] | used["namespaced"]
    if mode == "cluster-wide":
        # A cluster-wide operator lists and watches across namespaces, and acts in one: a
        # ClusterRole grants both, so compare the union.
        assert everything == OPERATOR_NEEDS[mode]["cluster"]
        assert permissions(one(render(), "ClusterRole")["rules"]) == everything
    else:
        assert used["cluster"] == OPERATOR_NEEDS[mode]["cluster"]
        assert used["namespaced"] == OPERATOR_NEEDS[mode]["namespaced"]
        objects = render({"watchNamespaces": ["default"]})
        assert permissions(one(objects, "ClusterRole")["rules"]) == used["cluster"]
        assert permissions(one(objects, "Role", "default")["rules"]) == used["namespaced"]
