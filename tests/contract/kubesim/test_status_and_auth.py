"""Issue 15, findings 7 and 8: error Status bodies as the apiserver encodes them, and
`kubectl auth can-i` answered as an allow-all authorizer would."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from claw_operator.sim.kubesim import KubeSimThread

from .kubectl import Kubectl, requires_kubectl

STATUS_ORDER = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


@pytest.fixture
def kubectl(kubesim_thread: KubeSimThread, tmp_path: Path) -> Kubectl:
    assert kubesim_thread.kubeconfig is not None
    return Kubectl(kubesim_thread.kubeconfig, tmp_path / "kube-cache")


def test_error_status_fields_in_the_apiservers_order(kubesim_thread: KubeSimThread) -> None:
    base = kubesim_thread.base_url
    missing = httpx.get(f"{base}/api/v1/namespaces/default/configmaps/nope")
    assert missing.status_code == 404
    # The raw text, not a parsed dict: clients that compare bodies byte for byte see the order.
    assert missing.text.startswith('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure"')
    body = json.loads(missing.text)
    assert list(body) == STATUS_ORDER
    assert body["details"] == {"name": "nope", "kind": "configmaps"}  # no empty group, as encoded

    created = httpx.post(
        f"{base}/api/v1/namespaces/default/configmaps",
        json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
    )
    assert created.status_code == 201
    exists = httpx.post(f"{base}/api/v1/namespaces/default/configmaps", json=created.json())
    assert exists.status_code == 409 and list(json.loads(exists.text)) == STATUS_ORDER
    gone = httpx.delete(f"{base}/api/v1/namespaces/default/configmaps/c").json()
    assert list(gone) == ["kind", "apiVersion", "metadata", "status", "details"]
    assert list(gone["details"]) == ["name", "kind", "uid"]


@requires_kubectl
def test_auth_can_i_answers_yes_to_everything(kubectl: Kubectl) -> None:
    for question in (
        ("create", "pods"),
        ("delete", "clawinstances.claw.dev", "-n", "team-a"),
        ("*", "*"),
        ("get", "/healthz"),
        ("patch", "clawinstances/status", "--all-namespaces"),
    ):
        assert kubectl.run("auth", "can-i", *question).stdout.strip() == "yes", question
    listed = kubectl.run("auth", "can-i", "--list").stdout
    header, *rows = listed.splitlines()
    assert header.split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert any(row.split()[0] == "*.*" and row.split()[-1] == "[*]" for row in rows), listed
