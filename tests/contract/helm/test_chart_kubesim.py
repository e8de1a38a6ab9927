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

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from claw_operator.sim.kubesim import KubeSimThread
from tests.conftest import EXAMPLES
from tests.contract.helm.chart import NON_DEFAULT, SCENARIOS, chart_crds, render
from tests.contract.kubesim.kubectl import Kubectl, requires_kubectl

pytestmark = requires_kubectl

# The kinds the chart renders that kubesim has no API for.
NOT_SERVED_BY_KUBESIM = {
    "ClusterRole",
    "ClusterRoleBinding",
    "Deployment",
    "Role",
    "RoleBinding",
    "Service",
    "ServiceAccount",
    "ServiceMonitor",
}


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
    for index, obj in enumerate(render(SCENARIOS[scenario])):
        path = tmp_path / f"{index}-{obj['kind']}.yaml"
        path.write_text(yaml.safe_dump(obj))
        # Schemas are checked by kubernetes-validate (test_chart.py); here only the apiserver decides.
        result = kubectl.run("apply", "--validate=false", "-f", str(path), check=False)
        if result.returncode == 0:
            continue
        assert "no matches for kind" in result.stderr, result.stderr
        refused.add(obj["kind"])
    rendered = {obj["kind"] for obj in render(SCENARIOS[scenario])}
    assert refused == rendered & NOT_SERVED_BY_KUBESIM
    assert rendered - refused == set(), "a kind kubesim now serves: check its object here"
