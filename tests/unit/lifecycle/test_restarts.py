"""Restarts and mount repair behind the persisted Restarting guard (contract behaviours 4 and 6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from claw_operator.api import Phase
from claw_operator.lifecycle.model import (
    FailureKind,
    GuestView,
    Instance,
    Mount,
    RestartMachine,
    RestartReason,
    StartMachine,
)
from tests.unit.lifecycle.builders import (
    MACHINE,
    T0,
    VOLUME,
    Case,
    check,
    conditions,
    failed,
    failure,
    instance,
    machine,
    observed,
    ok,
    run,
    running,
    running_status,
    spec,
    volume,
)

GUARD_SET = T0 - timedelta(seconds=2)


def in_flight(
    reason: str, *, restarted_at: str | None = None, generation: int = 1, **status_overrides: Any
) -> Instance:
    conds = conditions(
        generation,
        Ready=("False", "Restarting"),
        Reconciling=("True", "Restarting"),
        Stalled=("False", "NotStalled"),
        StartFailed=("False", "Started"),
        MountRepaired=("False", "NoRepair"),
        Restarting=("True", reason),
    )
    return instance(
        spec_=spec(restartedAt=restarted_at) if restarted_at else spec(),
        status_=running_status(
            **{
                "restarting_at": GUARD_SET,
                "restarting_instance_id": "inst-1",
                "restarting_for": restarted_at,
                "conditions": conds,
                **status_overrides,
            }
        ),
        generation=generation,
    )


WRONG_MOUNT = machine("started", volume="vol-other", path="/data")

CASES = [
    # ------------------------------------------------------------------ triggers: the guard first
    Case(
        "mount_drift_sets_the_restart_guard_without_acting",
        running(),
        observed(WRONG_MOUNT, volume()),
        action=None,
        phase=Phase.RUNNING,
        events=("Restarting",),
        conditions={
            "Restarting": ("True", "MountRepair"),
            "Reconciling": ("True", "RepairingMount"),
            "Ready": ("False", "Restarting"),
        },
        fields={"restarting_at": T0},
        requeue_after=0,
    ),
    Case(
        "image_change_sets_the_restart_guard",
        instance(spec_=spec(image="registry.fly.io/claw:2.0"), status_=running_status(), generation=2),
        observed(machine("started"), volume()),
        action=None,
        events=("Restarting",),
        conditions={"Restarting": ("True", "ConfigChanged"), "Reconciling": ("True", "Restarting")},
        requeue_after=0,
    ),
    Case(
        "guest_change_sets_the_restart_guard",
        instance(spec_=spec(guest={"cpus": 4}), status_=running_status(), generation=2),
        observed(machine("started", guest=GuestView(cpu_kind="shared", cpus=2, memory_mb=3072)), volume()),
        conditions={"Restarting": ("True", "ConfigChanged")},
    ),
    Case(
        "env_or_secret_env_change_sets_the_restart_guard",
        instance(status_=running_status(), env_digest="sha256:env-2"),
        observed(machine("started"), volume()),
        conditions={"Restarting": ("True", "ConfigChanged")},
    ),
    Case(
        "unknown_machine_config_never_drifts",
        running(),
        observed(machine("started", image=None, env_digest=None), volume()),
        action=None,
        events=(),
        conditions={"Restarting": ("False", "NotRestarting")},
    ),
    Case(
        "restarted_at_change_sets_the_restart_guard",
        instance(spec_=spec(restartedAt="2026-11-24T08:00:00Z"), status_=running_status(), generation=2),
        observed(machine("started"), volume()),
        events=("Restarting",),
        conditions={"Restarting": ("True", "RestartRequested")},
    ),
    Case(
        "handled_restarted_at_does_not_restart_again",
        instance(
            spec_=spec(restartedAt="r1"),
            status_=running_status(handled_restarted_at="r1"),
        ),
        observed(machine("started"), volume()),
        action=None,
        events=(),
    ),
    # ------------------------------------------------------------------ resuming the guard
    Case(
        "restart_guard_resumes_with_restart_machine",
        in_flight("RestartRequested", restarted_at="r2"),
        observed(machine("started"), volume()),
        action=RestartMachine(machine_id=MACHINE, volume_id=VOLUME, reason=RestartReason.REQUESTED),
        logs=("restart_machine",),
    ),
    Case(
        "restart_guard_keeps_a_stopped_machine_from_being_counted",  # behaviour 6
        in_flight("ConfigChanged", stopped_checks=4),
        observed(machine("stopped"), volume()),
        action=RestartMachine(machine_id=MACHINE, volume_id=VOLUME, reason=RestartReason.CONFIG_CHANGED),
        phase=Phase.RUNNING,
        fields={"stopped_checks": 4, "restarting_at": GUARD_SET},
        events=(),
    ),
    Case(
        "desired_stopped_cancels_a_restart_in_flight",
        instance(
            spec_=spec(state="Stopped"),
            status_=in_flight("ConfigChanged").status,
        ),
        observed(machine("started"), volume()),
        conditions={"Restarting": ("False", "NotRestarting")},
        fields={"restarting_at": None},
    ),
    # ------------------------------------------------------------------ settled
    Case(
        "restart_succeeds",
        in_flight("RestartRequested", restarted_at="r2"),
        observed(machine("started"), volume()),
        result=ok(machine("started", instance_id="inst-2")),
        phase=Phase.RUNNING,
        events=("Restarted",),
        conditions={"Restarting": ("False", "RestartSucceeded"), "Ready": ("True", "Running")},
        fields={"restarting_at": None, "handled_restarted_at": "r2", "instance_id": "inst-2"},
    ),
    Case(
        "mount_repair_succeeds",  # behaviour 4
        in_flight("MountRepair"),
        observed(WRONG_MOUNT, volume()),
        decided=RestartMachine(
            machine_id=MACHINE,
            volume_id=VOLUME,
            reason=RestartReason.MOUNT_REPAIR,
            mount_repair="from vol-other:/data to vol1:/root",
        ),
        result=ok(machine("started")),
        events=("Restarted", "MountRepaired"),
        conditions={
            "MountRepaired": ("True", "MountRepaired"),
            "Restarting": ("False", "RestartSucceeded"),
            "Reconciling": ("False", "Reconciled"),
        },
        logs=("repair_mount",),
    ),
    Case(
        "restart_that_fails_reports_the_real_fly_state",  # behaviour 6
        in_flight("ConfigChanged"),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.UNAVAILABLE, 500, "update failed"), machine("stopped")),
        phase=Phase.STOPPED,
        events=("RestartFailed",),
        conditions={"Restarting": ("False", "RestartFailed"), "Ready": ("False", "Stopped")},
        fields={"restarting_at": None, "machine_state": "stopped"},
        logs=("restart_failed",),
        retry=True,
    ),
    Case(
        "restart_that_fails_without_a_machine_leaves_the_phase_to_the_next_check",
        in_flight("RestartRequested", restarted_at="r2"),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.UNAVAILABLE, 500, "update failed")),
        phase=Phase.RUNNING,
        fields={"restarting_at": None, "handled_restarted_at": None},
        retry=True,
    ),
    Case(
        "restart_whose_final_wait_timed_out_keeps_the_guard_and_is_not_redone",  # slow is not failed
        in_flight("RestartRequested", restarted_at="r2", instance_id="inst-1"),
        observed(machine("started"), volume()),
        result=failed(
            failure(FailureKind.TIMEOUT, 408, "wait timed out"), machine("starting", instance_id="inst-2")
        ),
        phase=Phase.RUNNING,
        events=(),
        conditions={"Restarting": ("True", "RestartRequested"), "Ready": ("False", "Restarting")},
        fields={"restarting_at": GUARD_SET, "machine_state": "starting", "instance_id": "inst-2"},
        logs=("restart_machine", "restart_still_starting"),
        retry=False,
    ),
    # ------------------------------------------------------------------ idempotent resume
    Case(
        "resumed_restart_on_a_new_started_version_is_a_success_without_any_fly_call",
        in_flight("RestartRequested", restarted_at="r2"),
        observed(machine("started", instance_id="inst-2"), volume()),
        action=None,
        phase=Phase.RUNNING,
        events=("Restarted",),
        conditions={
            "Restarting": ("False", "RestartSucceeded"),
            "Ready": ("True", "Running"),
            "Reconciling": ("False", "Reconciled"),
        },
        fields={
            "restarting_at": None,
            "restarting_instance_id": None,
            "handled_restarted_at": "r2",
            "instance_id": "inst-2",
        },
        logs=("restart_already_applied",),
        requeue_after=0,
    ),
    Case(
        "resumed_restart_already_applied_does_not_swallow_a_newer_request",
        instance(
            spec_=spec(restartedAt="r3"),
            status_=in_flight("RestartRequested", restarted_at="r2").status,
            generation=3,
        ),
        observed(machine("started", instance_id="inst-2"), volume()),
        action=None,
        events=("Restarted",),
        fields={"handled_restarted_at": "r2", "restarting_at": None},
        requeue_after=0,
    ),
    Case(
        "resumed_restart_on_a_new_version_still_booting_only_waits",
        in_flight("ConfigChanged"),
        observed(machine("starting", instance_id="inst-2"), volume()),
        action=RestartMachine(
            machine_id=MACHINE, volume_id=VOLUME, reason=RestartReason.CONFIG_CHANGED, resume_from="inst-1"
        ),
        conditions={"Restarting": ("True", "ConfigChanged")},
    ),
    Case(
        "resumed_restart_on_a_new_version_with_drift_left_records_that_version_first",
        instance(
            spec_=spec(image="registry.fly.io/claw:3.0"),
            status_=in_flight("ConfigChanged").status,
            generation=3,
        ),
        observed(machine("started", instance_id="inst-2"), volume()),
        action=None,
        fields={"restarting_instance_id": "inst-2", "restarting_at": GUARD_SET},
        requeue_after=0,
    ),
    Case(
        "resumed_restart_whose_new_version_failed_is_a_failed_restart_then_a_start",
        in_flight("RestartRequested", restarted_at="r2"),
        observed(machine("failed", instance_id="inst-2"), volume()),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        events=("RestartFailed", "Stopped"),
        conditions={"Restarting": ("False", "RestartFailed")},
        fields={"restarting_at": None},
    ),
    Case(
        "resumed_restart_never_booting_gives_up_after_the_starting_timeout",
        in_flight("RestartRequested", restarted_at="r2", restarting_at=T0 - timedelta(seconds=400)),
        observed(machine("starting", instance_id="inst-2"), volume()),
        events=("RestartFailed",),
        conditions={"Restarting": ("False", "RestartFailed")},
        fields={"restarting_at": None},
    ),
    Case(
        "restart_rejected_as_invalid_stalls",
        in_flight("ConfigChanged"),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.INVALID_CONFIG, 422, "bad guest"), machine("stopped")),
        conditions={"Stalled": ("True", "InvalidConfig"), "Restarting": ("False", "RestartFailed")},
        retry=False,
    ),
    Case(
        "mount_repair_that_fails",
        in_flight("MountRepair"),
        observed(WRONG_MOUNT, volume()),
        result=failed(failure(FailureKind.UNAVAILABLE, 503, "stop timed out")),
        events=("RestartFailed",),
        conditions={"MountRepaired": ("False", "RepairFailed"), "Restarting": ("False", "RestartFailed")},
    ),
    Case(
        "restart_of_a_vanished_machine_is_a_suspected_loss_not_a_lost_machine",  # loss on proof
        in_flight("ConfigChanged"),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.NOT_FOUND, 404)),
        events=("RestartFailed",),
        fields={"machine_id": MACHINE, "restarting_at": None, "machine_missing_since": T0},
        conditions={"Ready": ("Unknown", "NotFoundOnce")},
        requeue_after=0,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_restart(case: Case) -> None:
    check(case, run(case))


def test_mount_repaired_message_says_from_what_to_what() -> None:
    case = Case(
        "repair", in_flight("MountRepair"), observed(WRONG_MOUNT, volume()), result=ok(machine("started"))
    )
    decision = run(case)
    repaired = next(c for c in decision.status.conditions if c.type == "MountRepaired")
    assert repaired.message == "from vol-other:/data to vol1:/root"
    assert any(e.reason == "MountRepaired" and "vol-other:/data" in e.message for e in decision.events)


def test_mount_repaired_is_reset_by_a_new_generation() -> None:
    conds = conditions(1, MountRepaired=("True", "MountRepaired"))
    inst = instance(status_=running_status(conditions=conds), generation=2)
    decision = run(Case("new_generation", inst, observed(machine("started"), volume())))
    repaired = next(c for c in decision.status.conditions if c.type == "MountRepaired")
    assert (repaired.status.value, repaired.reason) == ("False", "NoRepair")


def test_mount_repaired_stays_true_within_its_generation() -> None:
    conds = conditions(1, MountRepaired=("True", "MountRepaired"))
    inst = instance(status_=running_status(conditions=conds), generation=1)
    decision = run(Case("same_generation", inst, observed(machine("started"), volume())))
    repaired = next(c for c in decision.status.conditions if c.type == "MountRepaired")
    assert repaired.status.value == "True"


def test_extra_mounts_are_not_drift() -> None:
    both = machine("started", mounts=(Mount(VOLUME, "/root"), Mount("vol9", "/cache")))
    decision = run(Case("extra", running(), observed(both, volume())))
    assert decision.action is None and decision.status.restarting_at is None
