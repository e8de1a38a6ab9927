"""carry_over: which passes may skip observing Fly because the previous pass of the same run
already knows what they would see. Each row says why."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from claw_operator.kube.reconciler import carry_over
from claw_operator.lifecycle.model import (
    Action,
    ActionResult,
    CreateMachine,
    CreateVolume,
    Decision,
    DestroyMachine,
    FailureKind,
    Lookup,
    Observation,
)
from tests.unit.lifecycle.builders import (
    MACHINE,
    VOLUME,
    Case,
    failed,
    failure,
    instance,
    machine,
    observed,
    ok,
    run,
    status,
    volume,
)

NAME = "claw_5f3a9c1e0b7d4e2a9c118d6f"


@dataclass(frozen=True)
class Row:
    id: str
    observed: Observation
    action: Action | None
    result: ActionResult | None
    carries: bool


def _decided(row: Row) -> Decision:
    """The decision the pass ended with, as the reconciler hands it to carry_over."""
    if row.action is None or row.result is None or isinstance(row.action, DestroyMachine):
        return run(Case(row.id, instance(), row.observed))
    if isinstance(row.action, CreateVolume):
        return run(Case(row.id, instance(), row.observed, result=row.result))
    provisioned = instance(status_=status(volume_id=VOLUME, region="iad", phase="Provisioned"))
    return run(Case(row.id, provisioned, row.observed, result=row.result))


ROWS = [
    Row(
        # The listing before the volume create stays conclusive for the machine create that
        # follows: no machine was created since, and the run holds the object's lock.
        "volume_created_keeps_the_machine_listing",
        observed(tagged=(), named=()),
        CreateVolume(region="iad", size_gb=10, name=NAME),
        ok(volume_=volume("vol7")),
        carries=True,
    ),
    Row(
        # Fly's answer to the create is the machine as it is now: a GET would repeat it.
        "machine_created_is_seen_in_the_answer",
        observed(volume=volume(), tagged=()),
        CreateMachine(volume_id=VOLUME, region="iad"),
        ok(machine("created")),
        carries=True,
    ),
    Row(
        # A failure may hide anything (a silent success): look again.
        "a_failed_create_is_observed_afresh",
        observed(volume=volume(), tagged=()),
        CreateMachine(volume_id=VOLUME, region="iad"),
        failed(failure(FailureKind.TIMEOUT, 408, "timeout")),
        carries=False,
    ),
    Row(
        # No action: the status moved (an adoption, a guard) but nothing new is known.
        "no_action_is_observed_afresh",
        observed(tagged=(machine("stopped"),)),
        None,
        None,
        carries=False,
    ),
    Row(
        # Destroys always look again (by tag, by name) before the next step.
        "destroy_is_observed_afresh",
        observed(machine(), volume()),
        DestroyMachine(machine_id=MACHINE),
        ok(),
        carries=False,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_carry_over(row: Row) -> None:
    carried = carry_over(row.observed, row.action, row.result, _decided(row))
    assert (carried is not None) == row.carries
    if carried is None or row.result is None:
        return
    if row.result.volume is not None:
        assert carried.volume.outcome == Lookup.FOUND and carried.volume.volume == row.result.volume
        assert carried.tagged_machines == row.observed.tagged_machines
    if row.result.machine is not None:
        assert carried.machine.outcome == Lookup.FOUND and carried.machine.machine == row.result.machine
        assert carried.volume == row.observed.volume
