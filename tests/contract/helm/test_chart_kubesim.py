"""The rendered chart applied to kubesim with the real kubectl, as `helm install` would apply it.

kubesim serves namespaces, Secrets, ConfigMaps, Events, Leases and CRDs (plus the custom
resources of applied CRDs) — not Deployments, ServiceAccounts, RBAC, Services or
ServiceMonitors. So what is checked here, honestly:
- the chart's CRD (from its `crds/`, as Helm reads it) installs into an empty apiserver, and the
  repository's examples are then accepted (and a bad one rejected) by its schema and CEL rules;
- every other rendered object is refused *only* because kubesim does not serve its kind (a
  "no matches for kind" from discovery), and the list of such kinds is pinned, so a kubesim that
  learns a kind makes this test ask for a real apply of it.
The Deployment's configuration itself is exercised elsewhere: test_chart_rbac.py runs the operator
with the namespaces its rendered args give, and test_chart.py parses those args with the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from claw_operator.sim.flysim import FlySimThread
from claw_operator.sim.kubesim import KubeSimThread
from tests.conftest import EXAMPLES, REPO
from tests.contract.helm.chart import NON_DEFAULT, SCENARIOS, chart_crds, one, render, run_parser
from tests.contract.kubesim.kubectl import Kubectl, requires_kubectl

pytestmark = requires_kubectl

CLI = str(Path(sys.executable).parent / "claw-operator")

# ServiceMonitor is prometheus-operator's CRD: like a real cluster without it, kubesim has no
# API for it until that CRD is installed.
NEEDS_PROMETHEUS_OPERATOR = {"ServiceMonitor"}


@pytest.fixture
def empty_cluster(tmp_path: Path) -> Iterator[Kubectl]:
    """kubesim with no CRD installed: the chart must bring it."""
    with KubeSimThread(crds=None, kubeconfig=tmp_path / "kubeconfig"):
        yield Kubectl(tmp_path / "kubeconfig", tmp_path / "cache")


def test_the_chart_crd_installs_and_serves_clawinstances(empty_cluster: Kubectl, tmp_path: Path) -> None:
    kubectl = empty_cluster
    assert "clawinstances" not in kubectl.run("api-resources", check=False).stdout
    for crd in chart_crds():
        path = tmp_path / Path(crd["name"]).name
        path.write_text(crd["data"])
        kubectl.run("apply", "-f", str(path))
    kubectl.run("wait", "--for=condition=Established", "crd/clawinstances.claw.dev", "--timeout=10s")
    for example in ("minimal.yaml", "full.yaml", "secret-env.yaml"):
        kubectl.run("apply", "-f", str(EXAMPLES / example))
    names = kubectl.run("get", "claw", "-o", "name").stdout.split()
    assert sorted(names) == [
        "clawinstance.claw.dev/full",
        "clawinstance.claw.dev/minimal",
        "clawinstance.claw.dev/with-secrets",
    ]
    # The schema travels with the CRD: a region that is not three letters is refused.
    bad = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    bad["metadata"]["name"] = "bad"
    bad["spec"]["region"] = "nowhere"
    refused = kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(bad), check=False)
    assert refused.returncode != 0 and "region" in refused.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_rendered_objects_apply_where_kubesim_serves_their_kind(
    scenario: str, empty_cluster: Kubectl, tmp_path: Path
) -> None:
    kubectl = empty_cluster
    for namespace in ("claw-system", *NON_DEFAULT["watchNamespaces"]):
        kubectl.run("create", "namespace", namespace)
    refused: set[str] = set()
    applied: list[dict[str, Any]] = []
    for index, obj in enumerate(render(SCENARIOS[scenario])):
        path = tmp_path / f"{index}-{obj['kind']}.yaml"
        path.write_text(yaml.safe_dump(obj))
        # Schemas are checked by kubernetes-validate (test_chart.py); here only the apiserver decides.
        result = kubectl.run("apply", "--validate=false", "-f", str(path), check=False)
        if result.returncode == 0:
            applied.append(obj)
            continue
        assert "no matches for kind" in result.stderr, result.stderr
        refused.add(obj["kind"])
    rendered = {obj["kind"] for obj in render(SCENARIOS[scenario])}
    assert refused == rendered & NEEDS_PROMETHEUS_OPERATOR
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= {
        o["kind"] for o in applied
    }
    # What was applied is what is stored: read every object back.
    for obj in applied:
        meta = obj["metadata"]
        where = ["-n", meta["namespace"]] if meta.get("namespace") else []
        stored = json.loads(kubectl.run("get", obj["kind"], meta["name"], *where, "-o", "json").stdout)
        assert stored["metadata"]["uid"]
        for key in ("rules", "roleRef", "subjects"):
            assert stored.get(key) == obj.get(key), (obj["kind"], key)
        if obj["kind"] == "Deployment":
            # Stored as rendered, plus the defaults the apiserver fills in (imagePullPolicy, ...).
            containers = stored["spec"]["template"]["spec"]["containers"]
            rendered_containers = obj["spec"]["template"]["spec"]["containers"]
            assert [c["name"] for c in containers] == [c["name"] for c in rendered_containers]
            for live, want in zip(containers, rendered_containers, strict=True):
                assert {k: live.get(k) for k in want} == want


# ---------------------------------------------------------------------------- the pod's command line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow(33)
def test_the_deployments_command_line_runs_the_operator(tmp_path: Path) -> None:
    """What the pod runs — the image's entrypoint `claw-operator run`, the rendered args, and
    FLY_API_TOKEN from the Secret — reconciles an instance that relies on the chart's defaultApp.
    Only what a pod gets from its environment is swapped: the kubeconfig (in-cluster there), the
    Fly API (flysim) and short timings."""
    port = _free_port()
    token = "fo1_chart-command-line"
    with (
        KubeSimThread(crds=REPO / "crds", kubeconfig=tmp_path / "kubeconfig") as kube,
        FlySimThread(profile="fast", seed=5, token=token) as fly,
    ):
        values = {
            "watchNamespaces": ["default"],
            "defaultApp": "claw-chart",
            "flyApiUrl": fly.base_url,
            "metrics": {"port": port},
            "timings": {
                "pollStarting": 0.5,
                "pollRunning": 1,
                "pollDestroying": 0.5,
                "pollIdle": 1,
                "pollJitter": 0.1,
                "startingTimeout": 10,
                "stoppedThreshold": 3,
                "flyWaitTimeout": 2,
            },
        }
        (main,) = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"]
        env = {**os.environ, "FLY_API_TOKEN": token}
        env.pop("FLY_APP", None)
        for var in main["env"]:
            if "value" in var:
                env[var["name"]] = var["value"]
        command = [CLI, "run", *main["args"], "--kubeconfig", str(tmp_path / "kubeconfig")]
        operator = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            kube.create(yaml.safe_load((EXAMPLES / "minimal.yaml").read_text()))

            def status() -> dict[str, Any]:
                obj = kube.get("claw.dev/v1alpha1", "ClawInstance", "minimal", "default") or {}
                return obj.get("status") or {}

            # Created while the operator process is still starting, the instance is older than
            # the process: its first empty volume listing is trusted only `listing_settle` (30 s,
            # the default the chart keeps) after the process started (an earlier operator may
            # have died between a volume create and its status write).
            deadline = time.monotonic() + 90
            while status().get("phase") != "Running":
                assert operator.poll() is None, (
                    f"the operator exited: {operator.stdout and operator.stdout.read()}"
                )
                assert time.monotonic() < deadline, f"not Running: {status()}"
                time.sleep(0.1)
            assert status()["appName"] == "claw-chart"
            if "--watch-stale-after" in run_parser()._option_string_actions:
                # The health endpoints exist in this CLI: the chart's probes must answer 200.
                for probe in ("livenessProbe", "readinessProbe"):
                    path = main[probe]["httpGet"]["path"]
                    deadline = time.monotonic() + 20
                    while True:
                        try:
                            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        assert time.monotonic() < deadline, f"{path} never answered 200"
                        time.sleep(0.2)
        finally:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait(5)
