"""Whole lifecycles, pass after pass, against a few lines of fake Fly: the decisions compose.

The fake executes each action the way Fly would (ids, states, mounts) and can be told to fail
an action kind a number of times. A "reconcile" runs passes while they ask for an immediate
requeue, as `kube` does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from claw_operator.api import DestroyOp, Phase, find_condition
from claw_operator.lifecycle import decide, settle, volume_name
from claw_operator.lifecycle.desired import DesiredMachine
from claw_operator.lifecycle.model import (
    Action,
    ActionResult,
    AwaitState,
    CreateMachine,
    CreateVolume,
    Decision,
    DeleteStrandedVolume,
    DeleteVolume,
    DestroyMachine,
    DestroyStrandedMachine,
    ExtendVolume,
    FailureKind,
    FlyFailure,
    GuestView,
    Instance,
    Lookup,
    MachineLookup,
    MachineView,
    Mount,
    Observation,
    ReplaceVolume,
    RestartMachine,
    StartMachine,
    StopMachine,
    VolumeLookup,
    VolumeView,
)
from tests.unit.lifecycle.builders import ENV, T0, TIMINGS, failure, instance, reconfigured

NOT_FOUND = FlyFailure(kind=FailureKind.NOT_FOUND, retryable=False, message="not found", status=404)


@dataclass
class FakeFly:
    machines: dict[str, MachineView] = field(default_factory=dict)
    volumes: dict[str, VolumeView] = field(default_factory=dict)
    faults: dict[type, list[FlyFailure]] = field(default_factory=lambda: defaultdict(list))
    boots_to: str = "started"
    # GETs of a machine answered 404 right after its create (Fly's eventual consistency).
    not_found_flickers: int = 0
    calls: list[str] = field(default_factory=list)
    volume_names: dict[str, str] = field(default_factory=dict)
    _ids: int = 0

    def _id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def observe(self, inst: Instance) -> Observation:
        status = inst.status
        if inst.paused:
            return Observation()
        machine = MachineLookup()
        if status.machine_id is not None and self.not_found_flickers > 0:
            self.not_found_flickers -= 1
            machine = MachineLookup(Lookup.GONE)
        elif status.machine_id is not None:
            found = self.machines.get(status.machine_id)
            machine = MachineLookup(Lookup.FOUND, found) if found else MachineLookup(Lookup.GONE)
        volume = VolumeLookup()
        if status.volume_id is not None:
            vol = self.volumes.get(status.volume_id)
            volume = VolumeLookup(Lookup.FOUND, vol) if vol else VolumeLookup(Lookup.GONE)
        tagged = None
        # Like the gateway: a 404 on the recorded object brings its listing (proof of loss).
        if status.machine_id is None or machine.outcome == Lookup.GONE:
            tagged = tuple(
                m for m in self.machines.values() if m.metadata.get("claw_instance_uid") == inst.uid
            )
        named = None
        if (
            status.volume_id is None
            or inst.deleting
            or volume.outcome == Lookup.GONE
            or status.stranded_volume_id is not None
        ):
            wanted = volume_name(inst.uid)
            named = tuple(v for v in self.volumes.values() if self.volume_names.get(v.id) == wanted)
        return Observation(machine=machine, volume=volume, tagged_machines=tagged, named_volumes=named)

    def execute(self, action: Action, inst: Instance) -> ActionResult:
        self.calls.append(type(action).__name__)
        if self.faults[type(action)]:
            return ActionResult(failure=self.faults[type(action)].pop(0))
        if isinstance(action, CreateVolume):
            vol = VolumeView(id=self._id("vol"), region=action.region, size_gb=action.size_gb)
            self.volumes[vol.id] = vol
            self.volume_names[vol.id] = action.name
            return ActionResult(volume=vol)
        if isinstance(action, ExtendVolume):
            self.volumes[action.volume_id] = replace(self.volumes[action.volume_id], size_gb=action.size_gb)
            return ActionResult(volume=self.volumes[action.volume_id])
        if isinstance(action, CreateMachine):
            m = MachineView(
                id=self._id("m"),
                state="created",
                region=action.region,
                config=DesiredMachine(
                    image=inst.spec.image,
                    guest=GuestView(
                        str(inst.spec.guest.cpu_kind), inst.spec.guest.cpus, inst.spec.guest.memory_mb
                    ),
                    env_digest=inst.env_digest,
                    mounts=(Mount(action.volume_id, inst.spec.volume.mount_path),),
                    health_check=None,
                ),
                metadata={"claw_instance_uid": inst.uid},
            )
            self.machines[m.id] = m
            return ActionResult(machine=m)
        if isinstance(action, StartMachine | RestartMachine):
            if action.machine_id not in self.machines:
                return ActionResult(failure=NOT_FOUND)
            seen = self.machines[action.machine_id]
            m = replace(
                seen,
                state="starting" if isinstance(action, StartMachine) else self.boots_to,
                config=DesiredMachine(
                    image=inst.spec.image,
                    guest=seen.guest,
                    env_digest=inst.env_digest,
                    mounts=(Mount(action.volume_id, inst.spec.volume.mount_path),),
                    health_check=seen.health_check,
                ),
            )
            self.machines[m.id] = m
            return ActionResult(machine=m)
        if isinstance(action, AwaitState):
            if action.machine_id not in self.machines:
                return ActionResult(failure=NOT_FOUND)
            m = replace(self.machines[action.machine_id], state=self.boots_to)
            self.machines[m.id] = m
            if m.state != action.state:
                return ActionResult(failure=failure(FailureKind.TIMEOUT, 408), machine=m)
            return ActionResult(machine=m)
        if isinstance(action, StopMachine):
            self.machines[action.machine_id] = replace(self.machines[action.machine_id], state="stopped")
            return ActionResult(machine=self.machines[action.machine_id])
        if isinstance(action, DestroyMachine):
            gone = self.machines.pop(action.machine_id, None)
            return ActionResult() if gone else ActionResult(failure=NOT_FOUND)
        if isinstance(action, DeleteVolume | DeleteStrandedVolume):
            vol_gone = self.volumes.pop(action.volume_id, None)
            return ActionResult() if vol_gone else ActionResult(failure=NOT_FOUND)
        if isinstance(action, DestroyStrandedMachine):
            gone = self.machines.pop(action.machine_id, None)
            return ActionResult() if gone else ActionResult(failure=NOT_FOUND)
        if isinstance(action, ReplaceVolume):
            size = self.volumes[action.stranded_volume_id].size_gb if action.fork else action.size_gb
            vol = VolumeView(id=self._id("vol"), region=action.region, size_gb=size)
            self.volumes[vol.id] = vol
            self.volume_names[vol.id] = action.name
            return ActionResult(volume=vol)
        raise AssertionError(action)


@dataclass
class World:
    inst: Instance
    fly: FakeFly = field(default_factory=FakeFly)
    now: datetime = T0
    decisions: list[Decision] = field(default_factory=list)
    failures: int = 0

    def step(self, *, lose_the_write: bool = False) -> Decision:
        """One pass: observe, decide, execute, settle, write (or crash before writing)."""
        inst = replace(self.inst, failures=self.failures)
        decision = decide(inst, self.fly.observe(inst), self.now, TIMINGS)
        if decision.action is not None:
            result = self.fly.execute(decision.action, inst)
            decision = settle(inst, decision, result, self.now, TIMINGS)
        if lose_the_write:
            return decision
        self.inst = replace(self.inst, status=decision.status)
        self.failures = self.failures + 1 if decision.retry else 0
        self.decisions.append(decision)
        self.now += timedelta(seconds=1)
        return decision

    def reconcile(self, max_passes: int = 12) -> Decision:
        for _ in range(max_passes):
            decision = self.step()
            if decision.finalize or decision.requeue_after != 0:
                return decision
        raise AssertionError("the decisions never settled")

    def edit(self, **spec_changes: object) -> None:
        self.inst = replace(
            self.inst,
            spec=self.inst.spec.model_copy(update=spec_changes),
            generation=self.inst.generation + 1,
        )

    def events(self) -> list[str]:
        return [e.reason for d in self.decisions for e in d.events]

    def condition(self, type_: str) -> tuple[str, str]:
        c = find_condition(self.inst.status.conditions, type_)
        assert c is not None
        return c.status.value, c.reason


def test_create_reaches_running_with_one_volume_and_one_machine() -> None:
    world = World(instance())
    world.reconcile()
    status = world.inst.status
    assert status.phase == Phase.RUNNING
    assert world.condition("Ready") == ("True", "Running")
    assert len(world.fly.volumes) == 1 and len(world.fly.machines) == 1
    (m,) = world.fly.machines.values()
    assert status.machine_id == m.id and m.mounts == (Mount(status.volume_id or "", "/root"),)
    assert world.events() == ["VolumeCreated", "MachineCreated", "Started"]


def test_invalid_config_stops_at_once_then_a_spec_fix_runs() -> None:
    world = World(instance())
    world.fly.faults[CreateMachine].append(failure(FailureKind.INVALID_CONFIG, 422, "bad image"))
    world.reconcile()
    assert world.inst.status.phase == Phase.STOPPED
    assert world.condition("Stalled") == ("True", "InvalidConfig")
    assert world.inst.status.last_start_error_message is not None
    calls = len(world.fly.calls)
    world.now += timedelta(minutes=30)
    world.reconcile()
    assert len(world.fly.calls) == calls, "a stalled instance made a Fly call"
    world.edit(image="registry.fly.io/claw:fixed")
    world.reconcile()
    assert world.inst.status.phase == Phase.RUNNING
    assert world.condition("StartFailed") == ("False", "Started")
    assert world.condition("Stalled") == ("False", "NotStalled")
    assert world.inst.status.last_start_error_message is None


def test_capacity_error_is_retried_with_backoff_then_succeeds() -> None:
    world = World(instance())
    world.fly.faults[CreateMachine].append(failure(FailureKind.CAPACITY, 412, "no capacity"))
    last = world.reconcile()
    assert last.retry and last.requeue_after == TIMINGS.retry_base.total_seconds()
    assert world.condition("StartFailed") == ("True", "InsufficientCapacity")
    # The volume's host is full: once the backoff passed, the volume (no data yet) is replaced.
    old_volume = world.inst.status.volume_id
    world.now += TIMINGS.retry_base
    world.reconcile()
    world.reconcile()
    assert world.inst.status.phase == Phase.RUNNING
    assert world.condition("StartFailed") == ("False", "Started")
    assert len(world.fly.machines) == 1
    assert list(world.fly.volumes) == [world.inst.status.volume_id] != [old_volume]
    assert world.inst.status.stranded_volume_id is None


def test_machine_stuck_in_created_times_out_with_the_last_start_error() -> None:
    world = World(instance())
    world.fly.boots_to = "created"
    world.fly.faults[StartMachine].append(failure(FailureKind.CAPACITY, 412, "no capacity"))
    world.reconcile()
    assert world.inst.status.phase == Phase.STARTING
    world.now += TIMINGS.starting_timeout + timedelta(seconds=1)
    world.reconcile()
    assert world.inst.status.phase == Phase.STOPPED
    assert world.condition("Stalled") == ("True", "StartTimeout")


def test_machine_stopped_behind_our_back_is_started_again_after_five_checks() -> None:
    world = World(instance())
    world.reconcile()
    machine_id = world.inst.status.machine_id or ""
    world.fly.machines[machine_id] = replace(world.fly.machines[machine_id], state="stopped")
    for check in range(1, 5):
        world.reconcile()
        assert world.inst.status.phase == Phase.RUNNING and world.inst.status.stopped_checks == check
    world.reconcile()
    assert world.inst.status.phase == Phase.RUNNING
    assert world.fly.machines[machine_id].state == "started"
    assert world.events()[-2:] == ["Stopped", "Started"]


def test_machine_destroyed_behind_our_back_is_recreated_on_the_volume() -> None:
    world = World(instance())
    world.reconcile()
    volume_id = world.inst.status.volume_id
    world.fly.machines.clear()
    world.reconcile()  # the first 404: looked at again after the grace period
    assert world.inst.status.machine_missing_since is not None and "MachineLost" not in world.events()
    world.now += TIMINGS.loss_grace
    world.reconcile()
    assert world.inst.status.phase == Phase.RUNNING
    (m,) = world.fly.machines.values()
    assert m.mounts[0].volume == volume_id and world.inst.status.machine_id == m.id
    assert "MachineLost" in world.events()


def test_restart_never_reports_stopped_and_ends_succeeded() -> None:
    world = World(instance())
    world.reconcile()
    world.edit(restarted_at="2026-11-24T09:00:00Z")
    phases = []
    for _ in range(3):
        world.reconcile()
        phases.append(world.inst.status.phase)
    assert Phase.STOPPED not in phases
    assert world.condition("Restarting") == ("False", "RestartSucceeded")
    assert world.inst.status.handled_restarted_at == "2026-11-24T09:00:00Z"
    assert world.events().count("Restarted") == 1


def test_mount_drift_is_repaired_by_the_periodic_check() -> None:
    world = World(instance())
    world.reconcile()
    machine_id = world.inst.status.machine_id or ""
    stray = (Mount("volX", "/root"),)
    world.fly.machines[machine_id] = reconfigured(world.fly.machines[machine_id], mounts=stray)
    world.reconcile()
    assert world.condition("MountRepaired") == ("True", "MountRepaired")
    assert world.fly.machines[machine_id].mounts == (Mount(world.inst.status.volume_id or "", "/root"),)
    assert world.inst.status.phase == Phase.RUNNING


def test_secret_env_change_restarts_with_the_new_env() -> None:
    world = World(instance())
    world.reconcile()
    world.inst = replace(world.inst, env_digest="sha256:env-2")
    world.reconcile()
    assert world.condition("Restarting") == ("False", "RestartSucceeded")
    (m,) = world.fly.machines.values()
    assert m.env_digest == "sha256:env-2" and ENV != "sha256:env-2"


def test_desired_stopped_and_back() -> None:
    world = World(instance())
    world.reconcile()
    world.edit(state="Stopped")
    world.reconcile()
    assert world.inst.status.phase == Phase.STOPPED and world.condition("Ready") == ("True", "Stopped")
    world.edit(state="Running")
    world.reconcile()
    assert world.inst.status.phase == Phase.RUNNING and world.condition("Ready") == ("True", "Running")


def test_delete_with_failing_destroys_records_errors_then_finalizes() -> None:
    world = World(instance())
    world.reconcile()
    world.fly.faults[DestroyMachine].extend([failure(FailureKind.UNAVAILABLE, 500, "boom")] * 2)
    world.inst = replace(world.inst, deleting=True)
    last = world.reconcile()
    assert last.retry and world.inst.status.last_destroy_error_op == DestroyOp.MACHINE
    assert world.inst.status.last_destroy_error_status == 500
    world.reconcile()
    last = world.reconcile()
    assert last.finalize
    assert world.inst.status.phase == Phase.DESTROYING
    assert world.inst.status.last_destroy_error_op is None
    assert not world.fly.machines and not world.fly.volumes
    assert world.events()[-1] == "Destroyed"


def test_delete_while_a_create_landed_unrecorded_leaks_nothing() -> None:
    world = World(instance())
    world.step()  # the volume only
    world.inst = replace(world.inst, deleting=True)
    # A machine create that landed on Fly but whose answer was lost.
    world.fly.machines["m99"] = MachineView(
        id="m99", state="started", region="iad", metadata={"claw_instance_uid": world.inst.uid}
    )
    assert world.reconcile().finalize
    assert world.fly.calls.count("DestroyMachine") == 1
    assert "CreateMachine" not in world.fly.calls
    assert not world.fly.machines and not world.fly.volumes


def test_a_404_flicker_after_create_never_duplicates_the_machine() -> None:
    world = World(instance())
    world.fly.not_found_flickers = 1
    world.fly.boots_to = "started"
    for _ in range(3):
        if world.inst.status.phase == Phase.RUNNING:
            break
        world.reconcile()
        world.now += TIMINGS.loss_grace
    assert world.inst.status.phase == Phase.RUNNING
    assert len(world.fly.machines) == 1
    assert world.fly.calls.count("CreateMachine") == 1
    # The next read contradicts the 404: no loss was reported, nothing had to be recovered.
    assert "MachineLost" not in world.events() and world.inst.status.machine_missing_since is None


def test_an_operator_killed_between_create_and_status_write_leaves_one_machine() -> None:
    world = World(instance())
    world.step()  # the volume
    created = world.step(lose_the_write=True)
    assert [e.reason for e in created.events] == ["MachineCreated"] and len(world.fly.machines) == 1
    assert world.inst.status.machine_id is None
    world.reconcile()
    assert world.inst.status.phase == Phase.RUNNING
    assert len(world.fly.machines) == 1 and world.fly.calls.count("CreateMachine") == 1
