"""The counterexamples the model-based suite found, shrunk and replayed step by step.

Each test replays the steps Hypothesis printed (rules of `ClawModel`, the step invariant after
each) on a `StrictModel`, where every invariant is on, and names the defect it found: on main
before the fixes of issues 11 and 18 (e4b35ca), or later on a86c048 (the suite's NEW findings).
All are fixed on main now (c747f2a). A counterexample for a defect still open is written as
`@xfail("issue N item M: ...")` (strict, and only for its invariant: `breaks(name)`), so it
flips to a failure when the fix lands; then drop the mark and turn the invariant on in
test_model_based.WAITING_FOR.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from claw_operator.api import DesiredState
from claw_operator.api.conditions import MOUNT_REPAIRED, ConditionStatus, set_condition
from claw_operator.api.reasons import Reason
from claw_operator.lifecycle import capacity, crashes, health, volume_name
from claw_operator.lifecycle import decide as real_decide
from tests.unit.lifecycle import flyworld
from tests.unit.lifecycle.test_model_based import (
    INVARIANTS,
    InvariantViolation,
    StrictModel,
    _capacity_walk,
)


class Replay:
    """A StrictModel whose rule calls also run the step invariant, as Hypothesis does."""

    def __init__(self, *, off: frozenset[str] = frozenset()) -> None:
        self.model = StrictModel()
        self.model.gated = off
        self.model.at_most_one_of_each()

    def __getattr__(self, name: str) -> Callable[..., None]:
        rule = getattr(self.model, name)

        def step(*args: Any, **kwargs: Any) -> None:
            rule(*args, **kwargs)
            self.model.at_most_one_of_each()

        return step


@contextmanager
def breaks(name: str) -> Iterator[None]:
    """Only `name` may break here: another invariant breaking is a failure of its own."""
    assert name in INVARIANTS
    try:
        yield
    except InvariantViolation as violation:
        if violation.name != name:
            raise AssertionError(f"expected [{name}] to break, but: {violation}") from violation
        raise


def xfail(item: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, raises=InvariantViolation, reason=item)


# ---------------------------------------------------------------------------- issue 11


def test_a_config_restart_whose_status_write_gets_a_409_runs_once() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 1: a restart whose status write gets a 409 runs twice."""
    s = Replay()
    with breaks("restart_once"):
        s.calm_then_converge()
        s.edit_env(mode="b")
        s.one_pass()  # the Restarting guard is persisted; the restart follows in the same run
        s.annotate_something_else()  # so the restart's status write gets a 409
        s.calm_then_converge()


def test_a_requested_restart_interrupted_by_a_crash_runs_once() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 1: a restart interrupted by an operator crash before the write runs twice."""
    s = Replay()
    with breaks("restart_once"):
        s.calm_then_converge()
        s.request_restart()
        s.one_pass()  # the guard
        s.pass_then_crash()  # stop, update, start on Fly; the operator dies before writing
        s.reconcile()


def test_a_mount_fixed_by_starting_a_stopped_machine_is_reported() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 2: the start of a stopped machine fixes its mount silently."""
    s = Replay()
    with breaks("mount_repaired_truthful"):
        s.calm_then_converge()
        s.mount_repointed()
        s.machine_exits(state="stopped")
        s.calm_then_converge()


def test_a_mount_fixed_inside_a_requested_restart_is_reported() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 2: a requested restart fixes a mount silently."""
    s = Replay()
    with breaks("mount_repaired_truthful"):
        s.calm_then_converge()
        s.request_restart()
        s.one_pass()  # Restarting=True (RestartRequested) persisted
        s.crash()
        s.mount_repointed()  # drifts before the restart runs
        s.reconcile()


def test_a_slow_boot_is_not_a_start_failure() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 3: a boot slower than --fly-wait-timeout is written StartFailed."""
    s = Replay()
    with breaks("start_failed_truthful"):
        s.calm_then_converge()
        s.set_state(state=DesiredState.STOPPED)
        s.reconcile()
        s.set_state(state=DesiredState.RUNNING)
        s.boots(boot=("started", 90.0))
        s.reconcile()


