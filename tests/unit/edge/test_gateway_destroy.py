"""The gateway during a deletion: what it asks Fly, and when it answers from the objects it
created itself (every create answered) instead of listing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from claw_operator.api import DestroyOp, Phase
from claw_operator.edge import FlyGateway
from claw_operator.fly import Machine, NotFound, Volume
from claw_operator.fly.errors import Unavailable
from claw_operator.fly.tags import METADATA_UID_KEY, volume_name
from claw_operator.lifecycle.model import (
    CreateMachine,
    CreateVolume,
    DeleteVolume,
    DestroyMachine,
    Instance,
    Timings,
)
from tests.unit.lifecycle.builders import UID, instance, status


class RecordingFly:
    """Just enough of FlyMachinesClient; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.machines: dict[str, Machine] = {}
        self.volumes: dict[str, Volume] = {}
        self.fail_machine_create = False

    async def create_volume(self, app: str, *, name: str, **_: Any) -> Volume:
        self.calls.append("create_volume")
        volume = Volume(id=f"vol{len(self.volumes) + 1}", name=name, state="created", size_gb=10)
        self.volumes[volume.id] = volume
        return volume

    async def create_machine(self, app: str, config: Any, *, owner: Any, region: str) -> Machine:
        self.calls.append("create_machine")
        if self.fail_machine_create:
            raise Unavailable("upstream reset: the create may have happened")
        machine = Machine(id=f"m{len(self.machines) + 1}", state="created")
        self.machines[machine.id] = machine
        return machine

    async def destroy_machine(self, app: str, machine_id: str, *, force: bool) -> None:
        self.calls.append("destroy_machine")
        if self.machines.pop(machine_id, None) is None:
            raise NotFound("machine not found", status=404)

    async def wait_for_state(self, app: str, machine_id: str, state: str, **_: Any) -> Any:
        self.calls.append(f"wait_{state}")

    async def delete_volume(self, app: str, volume_id: str) -> None:
        self.calls.append("delete_volume")
        if self.volumes.pop(volume_id, None) is None:
            raise NotFound("volume not found", status=404)

    async def list_machines(self, app: str) -> list[Machine]:
        self.calls.append("list_machines")
        return list(self.machines.values())

    async def list_volumes(self, app: str) -> list[Volume]:
        self.calls.append("list_volumes")
        return list(self.volumes.values())

    async def get_volume(self, app: str, volume_id: str) -> Volume:
        self.calls.append("get_volume")
        if volume_id not in self.volumes:
            raise NotFound("volume not found", status=404)
        return self.volumes[volume_id]

    async def get_machine(self, app: str, machine_id: str, **_: Any) -> Machine:
        self.calls.append("get_machine")
        if machine_id not in self.machines:
            raise NotFound("machine not found", status=404)
        return self.machines[machine_id]


def setup(*, born_before_start: bool = False) -> tuple[FlyGateway, RecordingFly, Instance]:
    fly = RecordingFly()
    gw = FlyGateway(client=fly, timings=Timings(listing_settle=timedelta(0)))  # type: ignore[arg-type]
    offset = timedelta(seconds=-60) if born_before_start else timedelta(seconds=60)
    return gw, fly, instance(created_at=gw._started_at + offset, status_=status())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def create_both(gw: FlyGateway, inst: Instance) -> Instance:
    made = await gw.execute(CreateVolume(region="iad", size_gb=10, name="claw_x"), inst, None)
    machine = await gw.execute(CreateMachine(volume_id=made.volume.id, region="iad"), inst, None)
    new_status = inst.status.model_copy(
        update={"volume_id": made.volume.id, "machine_id": machine.machine.id}
    )
    return replace(inst, status=new_status, deleting=True)


def test_a_deletion_of_what_this_process_created_costs_only_the_destroy_calls() -> None:
    gw, fly, inst = setup()

    async def scenario() -> None:
        deleting = await create_both(gw, inst)
        fly.calls.clear()
        seen = await gw.observe(deleting)
        assert fly.calls == []  # no GET, no listing: every object of the instance is known
        assert [m.id for m in seen.tagged_machines or ()] == ["m1"]
        assert [v.id for v in seen.named_volumes or ()] == ["vol1"]
        assert (await gw.execute(DestroyMachine(machine_id="m1"), deleting, None)).ok
        assert (await gw.execute(DeleteVolume(volume_id="vol1"), deleting, None)).ok
        done = replace(
            deleting,
            status=deleting.status.model_copy(
                update={"phase": Phase.DESTROYING, "machine_id": None, "volume_id": None}
            ),
        )
        empty = await gw.observe(done)
        assert empty.tagged_machines == () and empty.named_volumes == ()
        assert fly.calls == ["destroy_machine", "wait_destroyed", "delete_volume"]

    run(scenario())


