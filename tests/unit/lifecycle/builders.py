"""Small builders that keep the decision tables readable, and the one checker they share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from claw_operator.api import (
    CONDITION_TYPES,
    ClawInstanceSpec,
    ClawInstanceStatus,
    Condition,
    ConditionStatus,
    Phase,
    find_condition,
)
from claw_operator.lifecycle import decide, settle
from claw_operator.lifecycle.desired import DesiredMachine
from claw_operator.lifecycle.model import (
    ActionResult,
    Decision,
    FailureKind,
    FlyFailure,
    GuestView,
    Instance,
    Lookup,
    MachineLookup,
    MachineView,
    Mount,
    Observation,
    Timings,
    VolumeLookup,
    VolumeView,
)

T_OLD = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TIMINGS = Timings()
UID = "5F3A9C1E-0B7D-4E2A-9C11-8D6F2B4A7E90"
IMAGE = "registry.fly.io/claw:1.0"
ENV = "sha256:env-1"
MACHINE = "m1"
VOLUME = "vol1"

UNSET: Any = object()
# A start begun moments ago (well within --starting-timeout), and one begun before it ran out.
JUST_NOW = T0 - timedelta(seconds=30)
LONG_AGO = T0 - TIMINGS.starting_timeout - timedelta(seconds=1)
# The instance's volume name (`lifecycle.volume_name(UID)`), by its value.
NAME = "claw_5f3a9c1e0b7d4e2a9c118d6f"
# A first 404 remembered long enough ago for a second one to prove the loss (lifecycle.loss).
MISSING_SINCE = T0 - TIMINGS.loss_grace - timedelta(seconds=1)


def spec(**overrides: Any) -> ClawInstanceSpec:
    data: dict[str, Any] = {"region": "iad", "image": IMAGE}
    data.update(overrides)
    return ClawInstanceSpec(**data)


def conditions(generation: int = 1, at: datetime = T_OLD, **values: tuple[str, str]) -> list[Condition]:
    """Conditions as a previous pass wrote them: `Ready=("True", "Running")`, ..."""
    return [
        Condition(
            type=type_,
            status=ConditionStatus(value[0]),
            reason=value[1],
            message="",
            last_transition_time=at,
            observed_generation=generation,
        )
        for type_, value in values.items()
    ]


def steady_running_conditions(generation: int = 1) -> list[Condition]:
    return conditions(
        generation,
        Ready=("True", "Running"),
        Reconciling=("False", "Reconciled"),
        Stalled=("False", "NotStalled"),
        StartFailed=("False", "Started"),
        MountRepaired=("False", "NoRepair"),
        Restarting=("False", "NotRestarting"),
    )


def status(**overrides: Any) -> ClawInstanceStatus:
    return ClawInstanceStatus(**overrides)


def running_status(**overrides: Any) -> ClawInstanceStatus:
    data: dict[str, Any] = {
        "phase": Phase.RUNNING,
        "observed_generation": 1,
        "app_name": "claw-app",
        "region": "iad",
        "machine_id": MACHINE,
        "volume_id": VOLUME,
        "machine_state": "started",
        "last_started_at": T_OLD,
        "conditions": steady_running_conditions(),
    }
    data.update(overrides)
    return ClawInstanceStatus(**data)


def instance(
    *,
    spec_: ClawInstanceSpec | None = None,
    status_: ClawInstanceStatus | None = None,
    **overrides: Any,
) -> Instance:
    data: dict[str, Any] = {
        "uid": UID,
        "namespace": "default",
        "name": "claw-a",
        "generation": 1,
        "spec": spec_ or spec(),
        "status": status_ if status_ is not None else status(),
        "app": "claw-app",
        "env_digest": ENV,
    }
    data.update(overrides)
    return Instance(**data)


def running(**status_overrides: Any) -> Instance:
    return instance(status_=running_status(**status_overrides))


def provisioned(**overrides: Any) -> Instance:
    """Its volume created, no machine yet."""
    data: dict[str, Any] = {"phase": Phase.PROVISIONED, "volume_id": VOLUME, "region": "iad"}
    return instance(status_=status(**{**data, **overrides}))


def with_machine(phase: Phase, **overrides: Any) -> Instance:
    """In `phase`, its volume and machine recorded."""
    data: dict[str, Any] = {"phase": phase, "machine_id": MACHINE, "volume_id": VOLUME, "region": "iad"}
    return instance(status_=status(**{**data, **overrides}))


def starting(**overrides: Any) -> Instance:
    """A start in flight since `JUST_NOW`."""
    return with_machine(Phase.STARTING, **{"starting_at": JUST_NOW, **overrides})


def stopped(**overrides: Any) -> Instance:
    return with_machine(Phase.STOPPED, **overrides)


def machine(
    state: str = "started",
    *,
    id: str = MACHINE,
    volume: str | None = VOLUME,
    path: str = "/root",
    image: str | None = IMAGE,
    env_digest: str | None = ENV,
    guest: GuestView | None = None,
    health_check: str | None = None,
    mounts: tuple[Mount, ...] | None = None,  # instead of the one of `volume` at `path`
    updated_at: datetime | None = None,
    **overrides: Any,
) -> MachineView:
    if mounts is None:
        mounts = (Mount(volume=volume, path=path),) if volume is not None else ()
    return MachineView(
        id=id,
        state=state,
        region=overrides.pop("region", "iad"),
        instance_id=overrides.pop("instance_id", "inst-1"),
        config=DesiredMachine(
            image=image,
            guest=guest or GuestView(cpu_kind="shared", cpus=2, memory_mb=3072),
            env_digest=env_digest,
            mounts=mounts,
            health_check=health_check,
        ),
        metadata={"claw_instance_uid": UID},
        updated_at=updated_at,
        **overrides,
    )


def reconfigured(seen: MachineView, **changes: Any) -> MachineView:
    """The machine with its config changed (`mounts=...`, `image=...`)."""
    assert seen.config is not None
    return replace(seen, config=replace(seen.config, **changes))


def volume(id: str = VOLUME, size_gb: int = 10, attached: str | None = None) -> VolumeView:
    return VolumeView(id=id, region="iad", size_gb=size_gb, attached_machine_id=attached)


def failure(
    kind: FailureKind, status: int | None = None, message: str | None = None, **kw: Any
) -> FlyFailure:
    retryable = kind in {
        FailureKind.CAPACITY,
        FailureKind.RATE_LIMITED,
        FailureKind.TIMEOUT,
        FailureKind.UNAVAILABLE,
    }
    return FlyFailure(
        kind=kind, retryable=retryable, message=message or f"fly said {kind}", status=status, **kw
    )


GONE = "gone"


def observed(
    machine: MachineView | FlyFailure | str | None = None,
    volume: VolumeView | FlyFailure | str | None = None,
    tagged: tuple[MachineView, ...] | FlyFailure | None = None,
    named: tuple[VolumeView, ...] | None = None,
) -> Observation:
    return Observation(
        machine=_machine_lookup(machine),
        volume=_volume_lookup(volume),
        tagged_machines=tagged if isinstance(tagged, tuple) else None,
        tagged_failure=tagged if isinstance(tagged, FlyFailure) else None,
        named_volumes=named,
    )


def _machine_lookup(value: MachineView | FlyFailure | str | None) -> MachineLookup:
    if value is None:
        return MachineLookup()
    if value == GONE:
        return MachineLookup(outcome=Lookup.GONE)
    if isinstance(value, FlyFailure):
        return MachineLookup(outcome=Lookup.ERROR, failure=value)
    assert isinstance(value, MachineView)
    return MachineLookup(outcome=Lookup.FOUND, machine=value)


def _volume_lookup(value: VolumeView | FlyFailure | str | None) -> VolumeLookup:
    if value is None:
        return VolumeLookup()
    if value == GONE:
        return VolumeLookup(outcome=Lookup.GONE)
    if isinstance(value, FlyFailure):
        return VolumeLookup(outcome=Lookup.ERROR, failure=value)
    assert isinstance(value, VolumeView)
    return VolumeLookup(outcome=Lookup.FOUND, volume=value)


def ok(machine_: MachineView | None = None, volume_: VolumeView | None = None) -> ActionResult:
    return ActionResult(machine=machine_, volume=volume_)


def failed(fly_failure: FlyFailure, machine_: MachineView | None = None) -> ActionResult:
    return ActionResult(failure=fly_failure, machine=machine_)


# ---------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Case:
    """One named row: a pass from (instance, observation), optionally settled with `result`.

    Every expectation left UNSET is not checked; `events` is the exact list of reasons.
    """

    id: str
    instance: Instance
    observed: Observation = field(default_factory=Observation)
    now: datetime = T0
    decided: Any = UNSET  # the action decide must choose (when `result` is given)
    result: ActionResult | None = None
    settled_at: datetime | None = None  # when the action returned (default: `now`)
    action: Any = UNSET
    phase: Any = UNSET
    events: tuple[str, ...] | Any = UNSET
    conditions: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    logs: tuple[str, ...] = ()
    requeue_after: Any = UNSET
    retry: Any = UNSET
    finalize: bool = False
    write_can_wait: Any = UNSET


def run(case: Case) -> Decision:
    decision = decide(case.instance, case.observed, case.now, TIMINGS)
    if case.result is None:
        return decision
    if case.decided is not UNSET:
        assert decision.action == case.decided, f"decide chose {decision.action!r}"
    assert decision.action is not None, "decide chose no action to settle"
    return settle(case.instance, decision, case.result, case.settled_at or case.now, TIMINGS)


def check(case: Case, decision: Decision) -> None:
    if case.action is not UNSET:
        assert decision.action == case.action
    if case.phase is not UNSET:
        assert decision.status.phase == case.phase
    if case.events is not UNSET:
        assert [e.reason for e in decision.events] == list(case.events)
    for type_, (want_status, want_reason) in case.conditions.items():
        got = find_condition(decision.status.conditions, type_)
        assert got is not None, f"{type_} missing"
        assert (got.status.value, got.reason) == (want_status, want_reason), f"{type_}: {got}"
    for name, want in case.fields.items():
        assert getattr(decision.status, name) == want, f"status.{name}"
    logged = [record.action for record in decision.logs]
    for action in case.logs:
        assert action in logged, f"log {action} not in {logged}"
    if case.requeue_after is not UNSET:
        assert decision.requeue_after == case.requeue_after
    if case.retry is not UNSET:
        assert decision.retry == case.retry
    assert decision.finalize == case.finalize
    if case.write_can_wait is not UNSET:
        assert decision.write_can_wait == case.write_can_wait
    check_invariants(case.instance, decision)


def check_invariants(inst: Instance, decision: Decision) -> None:
    """What every completed pass guarantees, whatever the case."""
    assert [c.type for c in decision.status.conditions] == list(CONDITION_TYPES)
    # A paused pass acts on nothing: it never claims the generation it was not applied to.
    acted = inst.status.observed_generation if inst.paused else inst.generation
    assert all(c.observed_generation == acted for c in decision.status.conditions)
    assert decision.status.observed_generation == acted
    assert decision.status.app_name == inst.app
    if inst.deleting and not inst.paused:
        assert decision.status.phase == Phase.DESTROYING
    if decision.write_can_wait:
        # A status whose write may wait for the next pass: that pass follows at once, it is
        # not a deletion, and it never holds back a new machineId (written before any wait).
        assert decision.requeue_after == 0 and not inst.deleting
        assert decision.status.machine_id == inst.status.machine_id


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)