def test_a_missing_secret_does_not_freeze_the_machine_state() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 4: with a Secret missing, a stopped machine still shows started."""
    s = Replay()
    with breaks("status_tracks_fly"):
        s.calm_then_converge()
        s.machine_exits(state="stopped")
        s.secret(present=False)
        s.one_pass()


def test_a_missing_secret_does_not_hide_a_lost_machine() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 4: with a Secret missing, a destroyed machine is never MachineLost."""
    s = Replay()
    with breaks("status_tracks_fly"):
        s.calm_then_converge()
        s.machine_destroyed_out_of_band()
        s.secret(present=False)
        s.reconcile()


def test_a_new_paused_instance_does_not_claim_its_generation() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 5: a paused instance's first pass claims observedGeneration."""
    s = Replay()
    with breaks("observed_generation_applied"):
        s.pause(paused=True)
        s.reconcile()


def test_a_spec_edit_while_paused_does_not_advance_observed_generation() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 5: a spec edit while paused advances observedGeneration."""
    s = Replay()
    with breaks("observed_generation_applied"):
        s.calm_then_converge()
        s.pause(paused=True)
        s.edit_image(image="registry.fly.io/claw:2")
        s.reconcile()


def test_the_finalizer_waits_for_a_conclusive_volume_listing() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 11 item 7: the finalizer goes although the volume listing failed."""
    s = Replay()
    with breaks("finalizer_only_when_empty"):
        s.fault(pair=("CreateVolume", "silent"))  # the volume exists, status never names it
        s.one_pass()
        s.delete(orphan=False)
        s.fault(pair=("list_volumes", "error"))
        s.fault(pair=("list_volumes", "error"))
        s.reconcile()


# ---------------------------------------------------------------------------- issue 18


def test_a_failed_volume_listing_never_creates_a_second_volume() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 1: a silently created volume + a failed listing = a second volume."""
    s = Replay()
    with breaks("one_live_volume"):
        s.fault(pair=("CreateVolume", "silent"))
        s.one_pass()
        s.fault(pair=("list_volumes", "error"))
        s.one_pass()


def test_a_stale_volume_listing_never_creates_a_second_volume() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 1: a silently created volume + a stale listing = a second volume."""
    s = Replay()
    with breaks("one_live_volume"):
        s.fault(pair=("CreateVolume", "silent"))
        s.one_pass()
        s.fault(pair=("list_volumes", "stale"))
        s.one_pass()


def test_a_lost_status_and_a_failed_listing_never_create_a_second_volume() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 1 (as shrunk): status lost by a crash, the machine gone, a failed listing."""
    s = Replay()
    with breaks("one_live_volume"):
        s.one_pass()  # the volume (its status write waits for the next pass)
        s.pass_then_crash()  # the machine; the operator dies before writing either
        s.fault(pair=("list_volumes", "error"))
        s.machine_destroyed_out_of_band()
        s.one_pass()


def test_one_404_on_the_volume_never_replaces_it() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 2: one 404 on GET volume replaces the volume that holds the data."""
    s = Replay(off=frozenset({"lost_only_when_gone"}))
    with breaks("volume_kept"):
        s.calm_then_converge()
        s.grow_volume(by=1)  # so the next pass reads the volume
        s.fault(pair=("get_volume", "notfound"))
        s.reconcile()


def test_no_volume_lost_warning_for_a_single_404() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 5: VolumeLost on a single 404."""
    s = Replay()
    with breaks("lost_only_when_gone"):
        s.calm_then_converge()
        s.grow_volume(by=1)
        s.fault(pair=("get_volume", "notfound"))
        s.reconcile()


def test_no_machine_lost_warning_for_a_single_404() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 5: MachineLost on a single 404."""
    s = Replay()
    with breaks("lost_only_when_gone"):
        s.calm_then_converge()
        s.fault(pair=("get_machine", "notfound"))
        s.reconcile()


def test_a_lost_extend_answer_does_not_stall_the_instance() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 3: a retried extend answers 400 and stalls the instance (InvalidConfig)."""
    s = Replay()
    with breaks("converges"):
        s.calm_then_converge()
        s.grow_volume(by=2)
        s.fault(pair=("ExtendVolume", "silent"))
        s.reconcile()
        s.calm_then_converge()


def test_ready_waits_for_a_volume_grow_while_stopped() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 4: Ready=True for a Stopped instance whose volume is too small."""
    s = Replay()
    with breaks("ready_needs_volume_size"):
        s.calm_then_converge()
        s.set_state(state=DesiredState.STOPPED)
        s.reconcile()
        s.grow_volume(by=2)
        s.reconcile()