def test_a_create_whose_answer_was_lost_brings_the_listings_back() -> None:
    gw, fly, inst = setup()

    async def scenario() -> None:
        made = await gw.execute(CreateVolume(region="iad", size_gb=10, name="claw_x"), inst, None)
        fly.fail_machine_create = True
        failed = await gw.execute(CreateMachine(volume_id=made.volume.id, region="iad"), inst, None)
        assert not failed.ok
        deleting = replace(
            inst, status=inst.status.model_copy(update={"volume_id": made.volume.id}), deleting=True
        )
        fly.calls.clear()
        seen = await gw.observe(deleting)
        # No machine recorded: the listing by the UID tag (and the volume's attachment) must tell.
        assert "list_machines" in fly.calls and "get_volume" in fly.calls
        assert seen.tagged_machines == ()

    run(scenario())


def destroying_older(gw: FlyGateway, inst: Instance, *, settled: bool = True) -> Instance:
    """A deletion of an instance created before this process (an operator restart), Fly
    holding its recorded machine m1 and volume vol1, and an unrecorded machine m2 tagged with it
    (an earlier process died between its create and the status write)."""
    if settled:
        gw._started_monotonic -= 60  # past listing_settle since the start
    tags = {"metadata": {METADATA_UID_KEY: UID}}
    fly = gw._fly
    fly.machines["m1"] = Machine(id="m1", state="started", config=tags)  # type: ignore[attr-defined]
    fly.machines["m2"] = Machine(id="m2", state="stopped", config=tags)  # type: ignore[attr-defined]
    fly.volumes["vol1"] = Volume(id="vol1", name=volume_name(UID), state="created", size_gb=10)  # type: ignore[attr-defined]
    return replace(
        inst,
        deleting=True,
        status=inst.status.model_copy(
            update={
                "phase": Phase.DESTROYING,
                "machine_id": "m1",
                "volume_id": "vol1",
                "pending_destroy_machine_id": "m1",
                "pending_destroy_volume_id": "vol1",
            }
        ),
    )


def done(inst: Instance, **update: Any) -> Instance:
    """The same deletion once the recorded machine and volume are destroyed."""
    cleared = {
        "machine_id": None,
        "volume_id": None,
        "pending_destroy_machine_id": None,
        "pending_destroy_volume_id": None,
        **update,
    }
    return replace(inst, status=inst.status.model_copy(update=cleared))


def test_an_instance_older_than_the_process_is_listed_once_then_answered_from_the_record() -> None:
    gw, fly, inst = setup(born_before_start=True)
    destroying = destroying_older(gw, inst)

    async def scenario() -> None:
        first = await gw.observe(destroying)
        # Past listing_settle of the restart: both listings, once, show every object.
        assert sorted(fly.calls) == ["list_machines", "list_volumes"]
        assert sorted(m.id for m in first.tagged_machines or ()) == ["m1", "m2"]
        assert [v.id for v in first.named_volumes or ()] == ["vol1"]
        assert (await gw.execute(DestroyMachine(machine_id="m1"), destroying, None)).ok
        assert (await gw.execute(DeleteVolume(volume_id="vol1"), destroying, None)).ok
        fly.calls.clear()
        last = await gw.observe(done(destroying))
        assert fly.calls == []  # answered from the record, kept by the destroys
        assert [m.id for m in last.tagged_machines or ()] == ["m2"]  # unrecorded: destroyed next
        assert last.named_volumes == ()
        assert (await gw.execute(DestroyMachine(machine_id="m2"), destroying, None)).ok
        fly.calls.clear()
        empty = await gw.observe(done(destroying))
        assert fly.calls == [] and empty.tagged_machines == () and empty.named_volumes == ()
        assert UID not in gw._listed  # the last pass: nothing left to remember

    run(scenario())


def test_within_listing_settle_of_a_restart_the_record_is_not_filled_in() -> None:
    gw, fly, inst = setup(born_before_start=True)
    gw._timings = Timings(listing_settle=timedelta(seconds=30))
    destroying = destroying_older(gw, inst, settled=False)

    async def scenario() -> None:
        await gw.observe(destroying)
        assert fly.calls == []  # both ids pending: nothing to look at yet
        fly.machines.clear()
        fly.volumes.clear()
        last = await gw.observe(done(destroying))
        # An empty listing within listing_settle of the restart proves nothing.
        assert sorted(fly.calls) == ["list_machines", "list_volumes"]
        assert last.tagged_machines is None and last.tagged_failure is not None
        assert last.named_volumes is None and last.named_failure is not None
        assert UID not in gw._listed

    run(scenario())


def test_a_failed_listing_fills_in_no_record() -> None:
    gw, fly, inst = setup(born_before_start=True)
    destroying = destroying_older(gw, inst)

    async def failing(app: str) -> list[Volume]:
        fly.calls.append("list_volumes")
        raise Unavailable("upstream reset")

    fly.list_volumes = failing  # type: ignore[method-assign]

    async def scenario() -> None:
        seen = await gw.observe(destroying)
        assert sorted(fly.calls) == ["list_machines", "list_volumes"]
        assert seen.named_volumes is None and seen.named_failure is not None
        assert UID not in gw._listed

    run(scenario())


