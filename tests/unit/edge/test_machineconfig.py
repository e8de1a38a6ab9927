"""The machine read back into the decisions' view: the times of its latest exit and boot."""

from __future__ import annotations

from datetime import UTC, datetime

from claw_operator.edge.machineconfig import machine_view
from claw_operator.fly import Machine


def _machine(events: list[dict[str, object]]) -> Machine:
    return Machine.model_validate({"id": "m1", "state": "stopped", "region": "iad", "events": events})


def test_the_latest_exit_event_is_when_it_exited() -> None:
    view = machine_view(
        _machine(
            [
                {"type": "start", "status": "started", "timestamp": 1_700_000_050_000},
                {"type": "exit", "status": "stopped", "timestamp": 1_700_000_040_000},
                {"type": "exit", "status": "stopped", "timestamp": 1_700_000_060_500},
                {
                    "type": "exit",
                    "status": "stopped",
                    "timestamp": 1_700_000_070_000,
                    "request": {"exit_event": {"requested_stop": True}},
                },
            ]
        )
    )
    assert view.exited_at == datetime.fromtimestamp(1_700_000_060.5, UTC)


def test_no_exit_event_no_exit_time() -> None:
    assert machine_view(_machine([{"type": "start", "timestamp": 1}])).exited_at is None
    assert machine_view(_machine([{"type": "exit", "timestamp": "soon"}])).exited_at is None


def test_the_latest_start_event_is_when_it_booted() -> None:
    view = machine_view(
        _machine(
            [
                {"type": "stop", "status": "stopped", "timestamp": 1_700_000_090_000},
                {"type": "start", "status": "started", "timestamp": 1_700_000_080_250},
                {"type": "exit", "status": "stopped", "timestamp": 1_700_000_060_000},
                {"type": "start", "status": "started", "timestamp": 1_700_000_050_000},
                {"type": "launch", "status": "created", "timestamp": 1_700_000_040_000},
            ]
        )
    )
    assert view.booted_at == datetime.fromtimestamp(1_700_000_080.25, UTC)


def test_no_start_event_no_boot_time() -> None:
    assert machine_view(_machine([{"type": "launch", "timestamp": 1}])).booted_at is None
    assert machine_view(_machine([{"type": "start", "timestamp": "soon"}])).booted_at is None
    assert machine_view(_machine([])).booted_at is None


def test_an_update_keeps_other_checks_and_makes_ours_follow_the_spec() -> None:
    from claw_operator.edge.machineconfig import merged_config

    ours = {"type": "http", "port": 8080, "path": "/healthz"}
    current = {"image": "a", "checks": {"claw": {"type": "http", "port": 1}, "human": {"type": "tcp"}}}
    assert merged_config(current, {"image": "b", "checks": {"claw": ours}})["checks"] == {
        "claw": ours,
        "human": {"type": "tcp"},
    }
    # spec.healthCheck removed: ours goes, the human's stays.
    assert merged_config(current, {"image": "b"})["checks"] == {"human": {"type": "tcp"}}
    assert "checks" not in merged_config({"image": "a"}, {"image": "b"})


def test_our_check_config_is_read_back() -> None:
    machine = Machine.model_validate(
        {
            "id": "m1",
            "state": "started",
            "config": {
                "image": "x",
                "checks": {
                    "claw": {
                        "type": "http",
                        "port": 8080,
                        "path": "/healthz",
                        "interval": "15s",
                        "timeout": "5s",
                        "grace_period": "30s",
                    }
                },
            },
            "checks": [{"name": "claw", "status": "critical", "output": "refused"}],
        }
    )
    view = machine_view(machine)
    assert view.health_check == "http :8080/healthz every 15s timeout 5s grace 30s"
    assert view.checks is not None and view.checks[0].status == "critical"
    bare = machine_view(Machine.model_validate({"id": "m1", "state": "started", "config": {"image": "x"}}))
    assert bare.health_check == "none" and bare.checks is None
