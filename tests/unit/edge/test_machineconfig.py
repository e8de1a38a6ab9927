"""The machine read back into the decisions' view: the time of its latest exit."""

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
            ]
        )
    )
    assert view.exited_at == datetime.fromtimestamp(1_700_000_060.5, UTC)


def test_no_exit_event_no_exit_time() -> None:
    assert machine_view(_machine([{"type": "start", "timestamp": 1}])).exited_at is None
    assert machine_view(_machine([{"type": "exit", "timestamp": "soon"}])).exited_at is None