def test_a_volume_still_refused_as_bound_after_the_detach_wait_is_looked_at() -> None:
    gw, fly, inst = setup()

    async def scenario() -> None:
        deleting = await create_both(gw, inst)
        assert (await gw.execute(DestroyMachine(machine_id="m1"), deleting, None)).ok
        fly.volumes["vol1"] = Volume(
            id="vol1", name=volume_name(UID), state="created", size_gb=10, attached_machine_id="x9"
        )
        fly.machines["x9"] = Machine(id="x9", state="started")  # not ours, but holds the volume
        refused = done(
            deleting,
            phase=Phase.DESTROYING,
            volume_id="vol1",
            pending_destroy_volume_id="vol1",
            last_destroy_error_op=DestroyOp.VOLUME,
            last_destroy_error_status=412,
        )
        fly.calls.clear()
        await gw.observe(refused)
        assert fly.calls == []  # the first refusal: Fly is still detaching the destroyed machine
        seen = await gw.observe(replace(refused, failures=1))
        assert fly.calls == ["get_volume", "get_machine"]
        assert seen.volume.volume is not None and seen.volume.volume.attached_machine_id == "x9"

    run(scenario())


def test_a_deleted_volume_does_not_make_an_empty_listing_proof_within_settle_of_a_lost_create() -> None:
    """A machine create this process sent moments ago lost its answer (it may exist, unlisted
    yet); the destroy then deletes the recorded volume. The next empty listing of machines
    still proves nothing until `listing_settle` after that create: otherwise the finalizer
    would be released with the machine left on Fly."""
    fly = RecordingFly()
    gw = FlyGateway(client=fly, timings=Timings(listing_settle=timedelta(seconds=30)))  # type: ignore[arg-type]
    gw._started_monotonic -= 60  # the process's own start is past listing_settle
    inst = instance(created_at=gw._started_at - timedelta(seconds=60), status_=status())

    async def scenario() -> None:
        made = await gw.execute(CreateVolume(region="iad", size_gb=10, name="claw_x"), inst, None)
        fly.fail_machine_create = True
        assert not (await gw.execute(CreateMachine(volume_id=made.volume.id, region="iad"), inst, None)).ok
        deleting = replace(
            inst,
            deleting=True,
            status=inst.status.model_copy(update={"phase": Phase.DESTROYING, "volume_id": made.volume.id}),
        )
        assert (await gw.execute(DeleteVolume(volume_id=made.volume.id), deleting, None)).ok
        seen = await gw.observe(done(deleting))
        assert seen.tagged_machines is None  # the listing shows none yet: not proof of none
        assert seen.named_volumes is None

    run(scenario())


def test_a_create_time_kept_past_a_volume_delete_is_forgotten_once_settled() -> None:
    """A deletion's DeleteVolume keeps the time of a create younger than `listing_settle`; when
    the last passes then answer from the record (`_known_objects`), nothing else ever drops it.
    A later DeleteVolume (of any instance) forgets every create time past `listing_settle`."""
    gw = FlyGateway(client=RecordingFly(), timings=Timings(listing_settle=timedelta(seconds=30)))  # type: ignore[arg-type]
    inst = instance(created_at=gw._started_at + timedelta(seconds=60), status_=status())
    other = replace(inst, uid="0F1E2D3C-4B5A-4978-8877-665544332211", name="claw-b")

    async def scenario() -> None:
        deleting = await create_both(gw, inst)
        assert (await gw.execute(DestroyMachine(machine_id="m1"), deleting, None)).ok
        assert (await gw.execute(DeleteVolume(volume_id="vol1"), deleting, None)).ok
        empty = await gw.observe(done(deleting, phase=Phase.DESTROYING))
        assert empty.tagged_machines == () and empty.named_volumes == ()  # from the record
        assert UID in gw._machine_creates_sent and UID in gw._volume_creates_sent  # still young
        for sent_at in (gw._machine_creates_sent, gw._volume_creates_sent):
            sent_at[UID] -= 31  # listing_settle has passed since
        # Another instance's deletion, its own create only just sent.
        made = await gw.execute(CreateVolume(region="iad", size_gb=10, name="claw_y"), other, None)
        assert made.volume is not None
        deleting_other = replace(other, deleting=True)
        assert (await gw.execute(DeleteVolume(volume_id=made.volume.id), deleting_other, None)).ok
        assert UID not in gw._machine_creates_sent and UID not in gw._volume_creates_sent
        assert other.uid in gw._volume_creates_sent  # younger than listing_settle: kept

    run(scenario())