def test_ready_waits_for_a_volume_grow_requested_during_the_create() -> None:
    """Found on main before the fixes (e4b35ca):
    issue 18 item 4 (Running): a machine created after a grow is Ready on the small volume."""
    s = Replay()
    with breaks("ready_needs_volume_size"):
        s.one_pass()  # the volume, at the old size
        s.grow_volume(by=1)
        s.calm_then_converge()


# ---------------------------------------------------------------------------- new findings (a86c048)


def test_ready_is_not_claimed_for_an_older_spec_after_a_wait() -> None:
    """Found on main before the fixes (e4b35ca):
    NEW: Ready=True after waiting for a boot, without comparing the machine with the new spec."""
    s = Replay()
    with breaks("ready_truthful"):
        s.boots(boot=("started", 90.0))
        s.reconcile()  # volume, machine, and a wait that times out: Starting
        s.edit_image(image="registry.fly.io/claw:2")
        s.time_passes(seconds=61)
        s.reconcile()  # the wait sees it started: Ready=True on image :1 for the :2 generation


def test_ready_is_not_claimed_for_an_older_spec_after_a_recovered_create() -> None:
    """Found on main before the fixes (e4b35ca):
    NEW: Ready=True on an older spec after a recovered create (shrunk)."""
    s = Replay()
    with breaks("ready_truthful"):
        s.one_pass()
        s.edit_guest(memory=2048)  # the machine create of the same run uses the old guest
        s.calm_then_converge()


def test_recovery_never_adopts_a_volume_that_is_not_the_instances() -> None:
    """Found by this suite on a86c048 (fixed by c747f2a):
    NEW: a lost status recovers the volume from a mount that points at someone else's volume."""
    s = Replay()
    with breaks("volume_is_the_instances"):
        s.one_pass()
        s.pass_then_crash()
        s.mount_repointed()
        s.calm_then_converge()


def test_ready_is_not_claimed_after_a_failed_restart() -> None:
    """Found by this suite on a86c048 (fixed by c747f2a):
    NEW: Ready=True and Reconciled after a requested restart failed (it is retried later)."""
    s = Replay()
    with breaks("ready_truthful"):
        s.calm_then_converge()
        s.request_restart()
        s.fault(pair=("RestartMachine", "error"))  # 503 before anything happened
        s.reconcile()  # RestartFailed, retried in 5 s: meanwhile Ready=True for the new generation


def test_ready_is_not_claimed_on_the_old_image_after_a_failed_config_restart() -> None:
    """Found by this suite on a86c048 (fixed by c747f2a):
    NEW: Ready=True on the old image after the config-change restart failed."""
    s = Replay()
    with breaks("ready_truthful"):
        s.calm_then_converge()
        s.edit_image(image="registry.fly.io/claw:2")
        s.fault(pair=("RestartMachine", "error"))
        s.reconcile()


def test_a_volume_404_does_not_freeze_the_machine_state() -> None:
    """Found by this suite on a86c048 (fixed by c747f2a):
    NEW: while a volume 404 waits for its proof, the machine's observed state is not recorded."""
    s = Replay()
    with breaks("status_tracks_fly"):
        s.calm_then_converge()
        s.mount_repointed()  # our volume is now unattached...
        s.volume_deleted_out_of_band()  # ...so it can be deleted
        s.machine_exits(state="stopped")
        s.reconcile()  # volume: first 404 (wait 30 s for the proof); machine: stopped, status: started


def test_a_restart_requested_during_a_lost_restart_write_still_runs() -> None:
    """Found by this suite on a86c048 (fixed by c747f2a):
    NEW: resuming a restart whose status write was lost marks a newer restartedAt handled."""
    s = Replay()
    with breaks("restart_not_skipped"):
        s.calm_then_converge()
        s.request_restart()
        s.one_pass()  # the guard, with the machine's version
        s.annotate_something_else()
        s.one_pass()  # the restart runs on Fly; its status write gets a 409
        s.request_restart()  # a second request, after that restart
        s.calm_then_converge()  # the resume sees the new version: "done", and handles both


