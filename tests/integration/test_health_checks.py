"""Ready means healthy (issue 12, part 3), against the real operator, kubesim and flysim:
`spec.healthCheck` is rendered as the machine's Fly `checks`; while they fail, `Ready=False`
(`Unhealthy`, with the check's output) and the phase stays `Running`; past the grace period a
Warning Event (one series); once they pass, `Ready=True`."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import APP, Sandbox

CHECK = {"port": 8080, "path": "/healthz", "interval": "1s", "timeout": "1s", "gracePeriod": "1s"}


def _machine(sandbox: Sandbox, machine_id: str) -> dict[str, Any]:
    response = sandbox.flyhttp.get(f"/v1/apps/{APP}/machines/{machine_id}")
    response.raise_for_status()
    machine: dict[str, Any] = response.json()
    return machine


def test_unhealthy_until_the_check_passes(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    # flysim: the checks of `sim-healthy-after-<s>` pass that long after each start.
    sandbox.create("slowpoke", image="registry.fly.io/claw:sim-healthy-after-2", healthCheck=CHECK)
    ready = sandbox.wait_condition("slowpoke", "Ready", "False", "Unhealthy", timeout=15)
    assert "critical" in ready["message"]
    status = sandbox.status("slowpoke")
    assert status["phase"] == "Running" and status["unhealthySince"]
    config = _machine(sandbox, status["machineId"])["config"]
    assert config["checks"]["claw"] == {
        "type": "http",
        "port": 8080,
        "method": "GET",
        "path": "/healthz",
        "interval": "1s",
        "timeout": "1s",
        "grace_period": "1s",
    }

    sandbox.wait_condition("slowpoke", "Ready", "True", "Running", timeout=15)
    status = sandbox.status("slowpoke")
    assert status["phase"] == "Running"
    assert not status.get("unhealthySince") and not status.get("healthCheckOutput")


def test_a_failing_check_is_a_warning_past_the_grace_period(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("sick", image="registry.fly.io/claw:sim-unhealthy", healthCheck=CHECK)
    ready = sandbox.wait_condition("sick", "Ready", "False", "Unhealthy", timeout=15)
    assert sandbox.status("sick")["phase"] == "Running"

    def grown() -> list[dict[str, Any]] | None:
        series = [e for e in sandbox.events("sick") if e.get("reason") == "Unhealthy"]
        return series if len(series) == 1 and series[0].get("count", 1) >= 2 else None

    (event,) = sandbox.wait(grown, 15, "one growing Unhealthy series")
    assert event["type"] == "Warning" and "connection refused" in event["message"]
    ready = sandbox.condition("sick", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Unhealthy")
    assert "connection refused" in ready["message"]
    # Still Running the whole time: unhealthy is not stopped, and it is not restarted.
    assert sandbox.status("sick")["phase"] == "Running"
    assert sandbox.condition("sick", "Restarting")["status"] != "True"


def test_adding_a_health_check_updates_the_machine(sandbox: Sandbox) -> None:
    sandbox.start_operator()
    sandbox.create("plain")
    sandbox.wait_condition("plain", "Ready", "True", "Running")
    sandbox.patch("plain", {"spec": {"healthCheck": CHECK}})
    sandbox.wait_condition("plain", "Restarting", "False", "RestartSucceeded", timeout=20)
    machine = _machine(sandbox, sandbox.status("plain")["machineId"])
    assert machine["config"]["checks"]["claw"]["path"] == "/healthz"
    sandbox.wait_condition("plain", "Ready", "True", "Running", timeout=15)
