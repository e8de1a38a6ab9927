"""The working copy one pass builds: the new status, the recorded conditions, events and logs.

`decide` starts a Draft from the instance as read; `settle` resumes the Draft `decide` ended
with. `finish()` stamps what every completed pass must (all six conditions, observedGeneration,
appName, the handled reconcile request) and freezes the result into a Decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from claw_operator.api import (
    CONDITION_TYPES,
    ClawInstanceStatus,
    Condition,
    ConditionStatus,
    find_condition,
    set_condition,
)
from claw_operator.api.conditions import MOUNT_REPAIRED, STALLED
from claw_operator.api.reasons import EventReason, Reason
from claw_operator.lifecycle import conditions
from claw_operator.lifecycle.conditions import DEFAULTS, RECORDED_TYPES, ConditionValue
from claw_operator.lifecycle.model import (
    Action,
    Decision,
    EventRecord,
    EventType,
    Instance,
    LogRecord,
    Timings,
)


def _value(condition: Condition | None) -> ConditionValue | None:
    if condition is None:
        return None
    return ConditionValue(condition.status, condition.reason, condition.message)


def _recorded_from(source: Sequence[Condition], instance: Instance) -> dict[str, ConditionValue]:
    recorded = {type_: _value(find_condition(source, type_)) or DEFAULTS[type_] for type_ in RECORDED_TYPES}
    # MountRepaired reports a repair "during this generation": a new spec starts it afresh.
    repaired = find_condition(source, MOUNT_REPAIRED)
    if repaired is not None and repaired.observed_generation != instance.generation:
        recorded[MOUNT_REPAIRED] = DEFAULTS[MOUNT_REPAIRED]
    return recorded


@dataclass
class Draft:
    instance: Instance
    now: datetime
    timings: Timings
    status: ClawInstanceStatus
    # The conditions as read from the apiserver: lastTransitionTime is computed against them,
    # so a condition that `decide` flipped and `settle` flipped back never shows a transition.
    basis: Sequence[Condition]
    recorded: dict[str, ConditionValue]
    events: list[EventRecord] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    overrides: dict[str, ConditionValue] = field(default_factory=dict)

    @classmethod
    def begin(cls, instance: Instance, now: datetime, timings: Timings) -> Draft:
        """The draft `decide` starts from: the status as read."""
        return cls._from(instance, instance.status, now, timings)

    @classmethod
    def resume(cls, instance: Instance, decided: Decision, now: datetime, timings: Timings) -> Draft:
        """The draft `settle` starts from: what `decide` left, its events and logs kept."""
        draft = cls._from(instance, decided.status, now, timings)
        draft.events = list(decided.events)
        draft.logs = list(decided.logs)
        return draft

    @classmethod
    def _from(cls, instance: Instance, status: ClawInstanceStatus, now: datetime, timings: Timings) -> Draft:
        return cls(
            instance=instance,
            now=now,
            timings=timings,
            status=_copy_status(status),
            basis=instance.status.conditions,
            recorded=_recorded_from(status.conditions, instance),
        )

    # ------------------------------------------------------------------ recording

    def condition(self, type_: str) -> ConditionValue:
        if type_ in self.recorded:
            return self.recorded[type_]
        override = self.overrides.get(type_)
        if override is None:
            raise ValueError(f"{type_} is derived at finish(); only recorded conditions can be read")
        return override

    def record(self, type_: str, status: ConditionStatus, reason: Reason, message: str = "") -> None:
        """Set one of the recorded conditions (Stalled, StartFailed, MountRepaired, Restarting)."""
        if type_ not in RECORDED_TYPES:
            raise ValueError(f"{type_} is derived at finish(); use override() to force it")
        self.recorded[type_] = ConditionValue(status, reason, message)

    def override(self, type_: str, value: ConditionValue) -> None:
        """Force a derived condition (Ready, Reconciling), e.g. while paused."""
        self.overrides[type_] = value

    def event(self, type_: EventType, reason: EventReason, message: str) -> None:
        self.events.append(EventRecord(type=type_, reason=reason, message=message))

    def log(self, action: str, **details: object) -> None:
        """A structured log line with KiloClaw's action name; the Fly ids are always included."""
        base: dict[str, object] = {"machine_id": self.status.machine_id, "volume_id": self.status.volume_id}
        self.logs.append(LogRecord(action=action, details={**base, **details}))

    @property
    def stalled(self) -> bool:
        return self.recorded[STALLED].is_true

    # ------------------------------------------------------------------ the end of a pass

    def finish(
        self,
        action: Action | None = None,
        *,
        requeue_after: float | None = None,
        retry: bool = False,
        finalize: bool = False,
        handled: bool = True,
        write_can_wait: bool = False,
    ) -> Decision:
        """Freeze the pass into a Decision. `handled=False` (paused): the pass acted neither on
        the spec nor on the reconcile request, so neither observedGeneration nor the request
        moves."""
        instance = self.instance
        status = self.status
        status.app_name = instance.app
        if status.region is None:
            status.region = instance.spec.region
        if status.restarting_at is None:
            # The guard's recorded version and request live and die with the guard.
            status.restarting_instance_id = None
            status.restarting_for = None
        baseline_for = status.restart_baseline_for
        if baseline_for is not None and (
            baseline_for != instance.spec.restarted_at or baseline_for == status.handled_restarted_at
        ):
            # A request's boot baseline (lifecycle.boots) lives until the request is handled
            # or replaced — across a failed restart, unlike the guard.
            status.restart_baseline_for = None
            status.restart_baseline_at = None
        # Only a pass that acted on this generation may say so (kstatus/Flux read "Current"
        # from it): a paused pass leaves observedGeneration, and the conditions', as they were.
        generation = instance.generation if handled else instance.status.observed_generation
        status.observed_generation = generation
        if handled and instance.reconcile_request is not None:
            status.last_handled_reconcile_at = instance.reconcile_request

        values = dict(self.recorded)
        for type_, derive in conditions.DERIVED.items():
            values[type_] = self.overrides.get(type_) or derive(instance, status, self.recorded)
        written: list[Condition] = list(self.basis)
        for type_ in CONDITION_TYPES:
            value = values[type_]
            written = set_condition(
                written,
                type_,
                value.status,
                value.reason,
                value.message,
                generation=generation,
                now=self.now,
            )
        status.conditions = sorted(written, key=lambda c: _ORDER.get(c.type, len(_ORDER)))
        return Decision(
            status=status,
            action=action,
            events=tuple(self.events),
            logs=tuple(self.logs),
            requeue_after=requeue_after,
            finalize=finalize,
            retry=retry,
            write_can_wait=write_can_wait,
            # Never written before (the status as read has no conditions; every written status
            # has all six): while a slow action runs, this status says what is being done.
            write_if_slow=action is not None and not instance.status.conditions,
        )


# Where each condition goes in status.conditions (others, unknown to this version, after them).
_ORDER: Final = {type_: index for index, type_ in enumerate(CONDITION_TYPES)}


def _copy_status(status: ClawInstanceStatus) -> ClawInstanceStatus:
    """A copy the draft may change: the fields are immutable values and `conditions` a list of
    conditions replaced whole (`set_condition` builds new ones), so a new list is all that must
    not be shared. (A deep copy was 13 % of a periodic check's CPU.)"""
    return status.model_copy(update={"conditions": list(status.conditions)})
