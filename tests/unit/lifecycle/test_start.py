"""Provisioning and starting, decided and settled: contract behaviours 1, 3, 5 and 7."""

from __future__ import annotations

from datetime import timedelta

import pytest

from claw_operator.api import Phase
from claw_operator.lifecycle.model import (
    AwaitState,
    CreateMachine,
    CreateVolume,
    FailureKind,
    StartMachine,
    StopMachine,
)
from tests.unit.lifecycle.builders import (
    GONE,
    JUST_NOW,
    LONG_AGO,
    MACHINE,
    MISSING_SINCE,
    NAME,
    T0,
    TIMINGS,
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
    provisioned,
    run,
    running,
    spec,
    starting,
    stopped,
    volume,
)

CREATE = CreateMachine(volume_id=VOLUME, region="iad")
START = StartMachine(machine_id=MACHINE, volume_id=VOLUME)
AWAIT = AwaitState(machine_id=MACHINE, state="started", instance_id="inst-1")

CASES = [
    Case(
        "volume_created_is_provisioned",
        instance(),
        observed(tagged=(), named=()),
        decided=CreateVolume(region="iad", size_gb=10, name=NAME),
        result=ok(volume_=volume("vol7")),
        phase=Phase.PROVISIONED,
        events=("VolumeCreated",),
        fields={"volume_id": "vol7", "region": "iad"},
        logs=("create_volume",),
        requeue_after=0,
        # Written with the machine create's status (one write less per instance): the volume
        # is found again by its name should that write never happen.
        write_can_wait=True,
    ),
    Case(
        "volume_create_capacity_failure_is_a_start_failure_retried",
        instance(),
        observed(tagged=(), named=()),
        result=failed(failure(FailureKind.CAPACITY, 412, "insufficient resources")),
        phase=Phase.STOPPED,
        events=("StartFailed",),
        conditions={"StartFailed": ("True", "InsufficientCapacity"), "Stalled": ("False", "NotStalled")},
        retry=True,
        requeue_after=5.0,
    ),
    Case(
        "machine_created_persists_its_id_before_waiting",
        provisioned(),
        observed(tagged=()),
        decided=CREATE,
        result=ok(machine("created")),
        phase=Phase.STARTING,
        events=("MachineCreated",),
        fields={"machine_id": MACHINE, "starting_at": T0, "machine_state": "created"},
        conditions={"Ready": ("False", "Starting"), "Reconciling": ("True", "Starting")},
        requeue_after=0,
        retry=False,
        write_can_wait=False,  # the contract: machineId is written before any wait
    ),
    Case(
        "machine_create_422_stops_at_once_and_stalls",  # behaviours 1 and 7
        provisioned(),
        observed(tagged=()),
        decided=CREATE,
        result=failed(failure(FailureKind.INVALID_CONFIG, 422, "invalid image")),
        phase=Phase.STOPPED,
        events=("StartFailed",),
        conditions={
            "StartFailed": ("True", "InvalidConfig"),
            "Stalled": ("True", "InvalidConfig"),
            "Ready": ("False", "StartFailed"),
            "Reconciling": ("False", "Stalled"),
        },
        fields={
            "last_start_error_message": "creating the machine failed: invalid image",
            "last_start_error_at": T0,
            "starting_at": None,
            "last_stopped_at": T0,
            "machine_id": None,
        },
        logs=("start_failed",),
        retry=False,
        requeue_after=None,
    ),
    Case(
        "machine_create_capacity_error_is_retried_with_backoff",  # behaviour 7
        instance(status_=provisioned().status, failures=3),
        observed(tagged=()),
        result=failed(failure(FailureKind.CAPACITY, 412, "no capacity")),
        phase=Phase.STOPPED,
        conditions={"StartFailed": ("True", "InsufficientCapacity"), "Stalled": ("False", "NotStalled")},
        retry=True,
        requeue_after=40.0,
    ),
    Case(
        "machine_create_5xx_is_a_fly_api_error_retried",
        provisioned(),
        observed(tagged=()),
        result=failed(failure(FailureKind.UNAVAILABLE, 503, "bad gateway")),
        conditions={"StartFailed": ("True", "FlyAPIError")},
        retry=True,
    ),
    Case(
        "machine_create_401_stalls_unauthorized",
        provisioned(),
        observed(tagged=()),
        result=failed(failure(FailureKind.FORBIDDEN, 403, "forbidden")),
        conditions={"Stalled": ("True", "Unauthorized"), "StartFailed": ("True", "FlyAPIError")},
        retry=False,
    ),
    Case(
        "machine_create_quota_stalls",
        provisioned(),
        observed(tagged=()),
        result=failed(failure(FailureKind.QUOTA, 403, "over the allowed quota")),
        conditions={"Stalled": ("True", "QuotaExceeded")},
        retry=False,
    ),
    Case(
        "machine_created_already_started_is_running",
        provisioned(),
        observed(tagged=()),
        result=ok(machine("started")),
        phase=Phase.RUNNING,
        events=("MachineCreated", "Started"),
        conditions={"Ready": ("True", "Running"), "StartFailed": ("False", "Started")},
    ),
    Case(
        "await_started_is_a_successful_start",  # behaviour 3
        starting(last_start_error_message="no capacity", last_start_error_at=JUST_NOW),
        observed(machine("created"), volume()),
        decided=AWAIT,
        result=ok(machine("started")),
        phase=Phase.RUNNING,
        events=("Started",),
        conditions={"StartFailed": ("False", "Started"), "Ready": ("True", "Running")},
        fields={
            "last_start_error_message": None,
            "last_start_error_at": None,
            "last_started_at": T0,
            "starting_at": None,
            "stopped_checks": 0,
        },
    ),
    Case(
        "await_timeout_stays_starting",
        starting(),
        observed(machine("created"), volume()),
        result=failed(failure(FailureKind.TIMEOUT, 408, "wait timed out"), machine("created")),
        phase=Phase.STARTING,
        events=(),
        conditions={"StartFailed": ("Unknown", "NotStarted")},
        fields={
            "last_start_error_message": "waiting for machine m1 to start (Fly state created): wait timed out"
        },
        retry=False,
        requeue_after=None,
    ),
    Case(
        "await_timeout_past_the_starting_timeout_stops",  # behaviour 5
        starting(starting_at=T0 - TIMINGS.starting_timeout + timedelta(seconds=10)),
        observed(machine("created"), volume()),
        settled_at=T0 + timedelta(seconds=11),
        result=failed(failure(FailureKind.TIMEOUT, 408, "wait timed out"), machine("created")),
        phase=Phase.STOPPED,
        events=("StartTimeout",),
        conditions={"Stalled": ("True", "StartTimeout"), "StartFailed": ("True", "StartTimeout")},
    ),
    Case(
        "await_failed_boot_is_a_start_failure",
        starting(),
        observed(machine("starting"), volume()),
        result=ok(machine("failed")),
        phase=Phase.STOPPED,
        events=("StartFailed",),
        conditions={"StartFailed": ("True", "StartFailed")},
        retry=True,
    ),
    Case(
        "await_404_is_a_suspected_loss_read_again",
        starting(),
        observed(machine("created"), volume()),
        result=failed(failure(FailureKind.NOT_FOUND, 404)),
        phase=Phase.STARTING,
        events=(),
        fields={"machine_id": MACHINE, "machine_missing_since": T0},
        logs=("machine_not_found_once",),
        requeue_after=0,
    ),
    Case(
        "start_machine_launches_and_waits_next_pass",
        stopped(restarting_at=None),
        observed(machine("stopped"), volume()),
        decided=START,
        result=ok(machine("starting")),
        phase=Phase.STARTING,
        fields={"starting_at": T0},
        requeue_after=0,
        logs=("start_machine",),
    ),
    Case(
        "start_machine_in_a_failing_streak_counts_toward_the_backoff",
        instance(
            status_=stopped(conditions=conditions(StartFailed=("True", "StartFailed"))).status,
        ),
        observed(machine("failed"), volume()),
        decided=START,
        result=ok(machine("starting")),
        phase=Phase.STARTING,
        retry=True,
        requeue_after=0,
    ),
    Case(
        "start_machine_failure_is_the_fast_path",
        stopped(),
        observed(machine("stopped"), volume()),
        result=failed(failure(FailureKind.CAPACITY, 412, "no capacity")),
        phase=Phase.STOPPED,
        events=("StartFailed",),
        fields={"last_start_error_message": "starting machine m1 failed: no capacity"},
        retry=True,
    ),
    Case(
        "start_machine_404_is_a_suspected_loss_read_again",
        stopped(),
        observed(machine("stopped"), volume()),
        result=failed(failure(FailureKind.NOT_FOUND, 404)),
        events=(),
        fields={"machine_id": MACHINE, "machine_missing_since": T0},
        requeue_after=0,
    ),
    Case(
        "stop_machine_ok_is_stopped_and_ready",
        instance(spec_=spec(state="Stopped"), status_=running().status),
        observed(machine("started"), volume()),
        decided=StopMachine(machine_id=MACHINE),
        result=ok(machine("stopped")),
        phase=Phase.STOPPED,
        events=("Stopped",),
        conditions={"Ready": ("True", "Stopped")},
        fields={"last_stopped_at": T0, "machine_state": "stopped"},
    ),
    Case(
        "stop_machine_404_counts_as_stopped",
        instance(spec_=spec(state="Stopped"), status_=running().status),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.NOT_FOUND, 404)),
        phase=Phase.STOPPED,
    ),
    Case(
        "stop_machine_failure_writes_no_stop",
        instance(spec_=spec(state="Stopped"), status_=running().status),
        observed(machine("started"), volume()),
        result=failed(failure(FailureKind.UNAVAILABLE, 500)),
        phase=Phase.RUNNING,
        events=(),
        conditions={"Ready": ("False", "Stopping")},
        retry=True,
    ),
    Case(
        "back_to_running_starts_the_stopped_machine",
        stopped(),
        observed(machine("stopped"), volume()),
        action=START,
        conditions={"Ready": ("False", "Stopped"), "Reconciling": ("True", "Starting")},
    ),
    Case(
        "lost_machine_settled_on_start_leaves_the_volume",
        stopped(machine_missing_since=MISSING_SINCE),
        observed(GONE, volume(), tagged=()),
        action=None,
        fields={"volume_id": VOLUME, "machine_id": None},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_start(case: Case) -> None:
    check(case, run(case))


def test_start_timeout_event_carries_the_last_start_error() -> None:
    inst = starting(starting_at=LONG_AGO, machine_id=None, last_start_error_message="no capacity in iad")
    decision = run(Case("timeout", inst, observed(tagged=())))
    (event,) = decision.events
    assert event.type == "Warning"
    assert "no capacity in iad" in event.message
    (log,) = [record for record in decision.logs if record.action == "starting_timeout"]
    assert log.details["last_start_error"] == "no capacity in iad"


def test_starting_timeout_is_strict() -> None:
    """KiloClaw compares now - startingAt > timeout: exactly at the limit is not yet a timeout."""
    inst = starting(starting_at=T0 - TIMINGS.starting_timeout)
    decision = run(Case("at_limit", inst, observed(machine("created"), volume())))
    assert decision.status.phase == Phase.STARTING
    assert decision.action == AWAIT


def test_start_timeout_after_a_stuck_boot_reports_the_wait_error() -> None:
    """A machine stuck in created: the StartTimeout Event carries the last wait's error."""
    inst = starting(starting_at=T0 - TIMINGS.starting_timeout + timedelta(seconds=10))
    case = Case(
        "stuck",
        inst,
        observed(machine("created"), volume()),
        result=failed(failure(FailureKind.TIMEOUT, 408, "wait timed out"), machine("created")),
        settled_at=T0 + timedelta(seconds=11),
    )
    decision = run(case)
    (event,) = decision.events
    assert event.reason == "StartTimeout"
    assert (
        "last start error: waiting for machine m1 to start (Fly state created): wait timed out"
        in event.message
    )


def test_await_carries_the_machine_it_was_decided_from() -> None:
    """`kube` answers a successful wait from this view plus the wait's state and version, with
    no GET; what the action *is* (its equality) does not depend on it."""
    seen = machine("created")
    decision = run(Case("await", starting(), observed(seen, volume())))
    assert decision.action == AWAIT
    assert isinstance(decision.action, AwaitState) and decision.action.seen == seen