def test_a_stopped_instance_with_a_failed_machine_grows_its_volume() -> None:
    """Found by this suite on a86c048 (fixed by c747f2a):
    NEW: a grow is never applied while Stopped when Fly shows the machine `failed`."""
    s = Replay()
    with breaks("grow_not_idle"):
        s.calm_then_converge()
        s.grow_volume(by=1)
        s.machine_exits(state="failed")
        s.set_state(state=DesiredState.STOPPED)
        s.calm_then_converge()  # Ready=False (Resizing) for good: decide's `failed` branch never grows


def test_a_stale_machine_listing_never_creates_a_second_machine() -> None:
    """Found by this suite on a86c048 (fixed by c747f2a):
    NEW: a machine create whose answer was lost + a listing that does not show it yet."""
    s = Replay()
    with breaks("one_live_machine"):
        s.fault(pair=("CreateMachine", "silent"))  # the machine exists; its answer was lost
        s.reconcile()
        s.fault(pair=("list_machines", "stale"))  # Fly's list does not show it yet
        s.reconcile()  # "no machine": a second create (the volume path waits listing_settle)


# ---------------------------------------------------------------------------- open (c747f2a)


def test_a_resumed_restart_does_not_put_off_the_volume_grow() -> None:
    s = Replay()
    with breaks("grow_not_idle"):
        s.calm_then_converge()
        s.grow_volume(by=2)
        s.edit_guest(memory=2048)
        s.one_pass()  # the Restarting guard (the config change comes first)
        s.pass_then_crash()  # the restart runs on Fly; the operator dies before writing
        s.reconcile()  # resumed: RestartSucceeded, Ready=False (Resizing), no extend for 5 minutes


def test_a_restart_requested_while_a_repair_restart_boots_still_runs() -> None:
    """Found by this suite on c747f2a: a restartedAt set while a mount-repair restart still boots
    was marked handled by it (restart_not_skipped; fixed on main: the resumed restart serves only
    the request its guard recorded, the new request gets its own restart). What was left,
    MountRepaired=True (reported when the repair restart completed in the new generation) standing
    through that next restart, was the model's error, not the operator's: a repair carried into a
    generation is that generation's to report, for all of it (see
    test_model_based._check_recorded_conditions); the operator keeps it, rightly."""
    s = Replay()
    with breaks("mount_repaired_truthful"):
        s.calm_then_converge()
        s.mount_repointed()
        s.boots(boot=("started", 90.0))
        s.reconcile()  # the repair restart: updated, still booting when the wait gives up
        s.request_restart()  # asked after that boot began
        s.calm_then_converge()  # the resumed restart completes and handles the new request too


def test_ready_needs_a_volume_of_the_instance() -> None:
    s = Replay()
    with breaks("ready_needs_own_volume"):
        s.one_pass()  # the volume (its status write waits for the next pass)
        s.pass_then_crash()  # the machine; the operator dies before writing either
        s.mount_repointed()  # someone points the machine at another volume
        s.one_pass()  # the machine is recovered by its tag; its mount is not adopted
        s.crash()
        s.volume_deleted_out_of_band()  # the instance's own (unattached) volume goes
        s.one_pass()  # no volume to adopt yet: Ready=True (Running), status.volumeId unset


# ---------------------------------------------------------------------------- the invariants can fail


def test_restarting_is_checked_against_restarting_at(monkeypatch: pytest.MonkeyPatch) -> None:
    """No counterexample on main: a decide that forgets the guard but keeps Restarting=True."""

    def sloppy(*args: Any, **kwargs: Any) -> Any:
        decision = real_decide(*args, **kwargs)
        decision.status.restarting_at = None
        return decision

    monkeypatch.setattr(flyworld, "decide", sloppy)
    s = Replay()
    s.calm_then_converge()
    with pytest.raises(InvariantViolation, match="restarting_truthful"):
        s.request_restart()
        s.one_pass()


def test_a_second_machine_is_caught() -> None:
    s = Replay()
    s.calm_then_converge()
    (machine,) = s.model.world.tagged(flyworld.UID)
    twin = dataclasses.replace(machine, id="m999")
    s.model.world.machines[twin.id] = twin
    with pytest.raises(InvariantViolation, match="one_live_machine"):
        s.model.at_most_one_of_each()


def test_every_invariant_has_a_test_that_makes_it_fail() -> None:
    source = Path(__file__).read_text()
    missing = [name for name in INVARIANTS if f'"{name}"' not in source]
    assert not missing, f"no test makes {missing} fail"


