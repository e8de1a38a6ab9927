"""The real kubectl against kubesim: the acceptance list of issue 5."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from claw_operator.sim.kubesim import KubeSimThread
from tests.conftest import CRD_PATH, EXAMPLES

from .kubectl import Kubectl, requires_kubectl

pytestmark = requires_kubectl

CLAW = ("claw.dev/v1alpha1", "ClawInstance")


@pytest.fixture
def kubectl(kubesim_thread: KubeSimThread, tmp_path: Path) -> Kubectl:
    assert kubesim_thread.kubeconfig is not None
    return Kubectl(kubesim_thread.kubeconfig, tmp_path / "kube-cache")


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def ready_status(status: str = "True") -> str:
    condition = {
        "type": "Ready",
        "status": status,
        "reason": "Running",
        "lastTransitionTime": "2026-11-24T08:00:00Z",
    }
    return json.dumps({"status": {"phase": "Running", "machineId": "m-123", "conditions": [condition]}})


def test_crds_and_examples_apply_and_get_shows_printer_columns(kubectl: Kubectl) -> None:
    # Start from no CRD at all: deleting it removes the kind, applying it registers it again.
    kubectl.run("delete", "-f", str(CRD_PATH))
    missing = kubectl.run("get", "clawinstances", check=False)
    assert missing.returncode != 0
    kubectl.run("apply", "-f", str(CRD_PATH.parent))
    crd = kubectl.json("get", "crd", "clawinstances.claw.dev")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}

    applied = kubectl.run("apply", "-f", str(EXAMPLES))
    assert "clawinstance.claw.dev/minimal created" in applied.stdout
    assert "secret/claw-credentials created" in applied.stdout
    kubectl.run("patch", "claw", "minimal", "--subresource=status", "--type=merge", "-p", ready_status())

    table = kubectl.run("get", "claw").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "READY", "MACHINE", "REGION", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {"full", "minimal", "with-secrets"}
    assert rows["minimal"][1:5] == ["Running", "True", "m-123", "iad"]
    assert rows["full"][1] == "ord"  # no status yet: only NAME, REGION and AGE have values
    again = kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    assert "unchanged" in again.stdout


def test_get_yaml_shows_server_fields_and_defaults(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    yaml_text = kubectl.run("get", "claw", "minimal", "-o", "yaml").stdout
    for expected in (
        "uid:",
        "resourceVersion:",
        "generation: 1",
        "creationTimestamp:",
        "cpuKind: shared",
        "sizeGB: 10",
    ):
        assert expected in yaml_text


def test_describe_shows_conditions_and_events(kubectl: Kubectl, kubesim_thread: KubeSimThread) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    kubectl.run("patch", "claw", "minimal", "--subresource=status", "--type=merge", "-p", ready_status())
    claw = kubesim_thread.get(*CLAW, "minimal", "default")
    assert claw is not None
    kubesim_thread.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": "minimal.", "namespace": "default"},
            "involvedObject": {
                "apiVersion": "claw.dev/v1alpha1",
                "kind": "ClawInstance",
                "name": "minimal",
                "namespace": "default",
                "uid": claw["metadata"]["uid"],
            },
            "reason": "MachineCreated",
            "message": "created Fly machine m-123",
            "type": "Normal",
            "source": {"component": "claw-operator"},
            "firstTimestamp": "2026-11-24T08:00:00Z",
            "lastTimestamp": "2026-11-24T08:00:00Z",
            "count": 1,
        }
    )
    described = kubectl.run("describe", "claw", "minimal").stdout
    assert "Conditions:" in described and "Type:                  Ready" in described
    events = described.split("Events:")[1]
    assert "MachineCreated" in events and "created Fly machine m-123" in events


def test_patch_merge_json_and_status(kubectl: Kubectl, kubesim_thread: KubeSimThread) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    kubectl.run(
        "patch", "claw", "minimal", "--type=merge", "-p", '{"spec":{"image":"registry.fly.io/claw:2"}}'
    )
    kubectl.run(
        "patch",
        "claw",
        "minimal",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/guest/cpus","value":4}]',
    )
    # status through the main resource is ignored; through /status it is the only thing that changes
    kubectl.run("patch", "claw", "minimal", "--type=merge", "-p", '{"status":{"phase":"Stopped"}}')
    kubectl.run(
        "patch",
        "claw",
        "minimal",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Running"},"spec":{"image":"ignored"}}',
    )
    claw = kubesim_thread.get(*CLAW, "minimal", "default")
    assert claw is not None
    assert claw["spec"]["image"] == "registry.fly.io/claw:2"
    assert claw["spec"]["guest"]["cpus"] == 4
    assert claw["status"] == {"phase": "Running"}
    assert claw["metadata"]["generation"] == 3  # two spec changes; status changes don't count

    failed = kubectl.run(
        "patch",
        "claw",
        "minimal",
        "--type=json",
        "-p",
        '[{"op":"test","path":"/spec/region","value":"ord"}]',
        check=False,
    )
    assert failed.returncode != 0 and "test" in failed.stderr.lower()


def test_annotate_label_and_select(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES))
    kubectl.run("annotate", "claw", "minimal", "claw.dev/reconcile-requested-at=now")
    kubectl.run("label", "claw", "minimal", "tier=gold")
    assert kubectl.run("get", "claw", "-l", "tier=gold", "-o", "name").stdout.split() == [
        "clawinstance.claw.dev/minimal"
    ]
    assert len(kubectl.run("get", "claw", "-l", "tier!=gold", "-o", "name").stdout.split()) == 2
    claw = kubectl.json("get", "claw", "minimal")
    assert claw["metadata"]["annotations"]["claw.dev/reconcile-requested-at"] == "now"
    named = kubectl.run("get", "claw", "--field-selector", "metadata.name=full", "-o", "name").stdout.split()
    assert named == ["clawinstance.claw.dev/full"]


def test_replace_and_stale_replace_conflicts(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    manifest = tmp_path / "minimal.yaml"
    manifest.write_text(
        kubectl.run("get", "claw", "minimal", "-o", "yaml").stdout.replace("cpus: 2", "cpus: 6")
    )
    assert "replaced" in kubectl.run("replace", "-f", str(manifest)).stdout
    assert kubectl.json("get", "claw", "minimal")["spec"]["guest"]["cpus"] == 6
    stale = kubectl.run("replace", "-f", str(manifest), check=False)  # its resourceVersion is now old
    assert stale.returncode != 0 and "Conflict" in stale.stderr


def test_delete_waits_for_the_finalizer(kubectl: Kubectl, kubesim_thread: KubeSimThread) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    kubectl.run(
        "patch", "claw", "minimal", "--type=merge", "-p", '{"metadata":{"finalizers":["claw.dev/finalizer"]}}'
    )
    deleting = kubectl.popen("delete", "claw", "minimal", "--timeout=30s")
    try:
        eventually(
            lambda: bool(
                (kubesim_thread.get(*CLAW, "minimal", "default") or {})
                .get("metadata", {})
                .get("deletionTimestamp")
            )
        )
        assert deleting.poll() is None, "kubectl delete returned while the finalizer was still there"
        kubectl.run(
            "patch", "claw", "minimal", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]'
        )
        assert deleting.wait(timeout=30) == 0
    finally:
        deleting.kill()
    assert kubesim_thread.get(*CLAW, "minimal", "default") is None
    assert kubectl.run("get", "claw", "minimal", check=False).returncode != 0


def test_wait_for_condition_ready(kubectl: Kubectl, kubesim_thread: KubeSimThread) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    waiting = kubectl.popen("wait", "--for=condition=Ready", "claw/minimal", "--timeout=30s")
    try:
        kubectl.run(
            "patch", "claw", "minimal", "--subresource=status", "--type=merge", "-p", ready_status("False")
        )
        assert waiting.poll() is None
        kubectl.run(
            "patch", "claw", "minimal", "--subresource=status", "--type=merge", "-p", ready_status("True")
        )
        assert waiting.wait(timeout=30) == 0
        assert "condition met" in (waiting.stdout.read() if waiting.stdout else "")
    finally:
        waiting.kill()


def test_get_watch_streams_changes(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    watching = kubectl.popen("get", "claw", "-w", "--output-watch-events")
    try:
        assert watching.stdout is not None
        header = watching.stdout.readline()
        assert header.split() == ["EVENT", "NAME", "PHASE", "READY", "MACHINE", "REGION", "AGE"]
        assert watching.stdout.readline().split()[:2] == ["ADDED", "minimal"]
        kubectl.run("patch", "claw", "minimal", "--subresource=status", "--type=merge", "-p", ready_status())
        modified = watching.stdout.readline().split()
        assert modified[:6] == ["MODIFIED", "minimal", "Running", "True", "m-123", "iad"]
        kubectl.run("delete", "claw", "minimal")
        assert watching.stdout.readline().split()[:2] == ["DELETED", "minimal"]
    finally:
        watching.kill()
        watching.wait()


def test_explain_reads_the_crd_schema(kubectl: Kubectl) -> None:
    explained = kubectl.run("explain", "clawinstance.spec.guest").stdout
    assert "KIND:       ClawInstance" in explained and "VERSION:    v1alpha1" in explained
    assert "The machine's CPU and memory." in explained
    for field in ("cpuKind", "cpus", "memoryMB"):
        assert field in explained
    recursive = kubectl.run("explain", "clawinstance.status", "--recursive").stdout
    assert "conditions" in recursive and "machineId" in recursive


def test_namespace_created_with_apply_and_used(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "ns.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n")
    assert "namespace/team-a created" in kubectl.run("apply", "-f", str(manifest)).stdout
    assert kubectl.json("get", "ns", "team-a")["status"]["phase"] == "Active"
    created = kubectl.run(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: claw.dev/v1alpha1\nkind: ClawInstance\nmetadata: {name: a, namespace: team-a}\n"
        "spec: {region: iad, image: x}\n",
    )
    assert "created" in created.stdout
    assert kubectl.run("get", "claw", "-n", "team-a", "-o", "name").stdout.split() == [
        "clawinstance.claw.dev/a"
    ]


@pytest.mark.parametrize(
    ("manifest_spec", "named"),
    [
        ("{region: iad, image: x, guest: {cpus: 0}}", "spec.guest.cpus"),
        ("{region: iad, image: x, guest: {memoryMB: 1000}}", "spec.guest.memoryMB"),
        ("{region: iad, image: x, state: Sleeping}", "spec.state"),
        ("{region: iad}", "spec.image"),
        ("{region: iad, image: x, bogus: 1}", "spec.bogus"),
        ("{region: iad, image: x, env: {FLY_REGION: x}}", "spec.env"),
    ],
)
def test_invalid_manifest_is_refused_naming_the_field(
    kubectl: Kubectl, manifest_spec: str, named: str
) -> None:
    manifest = (
        f"apiVersion: claw.dev/v1alpha1\nkind: ClawInstance\nmetadata: {{name: bad}}\nspec: {manifest_spec}\n"
    )
    refused = kubectl.run("apply", "-f", "-", stdin=manifest, check=False)
    assert refused.returncode != 0
    assert named in refused.stderr
    assert kubectl.run("get", "claw", "bad", check=False).returncode != 0


def test_transition_rules_refuse_immutable_changes(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(EXAMPLES / "minimal.yaml"))
    region = kubectl.run(
        "patch", "claw", "minimal", "--type=merge", "-p", '{"spec":{"region":"ord"}}', check=False
    )
    assert (
        region.returncode != 0 and "spec.region" in region.stderr and "region is immutable" in region.stderr
    )
    kubectl.run("patch", "claw", "minimal", "--type=merge", "-p", '{"spec":{"volume":{"sizeGB":20}}}')
    shrink = kubectl.run(
        "patch", "claw", "minimal", "--type=merge", "-p", '{"spec":{"volume":{"sizeGB":15}}}', check=False
    )
    assert shrink.returncode != 0 and "cannot shrink" in shrink.stderr


def test_server_side_apply_creates_then_merges(kubectl: Kubectl) -> None:
    applied = kubectl.run("apply", "--server-side", "-f", str(EXAMPLES / "minimal.yaml"))
    assert "serverside-applied" in applied.stdout
    claw = kubectl.json("get", "claw", "minimal", "--show-managed-fields")
    assert [m["manager"] for m in claw["metadata"]["managedFields"]] == ["kubectl"]
    kubectl.run(
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin="apiVersion: claw.dev/v1alpha1\nkind: ClawInstance\n"
        "metadata: {name: minimal, namespace: default}\n"
        "spec: {region: iad, image: registry.fly.io/claw:3}\n",
    )
    assert kubectl.json("get", "claw", "minimal")["spec"]["image"] == "registry.fly.io/claw:3"


def test_api_resources_and_short_names(kubectl: Kubectl) -> None:
    resources = kubectl.run("api-resources").stdout
    assert "clawinstances" in resources and "claw" in resources
    assert kubectl.run("get", "claw").returncode == 0
    assert "default" in kubectl.run("get", "ns").stdout
    result = kubectl.run("get", "all", check=False)  # "all" is a category nothing here belongs to
    assert "warning" not in result.stderr.lower() or "could also match" not in result.stderr


def test_typed_create_commands_send_protobuf_that_kubesim_decodes(kubectl: Kubectl) -> None:
    assert "namespace/team-b created" in kubectl.run("create", "namespace", "team-b").stdout
    kubectl.run("create", "configmap", "settings", "-n", "team-b", "--from-literal=mode=fast")
    kubectl.run("create", "secret", "generic", "token", "-n", "team-b", "--from-literal=key=s3cret")
    assert kubectl.json("get", "configmap", "settings", "-n", "team-b")["data"] == {"mode": "fast"}
    assert kubectl.json("get", "secret", "token", "-n", "team-b")["data"] == {"key": "czNjcmV0"}
    namespace = kubectl.json("get", "namespace", "team-b")
    assert "generateName" not in namespace["metadata"] and namespace["status"]["phase"] == "Active"
    kubectl.run("delete", "namespace", "team-b")  # waits until the namespace and its contents are gone
    assert kubectl.run("get", "namespace", "team-b", check=False).returncode != 0


def test_events_list_in_both_apis(kubectl: Kubectl, kubesim_thread: KubeSimThread) -> None:
    kubesim_thread.create(
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "eventTime": "2026-11-24T08:00:00.000000Z",
            "regarding": {"kind": "ClawInstance", "name": "minimal", "namespace": "default"},
            "reason": "Started",
            "note": "machine started",
            "type": "Normal",
            "action": "Start",
            "reportingController": "claw.dev/operator",
            "reportingInstance": "claw-operator-0",
        }
    )
    core = kubectl.run("get", "events").stdout
    assert "Started" in core and "clawinstance/minimal" in core and "machine started" in core
    assert kubectl.json("get", "event", "e1")["message"] == "machine started"
    assert kubectl.json("get", "events.events.k8s.io", "e1")["note"] == "machine started"


def test_auth_can_i_and_whoami(kubectl: Kubectl) -> None:
    assert kubectl.run("auth", "can-i", "patch", "clawinstances/status").stdout.strip() == "yes"
    assert "kubesim-admin" in kubectl.run("auth", "whoami").stdout
