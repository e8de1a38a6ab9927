"""docs/gitops/argocd-health.lua under a real Lua 5.1 (Argo CD embeds gopher-lua, a Lua 5.1),
against a sample ClawInstance in each health state; and the argocd-cm snippet in argocd.md is
that file verbatim."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from lupa import lua51

from tests.conftest import REPO

GITOPS = REPO / "docs" / "gitops"
SCRIPT = (GITOPS / "argocd-health.lua").read_text()
CM_KEY = "resource.customizations.health.claw.dev_ClawInstance"


def to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any], script: str = SCRIPT) -> tuple[str, str]:
    """Run the script as Argo CD does: the object in the global `obj`, the chunk returns hs."""
    runtime = lua51.LuaRuntime()
    assert runtime.eval("_VERSION") == "Lua 5.1"
    runtime.globals().obj = to_lua(runtime, obj)
    hs = runtime.execute(script)
    return str(hs["status"]), str(hs["message"] or "")


def cond(type_: str, status: str, reason: str, message: str = "", generation: int = 2) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-24T08:00:00Z",
        "observedGeneration": generation,
    }


def instance(
    *conditions: dict[str, Any],
    generation: int = 2,
    observed: int | None = 2,
    annotations: dict[str, str] | None = None,
    phase: str = "Running",
) -> dict[str, Any]:
    by_type = {
        "Ready": cond("Ready", "Unknown", "Unknown"),
        "Reconciling": cond("Reconciling", "False", "Reconciled"),
        "Stalled": cond("Stalled", "False", "NotStalled"),
        "StartFailed": cond("StartFailed", "False", "Started"),
        "MountRepaired": cond("MountRepaired", "False", "NoRepair"),
        "Restarting": cond("Restarting", "False", "NotRestarting"),
    }
    for c in conditions:
        by_type[c["type"]] = c
    status: dict[str, Any] = {"phase": phase, "conditions": list(by_type.values())}
    if observed is not None:
        status["observedGeneration"] = observed
    metadata: dict[str, Any] = {"name": "agent", "namespace": "team-a", "generation": generation}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "claw.dev/v1alpha1",
        "kind": "ClawInstance",
        "metadata": metadata,
        "spec": {"region": "iad", "image": "registry.fly.io/claw:1"},
        "status": status,
    }


RUNNING = instance(cond("Ready", "True", "Running", "the machine is started"))

CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (object, health, a fragment of the message)
    "running": (RUNNING, "Healthy", "Running"),
    "stopped as desired": (
        instance(cond("Ready", "True", "Stopped", "the machine is stopped, as desired"), phase="Stopped"),
        "Healthy",
        "stopped, as desired",
    ),
    "new, no status yet": (
        {
            "apiVersion": "claw.dev/v1alpha1",
            "kind": "ClawInstance",
            "metadata": {"name": "agent", "generation": 1},
            "spec": {},
        },
        "Progressing",
        "Waiting for the operator",
    ),
    "provisioning": (
        instance(
            cond("Ready", "False", "Provisioning"),
            cond("Reconciling", "True", "Provisioning", "creating the volume and machine"),
            phase="Provisioned",
        ),
        "Progressing",
        "creating the volume and machine",
    ),
    "starting": (
        instance(
            cond("Ready", "False", "Starting"),
            cond("Reconciling", "True", "Starting", "starting the machine"),
            phase="Starting",
        ),
        "Progressing",
        "Starting",
    ),
    "spec changed, not yet observed (Ready still True from before)": (
        instance(cond("Ready", "True", "Running", generation=2), generation=3, observed=2),
        "Progressing",
        "generation 3",
    ),
    "never observed": (instance(observed=None), "Progressing", "generation 2"),
    "restarting": (
        instance(
            cond("Ready", "False", "Restarting"),
            cond("Reconciling", "True", "Restarting", "RestartRequested"),
            cond("Restarting", "True", "RestartRequested"),
        ),
        "Progressing",
        "Restarting",
    ),
    "repairing a mount": (
        instance(
            cond("Ready", "False", "Restarting"),
            cond("Reconciling", "True", "RepairingMount", "machine mounts vol_1 at /data instead of /root"),
        ),
        "Progressing",
        "RepairingMount",
    ),
    "destroying": (
        instance(
            cond("Ready", "False", "Destroying"),
            cond("Reconciling", "True", "Destroying"),
            phase="Destroying",
        ),
        "Progressing",
        "Destroying",
    ),
    "stalled: bad token": (
        instance(
            cond("Ready", "False", "Unauthorized"),
            cond("Reconciling", "False", "Stalled"),
            cond("Stalled", "True", "Unauthorized", "401 from Fly"),
        ),
        "Degraded",
        "Unauthorized: 401 from Fly",
    ),
    "stalled: start timeout": (
        instance(
            cond("Ready", "False", "StartFailed"),
            cond("Stalled", "True", "StartTimeout", "Starting for 5m"),
            cond("StartFailed", "True", "StartTimeout"),
            phase="Stopped",
        ),
        "Degraded",
        "StartTimeout",
    ),
    "stalled: secret missing": (
        instance(
            cond("Ready", "False", "SecretNotFound"), cond("Stalled", "True", "SecretNotFound", "creds")
        ),
        "Degraded",
        "SecretNotFound",
    ),
    "start failed, retrying": (
        instance(
            cond("Ready", "False", "StartFailed", "insufficient capacity in iad"),
            cond("Reconciling", "True", "Starting"),
            cond("StartFailed", "True", "InsufficientCapacity"),
            phase="Stopped",
        ),
        "Degraded",
        "insufficient capacity",
    ),
    "crash loop, waiting for the next start": (
        instance(
            cond("Ready", "False", "CrashLoopBackOff", "machine m1 stopped 2s after its start"),
            cond("Reconciling", "True", "Starting"),
            cond("StartFailed", "True", "CrashLoopBackOff"),
            phase="Stopped",
        ),
        "Degraded",
        "stopped 2s after its start",
    ),
    "started, health check not passing yet": (
        instance(
            cond("Ready", "False", "Unhealthy", "check claw is critical: 503"),
            cond("Reconciling", "False", "Reconciled"),
        ),
        "Progressing",
        "503",
    ),
    "paused by annotation": (
        instance(cond("Ready", "True", "Running"), annotations={"claw.dev/paused": "true"}),
        "Suspended",
        "claw.dev/paused",
    ),
    "paused, as the operator reports it": (
        instance(
            cond("Ready", "True", "Paused"),
            cond("Reconciling", "False", "Paused", "the claw.dev/paused annotation is set"),
        ),
        "Suspended",
        "Paused",
    ),
    "paused wins over stalled": (
        instance(cond("Stalled", "True", "Unauthorized"), annotations={"claw.dev/paused": "true"}),
        "Suspended",
        "",
    ),
    "pause annotation set to false": (
        copy.deepcopy(RUNNING)
        | {"metadata": {"name": "a", "generation": 2, "annotations": {"claw.dev/paused": "false"}}},
        "Healthy",
        "",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_health(case: str) -> None:
    obj, expected, fragment = CASES[case]
    status, message = health(obj)
    assert status == expected, message
    assert fragment in message


def test_every_argo_health_state_is_covered() -> None:
    assert {expected for _, expected, _ in CASES.values()} == {
        "Healthy",
        "Progressing",
        "Degraded",
        "Suspended",
    }


def test_the_script_can_fail() -> None:
    """The harness really runs the Lua: a script that answers otherwise changes the verdict."""
    assert health(RUNNING, 'return {status = "Degraded", message = "no"}') == ("Degraded", "no")
    with pytest.raises(Exception, match="attempt to index"):
        health(RUNNING, "return obj.nope.deeper")


def test_the_argocd_cm_snippet_is_the_script_verbatim() -> None:
    text = (GITOPS / "argocd.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    configmap = yaml.safe_load(block)
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["name"] == "argocd-cm"
    assert configmap["data"][CM_KEY] == SCRIPT