def test_a_volume_recovered_from_a_machines_mount_keeps_its_size() -> None:
    """Found by the long profile on main (ccd163b): a machine recovered by its tag brought its
    volume back without the volume's size, so with GET volume failing `Ready=True` stood while
    the volume was smaller than the spec (ready_needs_volume_size)."""
    s = Replay()
    s.one_pass()
    s.fault(pair=("get_volume", "error"))
    s.grow_volume(by=1)
    s.reconcile()


# ---------------------------------------------------------------------------- issue 12 (capacity)


def _stranded_with_data(s: Replay) -> None:
    """Running (data on the volume), stopped, the volume's host filled, started again."""
    s.calm_then_converge()
    s.set_state(state=DesiredState.STOPPED)
    s.reconcile()
    s.host_fills()
    s.set_state(state=DesiredState.RUNNING)
    for _ in range(6):
        s.time_passes(seconds=20)
        s.reconcile()


def test_a_fork_recovery_deletes_the_old_volume_only_after_the_start() -> None:
    s = Replay()
    _stranded_with_data(s)
    s.calm_then_converge()
    world = s.model.world
    kinds = [m.kind for m in world.mutations]
    assert "fork_volume" in kinds, kinds
    # At rest: one volume, the fork, with a machine started on it.
    (volume,) = world.named(volume_name(flyworld.UID))
    assert volume.forked_from is not None
    assert s.model.op.status().stranded_volume_id is None


def test_an_old_volume_deleted_before_the_machine_on_its_fork_started_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No counterexample on main: a recovery that deletes the volume with the data as soon as
    the fork exists (before any machine started on it)."""
    monkeypatch.setattr(capacity, "_done", lambda d, observed: True)
    s = Replay()
    with pytest.raises(InvariantViolation, match="fork_started_before_delete"):
        _stranded_with_data(s)


def test_a_fork_whose_host_fills_after_a_machine_was_launched_on_it_recovers() -> None:
    """Found by the capacity walk (seed 873) on 4a069e5: a machine launched on the fork but never
    seen started (it stopped before any check saw it started), then the fork's host fills too.
    Neither volume may go (the fork may hold new data and is not proven good), so the start on the
    fork was retried in place forever. Now the fork is forked in turn (the old volume superseded,
    kept), and both older volumes go once the machine on the newest fork has started."""
    kinds = _capacity_walk(873)
    assert kinds["fork_volume"] >= 2, kinds
    # At rest after convergence (checked by the walk): one volume, no recovery recorded.


def test_a_repair_whose_write_was_lost_is_reported_in_the_next_generation_until_it_ends() -> None:
    """Found by the long profile on main (11f86c3), a false alarm of the model: the repair restart
    ran on Fly in generation 1, its status write got a 409, a restart was requested (generation
    2); the operator resumed the restart, found it done and reported MountRepaired=True in
    generation 2 — the only status that ever says so. The model accepted that report on the pass
    that made it but not on the next pass of the same generation (the requested restart in
    flight), as if the condition had to be taken back. The contract's "repaired during this
    generation" is about when the operator reports it: it stands until the spec changes."""
    s = Replay()
    with breaks("mount_repaired_truthful"):
        s.calm_then_converge()
        s.mount_repointed()
        s.one_pass()  # the Restarting guard (MountRepair)
        s.annotate_something_else()  # so the next status write gets a 409
        s.one_pass()  # the repair restart runs on Fly; its status write is lost
        s.request_restart()  # generation 2
        s.calm_then_converge()  # resumed: MountRepaired=True in generation 2, then the requested restart
    conditions = {c.type: c for c in s.model.op.status().conditions}
    repaired = conditions["MountRepaired"]
    assert (repaired.status, repaired.observed_generation) == ("True", s.model.op.stored.generation)


