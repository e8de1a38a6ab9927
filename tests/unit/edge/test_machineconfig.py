"""The machine config rendered for Fly and read back into the decisions' view: its config,
the time of its latest exit, its checks."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

import yaml

from claw_operator.api import ClawInstanceSpec
from claw_operator.edge.env import env_digest
from claw_operator.edge.machineconfig import desired_config, machine_view, read_config
from claw_operator.fly import Machine, MachineConfig
from claw_operator.lifecycle.desired import config_changes, desired_machine
from tests.conftest import EXAMPLES
from tests.unit.lifecycle.builders import instance


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


def test_what_is_rendered_reads_back_as_what_the_spec_asks() -> None:
    """`desired_config` and `read_config` are the two sides of `DesiredMachine`, field by field:
    a field added to it and not rendered, or not read back, fails here (with examples/full.yaml,
    which sets every spec field)."""
    full = yaml.safe_load((EXAMPLES / "full.yaml").read_text())
    env = {"LOG_LEVEL": "info", "API_KEY": "not-logged"}
    inst = instance(spec_=ClawInstanceSpec.model_validate(full["spec"]), env_digest=env_digest(env))
    rendered = MachineConfig.model_validate(desired_config(inst, env, "vol1"))
    want = desired_machine(inst, "vol1")
    assert read_config(rendered) == want
    assert [f.name for f in fields(want) if getattr(want, f.name) is None] == []
    machine = {"id": "m1", "state": "started", "config": rendered.model_dump()}
    view = machine_view(Machine.model_validate(machine))
    assert view.config == want and config_changes(want, view.config) == []


def test_an_unknown_config_or_field_never_drifts() -> None:
    # No env digest (a Secret missing): the env never drifts either.
    inst = instance(spec_=ClawInstanceSpec.model_validate({"region": "iad", "image": "b"}), env_digest=None)
    want = desired_machine(inst, "vol1")
    no_config = machine_view(Machine.model_validate({"id": "m1", "state": "started"}))
    assert no_config.config is None and no_config.image is None and no_config.mounts == ()
    assert config_changes(want, no_config.config) == []
    no_image = read_config(MachineConfig.model_validate({"guest": {"cpus": 1}}))
    assert no_image.image is None and config_changes(want, no_image) == [
        "guest shared/1cpu/0MB -> shared/2cpu/3072MB"
    ]
