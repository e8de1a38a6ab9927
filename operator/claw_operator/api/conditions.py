"""`metav1.Condition`-shaped conditions and the one helper that changes them.

kstatus, Argo CD and Flux read `lastTransitionTime` as "when did this flip", so it moves only
when `status` changes; `observedGeneration` says which spec the condition speaks for.
"""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import ConfigDict, Field

from claw_operator.api.timefmt import Timestamp
from claw_operator.api.wire import WireModel

READY: Final = "Ready"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"
START_FAILED: Final = "StartFailed"
MOUNT_REPAIRED: Final = "MountRepaired"
RESTARTING: Final = "Restarting"

# Every condition is present from the first reconcile on (Unknown until known), in this order.
CONDITION_TYPES: Final = (READY, RECONCILING, STALLED, START_FAILED, MOUNT_REPAIRED, RESTARTING)

REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(WireModel):
    """One observation about the ClawInstance (metav1.Condition)."""

    # Frozen: a condition is replaced, never changed in place (`set_condition`), so copies of a
    # status (a pass's draft) share them safely.
    model_config = ConfigDict(frozen=True)

    type: str = Field(
        min_length=1,
        max_length=316,
        description="Condition type: Ready, Reconciling, Stalled, StartFailed, MountRepaired, Restarting.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=REASON_PATTERN,
        description="CamelCase reason for the condition's last transition or current state.",
    )
    message: str = Field(
        default="",
        max_length=32768,
        description="Human-readable detail (e.g. the last start error).",
    )
    last_transition_time: Timestamp = Field(
        description="When `status` last changed (not when the condition was last written).",
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation this condition was computed for.",
    )


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of that type, if present."""
    for condition in conditions:  # a plain loop: called for every condition of every pass
        if condition.type == type_:
            return condition
    return None


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Upsert a condition by type, returning a new list (the input is not modified).

    `lastTransitionTime` is kept when `status` is unchanged and set to `now` when it flips or
    the condition is new; `reason`, `message` and `observedGeneration` always take the new
    values. Other conditions keep their order; a new type is appended.
    """
    previous = find_condition(conditions, type_)
    if (
        previous is not None
        and previous.status == status
        and previous.reason == reason
        and previous.message == message
        and previous.observed_generation == generation
    ):
        # Nothing moves: the same condition (a pass stamps all six, most unchanged; building
        # each anew was most of `Draft.finish`, issue 13).
        return list(conditions)
    transition = previous.last_transition_time if previous is not None and previous.status == status else now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]