def test_a_mount_repaired_claimed_without_a_repair_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invariant still fails on a real lie: MountRepaired=True in a generation in which no
    mount was repaired, nor carried into it."""

    def liar(*args: Any, **kwargs: Any) -> Any:
        decision = real_decide(*args, **kwargs)
        status = decision.status
        if status.observed_generation == 2:
            status.conditions = set_condition(
                status.conditions,
                MOUNT_REPAIRED,
                ConditionStatus.TRUE,
                Reason.MOUNT_REPAIRED,
                "nothing was repaired",
                generation=2,
                now=status.conditions[0].last_transition_time,
            )
        return decision

    s = Replay()
    s.calm_then_converge()
    s.mount_repointed()
    s.calm_then_converge()  # a real repair, reported in generation 1
    monkeypatch.setattr(flyworld, "decide", liar)
    with pytest.raises(InvariantViolation, match="mount_repaired_truthful"):
        s.edit_env(mode="b")  # generation 2: a restart, no repair
        s.calm_then_converge()


# ---------------------------------------------------------------------------- issue 12 (crash loops, health)


def test_a_ready_claimed_while_the_health_check_fails_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """No counterexample on main: an operator that ignores the checks Fly reports."""
    s = Replay()
    s.calm_then_converge()
    s.health(after=None)  # the app stops answering its check
    monkeypatch.setattr(health, "failing_check", lambda machine: None)
    with pytest.raises(InvariantViolation, match="ready_needs_passing_checks"):
        s.edit_health_check(on=True)  # the restart renders the check
        s.reconcile()
        s.time_passes(seconds=61)
        s.reconcile()


def test_ready_waits_for_the_health_check_then_follows_it() -> None:
    s = Replay()
    s.health(after=30.0)  # the app answers 30 s after each launch
    s.edit_health_check(on=True)
    s.reconcile()
    assert s.model.op.condition("Ready")[:2] == ("False", "Unhealthy")
    s.calm_then_converge()
    assert s.model.op.condition("Ready")[:2] == ("True", "Running")


def test_a_restart_inside_the_crash_backoff_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """No counterexample on main: an operator that starts a crashed machine at once."""
    s = Replay()
    s.calm_then_converge()
    s.machine_exits(state="failed")  # seconds after the start: a crash
    s.reconcile()
    assert s.model.op.status().crash_count == 1
    monkeypatch.setattr(crashes, "backoff_remaining", lambda d: None)
    with pytest.raises(InvariantViolation, match="crash_backoff_spaced"):
        s.one_pass()


def test_a_crash_count_never_reset_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """No counterexample on main: an operator that never ends a crash loop."""
    monkeypatch.setattr(crashes, "reset_if_stable", lambda d: None)
    s = Replay()
    s.calm_then_converge()
    s.machine_exits(state="failed")
    s.calm_then_converge()
    assert s.model.op.status().crash_count == 1
    with pytest.raises(InvariantViolation, match="crash_count_resets"):
        s.time_passes(seconds=1800)
        s.reconcile()


def test_crash_loop_backs_off_then_resets_after_a_stable_run() -> None:
    s = Replay()
    s.calm_then_converge()
    for count in (1, 2, 3):
        s.machine_exits(state="stopped")  # Fly's exit event, seconds after the start
        for _ in range(10):  # seen stopped on --stopped-threshold consecutive checks
            if s.model.op.status().crash_count == count:
                break
            s.time_passes(seconds=1)
            s.reconcile()
        assert s.model.op.status().crash_count == count
        assert s.model.op.condition("StartFailed")[:2] == ("True", "CrashLoopBackOff")
        s.calm_then_converge()  # the start waits 10 s, 20 s, 40 s (checked after every pass)
    s.time_passes(seconds=1800)
    s.reconcile()
    assert s.model.op.status().crash_count == 0


def test_a_mount_repaired_by_the_update_before_a_start_the_full_host_refused_is_reported() -> None:
    """Found by this suite once the world reported health checks (11f86c3, reproduces on main):
    the update before the start re-pointed the mount, the start failed for lack of capacity, and
    the capacity recovery moved the instance to a fork; the repair was never reported."""
    s = Replay()
    with breaks("mount_repaired_truthful"):
        s.calm_then_converge()
        s.host_fills()
        s.mount_repointed()
        s.machine_exits(state="failed")
        s.calm_then_converge()


def test_a_machine_made_anew_after_a_crash_waits_the_backoff() -> None:
    """Found by this suite (11f86c3, reproduces on main): a crash, then a capacity recovery
    destroyed the machine and created one on the fork before the crash backoff was over."""
    s = Replay()
    with breaks("crash_backoff_spaced"):
        s.calm_then_converge()
        s.grow_volume(by=1)
        s.crash()
        s.machine_destroyed_out_of_band()
        s.calm_then_converge()
        s.host_fills()
        s.edit_image(image="registry.fly.io/claw:2")
        s.machine_exits(state="failed")
        s.calm_then_converge()


# ---------------------------------------------------------------------------- make chaos (42ce2c9)


def test_a_restart_whose_stop_and_start_fly_applied_silently_runs_once() -> None:
    """Found by `make chaos` on main 42ce2c9 (seed 2, chaos-1/claw-0081; benchmarks/README.md),
    replayed here: the restart's stop was applied by Fly although the call failed (RestartFailed),
    the operator died, its next life started the stopped machine for the pending request and that
    start was applied although Fly answered 502 (StartFailed). The machine was stopped and booted
    after the request, but its version did not move: it was restarted a second time."""
    s = Replay()
    with breaks("restart_repeated"):
        s.calm_then_converge()
        s.request_restart()
        s.one_pass()  # the guard (Restarting=True) is persisted
        s.fault(pair=("RestartMachine", "midway"))  # the stop went in, then the call failed
        s.one_pass()  # RestartFailed, the machine stopped
        s.crash()  # kill -9: the next life knows only the status
        s.fault(pair=("StartMachine", "applied"))  # the start went in, Fly answered 502
        s.reconcile()  # start_for_pending_change: StartFailed
        s.time_passes(seconds=20)
        s.reconcile()  # sees it started: no second stop/update/start
        assert s.model.op.status().handled_restarted_at == "restart-1"
        s.calm_then_converge()
    stops = [m for m in s.model.world.mutations if m.kind == "stop"]
    assert len(stops) == 1, stops


def test_a_start_fly_applied_silently_for_a_pending_restart_serves_it() -> None:
    """The same without the failed restart: the request finds the machine stopped; the start
    that serves it is applied although Fly answers 502, and the operator dies before any later
    pass. The machine booted after the request: no restart follows."""
    s = Replay()
    with breaks("restart_repeated"):
        s.calm_then_converge()
        s.machine_exits(state="stopped")
        s.request_restart()
        s.fault(pair=("StartMachine", "applied"))
        s.reconcile()
        s.crash()
        s.time_passes(seconds=20)
        s.calm_then_converge()
    assert not [m for m in s.model.world.mutations if m.kind == "stop"]


def test_a_start_for_a_pending_restart_interrupted_by_a_crash_serves_it() -> None:
    """The start that serves the request boots the machine and the operator dies before it
    writes the status: the next life finds the machine started after the request."""
    s = Replay()
    with breaks("restart_repeated"):
        s.calm_then_converge()
        s.machine_exits(state="stopped")
        s.request_restart()
        s.one_pass()  # what Fly shows is persisted first as the request's baseline
        s.pass_then_crash()  # the start boots the machine; the operator dies before writing
        s.calm_then_converge()
    assert not [m for m in s.model.world.mutations if m.kind == "stop"]


def test_a_machine_stopped_before_it_ever_booted_is_served_by_its_first_start() -> None:
    """Found by the long profile on this fix's first version (as shrunk): a machine stopped while
    it booted (desired Stopped) has no start event, so no baseline was taken; with a restart
    pending, its first start booted it and the operator died before writing: restarted again.
    Its `updated_at` is now the request's baseline."""
    s = Replay()
    with breaks("restart_repeated"):
        s.pass_with_conflict()
        s.request_restart()
        s.set_state(state=DesiredState.STOPPED)
        s.calm_then_converge()
        s.host_fills()
        s.hosts_free()
        s.set_state(state=DesiredState.RUNNING)
        s.pass_then_crash()
        s.calm_then_converge()
    assert not [m for m in s.model.world.mutations if m.kind == "update"]


def test_the_baseline_is_written_before_the_start_that_may_serve_the_request() -> None:
    """The same, with the operator dying right after the start itself."""
    s = Replay()
    with breaks("restart_repeated"):
        s.pass_with_conflict()
        s.request_restart()
        s.set_state(state=DesiredState.STOPPED)
        s.calm_then_converge()
        s.set_state(state=DesiredState.RUNNING)
        s.one_pass()  # the baseline (the machine never booted: its updated_at), nothing sent
        assert s.model.op.status().restart_baseline_for == "restart-1"
        assert not [m for m in s.model.world.mutations if m.kind == "start"]
        s.pass_then_crash()  # the start boots it; the operator dies before writing
        assert [m.kind for m in s.model.world.mutations].count("start") == 1
        s.calm_then_converge()
    assert not [m for m in s.model.world.mutations if m.kind == "update"]
