"""`kubectl claw` end to end: the real `kubectl` finds the plugin on PATH and runs it against
kubesim + flysim, with the real operator reconciling in-process (issue 17's acceptance)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.integration.conftest import APP, TOKEN, Sandbox

VENV_BIN = Path(sys.executable).parent
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (make tools)")

SECRET_VALUE = "s3cr3t-value-never-shown"


def claw(
    sandbox: Sandbox, *args: str, token: str | None = TOKEN, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`kubectl claw ARGS` as a user runs it: the plugin found through PATH by kubectl."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FLY_API_TOKEN", "FLY_API_URL", "FLY_APP", "KUBECONFIG")
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["KUBECONFIG"] = str(sandbox.kubeconfig)
    env["FLY_API_URL"] = sandbox.fly.base_url
    env["FLY_APP"] = APP
    if token is not None:
        env["FLY_API_TOKEN"] = token
    env.update(extra_env or {})
    result = subprocess.run(
        [str(KUBECTL), "claw", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    # Whatever the verb and the outcome: no traceback, no token, no secret value.
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, stream
        assert TOKEN not in stream
        assert SECRET_VALUE not in stream
    return result


def test_inspect_shows_status_events_and_the_live_fly_side(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("web")
    status = sandbox.wait_condition("web", "Ready", "True", "Running") and sandbox.status("web")
    sandbox.wait_events("web", "Started")

    result = claw(sandbox, "inspect", "web")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Phase:       Running" in out
    assert "Ready:       True (Running)" in out
    for cond in ("Ready", "Reconciling", "Stalled", "StartFailed", "MountRepaired", "Restarting"):
        assert f"\n  {cond} " in out
    machine = f"  Machine:   {status['machineId']}  started  version {status['instanceId']}  region iad"
    assert machine in out
    assert "image registry.fly.io/claw:1  guest shared/2cpu/3072MB" in out
    assert f"mounts {status['volumeId']}:/root\n" in out
    assert (
        f"  Volume:    {status['volumeId']}  10GB  region iad  created  attached to {status['machineId']}"
        in out
    )
    assert "  Drift:     none (the machine matches the spec)" in out
    assert "Recent Fly machine events:" in out
    assert "Next check:  every 5m (+ up to 1m jitter) while Running" in out
    assert "Last start error:    none" in out
    assert " Normal   Started " in out  # the Kubernetes Events table

    data = json.loads(claw(sandbox, "inspect", "web", "-o", "json").stdout)
    assert data["fly"]["machine"]["state"] == "started"
    assert data["fly"]["volume"]["attachedMachineId"] == status["machineId"]
    assert data["fly"]["drift"] is None
    assert {c["type"] for c in data["conditions"]} >= {"Ready", "Stalled"}
    assert yaml.safe_load(claw(sandbox, "inspect", "web", "-o", "yaml").stdout)["phase"] == "Running"


@pytest.mark.slow(14)
def test_inspect_names_the_pending_restart_of_a_drifted_machine(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("drifty")
    sandbox.wait_condition("drifty", "Ready", "True", "Running")

    paused = claw(sandbox, "pause", "drifty")
    assert paused.returncode == 0, paused.stderr
    assert "paused" in paused.stdout
    sandbox.wait_condition("drifty", "Reconciling", "False", "Paused")
    sandbox.patch("drifty", {"spec": {"image": "registry.fly.io/claw:2"}})

    out = claw(sandbox, "inspect", "drifty").stdout
    expected = (
        "  Drift:     image registry.fly.io/claw:1 -> registry.fly.io/claw:2: "
        "a restart is pending once resumed (paused) (ConfigChanged)"
    )
    assert expected in out, out
    assert "Next check:  none: reconciliation is paused (kubectl claw resume drifty)" in out
    table = claw(sandbox, "get").stdout
    assert "ConfigChanged" in table.splitlines()[1], table

    resumed = claw(sandbox, "resume", "drifty")
    assert resumed.returncode == 0, resumed.stderr
    sandbox.wait_condition("drifty", "Restarting", "False", "RestartSucceeded", timeout=30)
    out = claw(sandbox, "inspect", "drifty").stdout
    assert "image registry.fly.io/claw:2  guest" in out
    assert "  Drift:     none" in out


def test_inspect_without_a_fly_token_shows_the_kubernetes_side_and_says_so(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("tokenless")
    sandbox.wait_phase("tokenless", "Running")
    result = claw(sandbox, "inspect", "tokenless", token=None)
    assert result.returncode == 0, result.stderr
    assert "Phase:       Running" in result.stdout
    assert "Fly:         not looked at: no Fly token (set FLY_API_TOKEN" in result.stdout
    assert "(the Kubernetes side only)" in result.stdout
    assert "  Machine:" not in result.stdout


def test_inspect_reads_the_fly_token_from_a_named_secret(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("secretly")
    status = sandbox.wait_phase("secretly", "Running")
    sandbox.core.create_namespaced_secret(
        "default",
        client.V1Secret(metadata=client.V1ObjectMeta(name="fly-api-token"), string_data={"token": TOKEN}),
    )
    result = claw(sandbox, "inspect", "secretly", "--fly-token-secret", "default/fly-api-token", token=None)
    assert result.returncode == 0, result.stderr
    assert f"  Machine:   {status['machineId']}  started" in result.stdout
    missing = claw(sandbox, "inspect", "secretly", "--fly-token-secret", "nope", token=None)
    assert missing.returncode == 3
    assert 'Secret "nope" not found in namespace "default"' in missing.stderr


def test_a_token_fly_refuses_is_reported_in_the_fly_section(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("refused")
    sandbox.wait_phase("refused", "Running")
    result = claw(sandbox, "inspect", "refused", token="fo1_wrong-token")
    assert result.returncode == 0, result.stderr
    assert "  error:     machine " in result.stdout
    assert "fo1_wrong-token" not in result.stdout + result.stderr


def test_unknown_name_fails_with_a_clear_error_and_exit_code_3(sandbox: Sandbox) -> None:
    for verb in ("inspect", "restart", "pause", "resume", "reconcile"):
        result = claw(sandbox, verb, "nope")
        assert result.returncode == 3, (verb, result.stderr)
        assert result.stderr.strip() == 'kubectl claw: clawinstance "nope" not found in namespace "default"'
        assert result.stdout == ""
    result = claw(sandbox, "get", "nope")
    assert result.returncode == 3
    sandbox.create("known")  # like kubectl: the rows found are shown, the command still fails
    result = claw(sandbox, "get", "known", "nope")
    assert result.returncode == 3
    assert [line.split()[1] for line in result.stdout.splitlines()[1:]] == ["known"]
    assert 'clawinstance "nope" not found' in result.stderr


def test_unusable_kubeconfig_and_bad_usage_have_their_own_exit_codes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    result = claw(sandbox, "inspect", "x", extra_env={"KUBECONFIG": str(tmp_path / "nonexistent")})
    assert result.returncode == 4
    assert result.stderr.startswith("kubectl claw: no usable kubeconfig")
    assert len(result.stderr.strip().splitlines()) == 1
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(
        sandbox.kubeconfig.read_text().replace(sandbox.kube.base_url, "http://127.0.0.1:9")
    )
    result = claw(sandbox, "get", extra_env={"KUBECONFIG": str(unreachable)})
    assert result.returncode == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9" in result.stderr
    assert claw(sandbox, "inspect").returncode == 2  # NAME missing
    assert claw(sandbox, "frobnicate", "x").returncode == 2


def test_restart_and_reconcile_write_what_the_operator_acts_on(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("kick")
    sandbox.wait_condition("kick", "Ready", "True", "Running")
    result = claw(sandbox, "restart", "kick")
    assert result.returncode == 0, result.stderr
    restarted_at = sandbox.get("kick")["spec"]["restartedAt"]  # type: ignore[index]
    assert f"restart requested (spec.restartedAt={restarted_at})" in result.stdout
    sandbox.wait_condition("kick", "Restarting", "False", "RestartSucceeded", timeout=30)
    assert sandbox.status("kick")["handledRestartedAt"] == restarted_at

    result = claw(sandbox, "reconcile", "kick")
    assert result.returncode == 0, result.stderr
    requested = sandbox.get("kick")["metadata"]["annotations"]["claw.dev/reconcile-requested-at"]  # type: ignore[index]
    sandbox.wait(lambda: sandbox.status("kick").get("lastHandledReconcileAt") == requested, what="echo")


def test_get_puts_the_fly_state_next_to_status_across_namespaces(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-b")))
    sandbox.create("one")
    sandbox.namespace = "team-b"
    sandbox.create("two")
    sandbox.wait_condition("two", "Ready", "True", "Running")
    sandbox.namespace = "default"
    one = sandbox.wait_condition("one", "Ready", "True", "Running") and sandbox.status("one")

    result = claw(sandbox, "get", "-A")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "READY",
        "REASON",
        "MACHINE",
        "FLY-STATE",
        "VERSION",
        "REGION",
        "DRIFT",
        "PAUSED",
        "IMAGE",
        "AGE",
    ]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert set(rows) == {"one", "two"}
    assert rows["one"][:9] == [
        "default",
        "one",
        "Running",
        "True",
        "Running",
        one["machineId"],
        "started",
        one["instanceId"],
        "iad",
    ]
    assert rows["two"][0] == "team-b"
    assert [r["name"] for r in json.loads(claw(sandbox, "get", "-o", "json").stdout)] == ["one"]

    tokenless = claw(sandbox, "get", "-n", "team-b", token=None)
    assert tokenless.returncode == 0
    assert "Fly state not shown: no Fly token" in tokenless.stderr
    assert tokenless.stdout.splitlines()[1].split()[6] == "?"


def test_secret_env_values_are_never_shown(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.core.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="creds"),
            data={"api-key": base64.b64encode(SECRET_VALUE.encode()).decode()},
        ),
    )
    sandbox.create(
        "hush",
        env={"PLAIN": "visible"},
        secretEnv=[{"name": "API_KEY", "secretKeyRef": {"name": "creds", "key": "api-key"}}],
    )
    sandbox.wait_condition("hush", "Ready", "True", "Running")
    out = claw(sandbox, "inspect", "hush").stdout  # claw() asserts the value never shows
    assert "secretEnv API_KEY <- secret creds/api-key" in out
    assert "env not compared (secretEnv values are never read)" in out
    for output in ("json", "yaml"):
        claw(sandbox, "inspect", "hush", "-o", output)


@pytest.mark.slow(18)
def test_help_on_every_verb_and_kubectl_completes_through_the_plugin(sandbox: Sandbox) -> None:
    for verb in ("inspect", "get", "restart", "pause", "resume", "reconcile", "completion"):
        result = claw(sandbox, verb, "--help")
        assert result.returncode == 0, verb
        assert result.stdout.startswith(f"usage: kubectl claw {verb}")
        assert "exit codes:" in result.stdout
    sandbox.create("alpha")
    sandbox.create("beta")

    def complete(*words: str) -> list[str]:
        env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        env["KUBECONFIG"] = str(sandbox.kubeconfig)
        done = subprocess.run(
            [str(KUBECTL), "__complete", "claw", *words], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.splitlines()

    verbs = complete("")
    assert verbs[-1] == ":4"
    assert {"inspect", "get", "restart", "pause", "resume", "reconcile"} <= set(verbs)
    assert complete("ins")[:-1] == ["inspect"]
    assert complete("inspect", "")[:-1] == ["alpha", "beta"]
    assert complete("inspect", "-o", "")[:-1] == ["yaml", "json"]
    assert "--fly-token-secret" in complete("inspect", "--fly")


def test_a_cluster_without_the_crd_is_named_with_exit_code_4(tmp_path: Path) -> None:
    from claw_operator.sim.kubesim import KubeSimThread

    kubeconfig = tmp_path / "bare.kubeconfig"
    with KubeSimThread(kubeconfig=kubeconfig):
        env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        env["KUBECONFIG"] = str(kubeconfig)
        for verb in (["get", "-A"], ["inspect", "web"]):
            result = subprocess.run(
                [str(KUBECTL), "claw", *verb],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 4, (verb, result.stderr)
            assert "the ClawInstance CRD (clawinstances.claw.dev) is not installed" in result.stderr
            assert "Traceback" not in result.stderr


def test_rbac_that_forbids_the_read_is_one_line_naming_it(sandbox: Sandbox, tmp_path: Path) -> None:
    import httpx

    sandbox.create("guarded")
    denied = sandbox.kube.write_kubeconfig(tmp_path / "denied", token="viewer-without-rbac")
    httpx.post(
        f"{sandbox.kube.base_url}/_kubesim/partitions",
        json={"token": "viewer-without-rbac", "mode": "forbidden", "resource": "clawinstances"},
        timeout=5,
    ).raise_for_status()
    for verb in (["inspect", "guarded"], ["get"], ["restart", "guarded"]):
        result = claw(sandbox, *verb, extra_env={"KUBECONFIG": str(denied)})
        assert result.returncode == 1, (verb, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "forbidden (403)" in lines[0] and "check your RBAC / credentials" in lines[0]
        assert 'resource "clawinstances" in API group "claw.dev"' in lines[0]
