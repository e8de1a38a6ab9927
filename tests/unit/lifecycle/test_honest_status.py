"""Honest status under compound paths (issue 11): each row pins a defect found on the wave-1
decisions — a restart run twice, a repair not reported, a slow boot called a failure, a frozen
observation behind a missing Secret, a paused object claiming to be current, a restart request
waiting for the stopped-check threshold."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from claw_operator.api import Phase, find_condition
from claw_operator.lifecycle.model import (
    AwaitState,
    CreateVolume,
    FailureKind,
    RestartMachine,
    RestartReason,
    StartMachine,
)
from tests.unit.lifecycle.builders import (
    GONE,
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
    running_status,
    spec,
    status,
    volume,
)

SECRET_MISSING = "Secret default/creds has no key token"
# What the gateway reports after an operator restart, for an instance older than the process.
UNSETTLED_MACHINES = failure(
    FailureKind.UNAVAILABLE,
    None,
    "no machine of x listed yet, 24.5s before a listing can prove that no machine create whose "
    "answer was lost happened",
    retry_after=24.5,
)
UNSETTLED_VOLUMES = failure(
    FailureKind.UNAVAILABLE,
    None,
    "no volume named claw_x listed yet, 24.5s before a listing can prove that no volume create "
    "whose answer was lost happened",
    retry_after=24.5,
)
WRONG_MOUNT_STOPPED = machine("stopped", volume="vol-other", path="/data")
REPAIR = "from vol-other:/data to vol1:/root"


def stopped_status(**overrides: object) -> object:
    return running_status(
        **{
            "phase": Phase.STOPPED,
            "machine_state": "stopped",
            "conditions": conditions(
                Ready=("False", "Stopped"),
                StartFailed=("False", "Started"),
                Restarting=("False", "NotRestarting"),
            ),
            **overrides,
        }
    )


CASES = [
    # ------------------------------------------------------------ 2: every repair is reported
    Case(
        "start_of_a_stopped_machine_on_the_wrong_volume_carries_the_repair",
        instance(status_=stopped_status()),
        observed(WRONG_MOUNT_STOPPED, volume()),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME, mount_repair=REPAIR),
    ),
    Case(
        "start_that_repaired_the_mount_reports_mount_repaired",
        instance(status_=stopped_status()),
        observed(WRONG_MOUNT_STOPPED, volume()),
        result=ok(machine("started")),
        phase=Phase.RUNNING,
        events=("MountRepaired", "Started"),
        conditions={"MountRepaired": ("True", "MountRepaired"), "Ready": ("True", "Running")},
        logs=("repair_mount",),
    ),
    Case(
        "start_of_a_failed_machine_on_the_wrong_volume_reports_the_repair",
        instance(status_=running_status()),
        observed(machine("failed", volume="vol-other", path="/data"), volume()),
        result=ok(machine("started")),
        events=("Stopped", "MountRepaired", "Started"),
        conditions={"MountRepaired": ("True", "MountRepaired")},
    ),
    Case(
        "start_whose_machine_still_mounts_the_wrong_volume_reports_no_repair",
        instance(status_=stopped_status()),
        observed(WRONG_MOUNT_STOPPED, volume()),
        result=ok(machine("started", volume="vol-other", path="/data")),
        conditions={"MountRepaired": ("False", "NoRepair")},
    ),
    Case(
        "a_mount_drifted_during_a_requested_restart_is_recorded_in_the_guard_before_acting",
        instance(
            spec_=spec(restartedAt="r2"),
            status_=running_status(
                restarting_at=T0 - timedelta(seconds=1),
                restarting_instance_id="inst-1",
                conditions=conditions(Restarting=("True", "RestartRequested")),
            ),
        ),
        observed(machine("started", volume="vol-other", path="/data"), volume()),
        action=None,
        conditions={"Restarting": ("True", "MountRepair"), "Reconciling": ("True", "RepairingMount")},
        requeue_after=0,
    ),
    Case(
        "requested_restart_that_also_fixes_a_drifted_mount_reports_the_repair",
        instance(
            spec_=spec(restartedAt="r2"),
            status_=running_status(
                restarting_at=T0 - timedelta(seconds=1),
                restarting_instance_id="inst-1",
                restarting_for="r2",
                conditions=conditions(Restarting=("True", "MountRepair")),
            ),
        ),
        observed(machine("started", volume="vol-other", path="/data"), volume()),
        decided=RestartMachine(
            machine_id=MACHINE, volume_id=VOLUME, reason=RestartReason.MOUNT_REPAIR, mount_repair=REPAIR
        ),
        result=ok(machine("started", instance_id="inst-2")),
        events=("Restarted", "MountRepaired"),
        conditions={"MountRepaired": ("True", "MountRepaired"), "Restarting": ("False", "RestartSucceeded")},
        fields={"handled_restarted_at": "r2"},
        logs=("repair_mount",),
    ),
    # ------------------------------------------------------------ 3: slow is not failed
    Case(
        "start_that_outlasts_the_fly_wait_stays_starting_with_its_clock",
        instance(status_=stopped_status()),
        observed(machine("stopped"), volume()),
        result=failed(failure(FailureKind.TIMEOUT, None, "wait timed out"), machine("starting")),
        phase=Phase.STARTING,
        events=(),
        conditions={"StartFailed": ("False", "Started"), "Ready": ("False", "Starting")},
        fields={"starting_at": T0},
        logs=("start_machine_slow",),
    ),
    Case(
        "a_start_in_flight_keeps_its_starting_at_when_the_wait_times_out_again",
        instance(status_=stopped_status(phase=Phase.STARTING, starting_at=T0 - timedelta(seconds=90))),
        observed(machine("stopped"), volume()),
        decided=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        result=failed(failure(FailureKind.TIMEOUT, None, "wait timed out"), machine("starting")),
        phase=Phase.STARTING,
        fields={"starting_at": T0 - timedelta(seconds=90)},
    ),
    Case(
        "a_start_in_flight_still_booting_is_awaited_not_restarted",
        instance(status_=stopped_status(phase=Phase.STARTING, starting_at=T0 - timedelta(seconds=90))),
        observed(machine("starting"), volume()),
        action=AwaitState(machine_id=MACHINE, state="started", instance_id="inst-1"),
    ),
    Case(
        "only_the_starting_timeout_ends_a_slow_start",
        instance(status_=stopped_status(phase=Phase.STARTING, starting_at=T0 - timedelta(seconds=301))),
        observed(machine("starting"), volume()),
        phase=Phase.STOPPED,
        events=("StartTimeout",),
        conditions={"StartFailed": ("True", "StartTimeout")},
    ),
    # ------------------------------------------------------------ 4: observation never freezes
    Case(
        "missing_secret_still_reports_a_lost_machine",
        instance(
            status_=running_status(machine_missing_since=T0 - timedelta(seconds=60)),
            secret_error=SECRET_MISSING,
            env_digest=None,
        ),
        observed(GONE, volume(), tagged=()),
        events=("MachineLost",),
        conditions={"Stalled": ("True", "SecretNotFound")},
        fields={"machine_id": None},
    ),
    Case(
        "missing_secret_still_reports_a_failed_machine_but_does_not_start_it",
        instance(status_=running_status(), secret_error=SECRET_MISSING, env_digest=None),
        observed(machine("failed"), volume()),
        action=None,
        phase=Phase.STOPPED,
        events=("Stopped",),
        fields={"machine_state": "failed"},
        conditions={"Stalled": ("True", "SecretNotFound")},
    ),
    Case(
        "missing_secret_creates_no_machine",
        instance(status_=status(volume_id=VOLUME, phase=Phase.PROVISIONED), secret_error=SECRET_MISSING),
        observed(tagged=()),
        action=None,
        conditions={"Stalled": ("True", "SecretNotFound")},
    ),
    Case(
        "missing_secret_still_stops_a_machine_desired_stopped",
        instance(spec_=spec(state="Stopped"), status_=running_status(), secret_error=SECRET_MISSING),
        observed(machine("started"), volume()),
        conditions={"Stalled": ("True", "SecretNotFound")},
    ),
    # ------------------------------------------------------------ 5: paused is not current
    Case(
        "paused_spec_edit_does_not_advance_observed_generation",
        instance(
            spec_=spec(image="registry.fly.io/claw:2.0"), status_=running_status(), generation=2, paused=True
        ),
        observed(),
        action=None,
        fields={"observed_generation": 1},
        conditions={"Reconciling": ("False", "Paused")},
    ),
    # ------------------------------------------------------------ 6: a restart request on a stopped machine
    Case(
        "restart_requested_while_fly_shows_the_machine_stopped_starts_it_now",
        instance(spec_=spec(restartedAt="r2"), status_=running_status(machine_state="stopped"), generation=2),
        observed(machine("stopped"), volume()),
        action=StartMachine(machine_id=MACHINE, volume_id=VOLUME),
        logs=("start_for_pending_change",),
    ),
    Case(
        "config_change_while_fly_shows_the_machine_stopped_starts_it_with_the_new_config",
        instance(spec_=spec(image="registry.fly.io/claw:2.0"), status_=running_status(), generation=2),
        observed(machine("stopped"), volume()),
        result=ok(machine("started", image="registry.fly.io/claw:2.0", instance_id="inst-2")),
        phase=Phase.RUNNING,
        conditions={"Ready": ("True", "Running")},
    ),
    Case(
        "no_pending_change_keeps_the_stopped_check_threshold",
        instance(status_=running_status()),
        observed(machine("stopped"), volume()),
        action=None,
        fields={"stopped_checks": 1},
    ),
    # ------------------------------------- 8: a pass that may not create yet still says why
    # (the chaos run's "no status yet" band: after each kill -9, instances older than the new
    # process waited listing_settle with Reconciling=True/Provisioning "creating ..." or none)
    Case(
        "first_pass_on_an_unsettled_machine_listing_writes_why_it_waits",
        instance(),
        observed(tagged=UNSETTLED_MACHINES),
        action=None,
        phase=None,
        events=(),
        conditions={
            "Reconciling": ("True", "ListingInconclusive"),
            "Ready": ("False", "Provisioning"),
            "Stalled": ("False", "NotStalled"),
        },
        retry=True,
        requeue_after=24.5,
    ),
    Case(
        "first_pass_on_a_failed_machine_listing_writes_why_it_waits",
        instance(),
        observed(tagged=failure(FailureKind.UNAVAILABLE, 503, "list failed", retry_after=3.0)),
        action=None,
        conditions={"Reconciling": ("True", "ListingInconclusive")},
        retry=True,
    ),
    Case(
        "first_pass_on_an_unsettled_volume_listing_writes_why_it_waits",
        instance(),
        replace(observed(tagged=()), named_volumes=None, named_failure=UNSETTLED_VOLUMES),
        action=None,
        phase=None,
        conditions={"Reconciling": ("True", "ListingInconclusive"), "Ready": ("False", "Provisioning")},
        logs=("volume_listing_inconclusive",),
        retry=True,
        requeue_after=24.5,
    ),
    Case(
        "a_lost_machine_id_on_an_unsettled_listing_says_why_no_machine_is_created",
        instance(status_=status(phase=Phase.PROVISIONED, volume_id=VOLUME, region="iad")),
        observed(tagged=UNSETTLED_MACHINES),
        action=None,
        phase=Phase.PROVISIONED,
        conditions={"Reconciling": ("True", "ListingInconclusive")},
        retry=True,
    ),
    Case(
        "a_stall_still_wins_over_an_unsettled_listing",
        instance(secret_error=SECRET_MISSING),
        observed(tagged=UNSETTLED_MACHINES),
        action=None,
        conditions={"Stalled": ("True", "SecretNotFound"), "Reconciling": ("False", "Stalled")},
        retry=True,
    ),
    Case(
        "a_conclusive_listing_goes_back_to_provisioning",
        instance(
            status_=status(
                observed_generation=1,
                conditions=conditions(Reconciling=("True", "ListingInconclusive")),
            )
        ),
        observed(tagged=(), named=()),
        action=CreateVolume(region="iad", size_gb=10, name="claw_5f3a9c1e0b7d4e2a9c118d6f"),
        conditions={"Reconciling": ("True", "Provisioning")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_honest_status(case: Case) -> None:
    check(case, run(case))


def test_the_wait_for_a_listing_names_the_listing_and_the_time_left() -> None:
    for id_, listing in (
        ("first_pass_on_an_unsettled_machine_listing_writes_why_it_waits", "machines by UID tag"),
        ("first_pass_on_an_unsettled_volume_listing_writes_why_it_waits", "volumes by name"),
    ):
        decision = run(CASES[[c.id for c in CASES].index(id_)])
        reconciling = find_condition(decision.status.conditions, "Reconciling")
        assert reconciling is not None
        assert listing in reconciling.message and "24.5s before a listing" in reconciling.message


def test_missing_secret_stop_is_still_sent() -> None:
    case = CASES[[c.id for c in CASES].index("missing_secret_still_stops_a_machine_desired_stopped")]
    decision = run(case)
    assert decision.action is not None and type(decision.action).__name__ == "StopMachine"


def test_only_the_first_action_of_an_instance_without_status_may_write_while_it_runs() -> None:
    """`write_if_slow`: a new instance's first action (a volume create, resolved by listing for
    up to 30 s when its answer is lost) gets its status written meanwhile; an instance that
    has a status, a pass without an action, and a settled pass do not."""
    new = instance()
    first = run(Case("first", new, observed(tagged=(), named=())))
    assert type(first.action).__name__ == "CreateVolume" and first.write_if_slow
    assert find_condition(first.status.conditions, "Reconciling") is not None
    settled = run(Case("settled", new, observed(tagged=(), named=()), result=ok(volume())))
    assert not settled.write_if_slow
    waiting = run(Case("waiting", new, observed(tagged=UNSETTLED_MACHINES)))
    assert waiting.action is None and not waiting.write_if_slow
    known = instance(
        status_=status(observed_generation=1, conditions=conditions(Ready=("False", "Provisioning")))
    )
    again = run(Case("again", known, observed(tagged=(), named=())))
    assert again.action is not None and not again.write_if_slow
