"""The ClawInstance `status`: what the operator observed and did. Written only by the operator."""

from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import Field

from claw_operator.api.conditions import Condition
from claw_operator.api.timefmt import MicroTimestamp, Timestamp
from claw_operator.api.wire import WireModel


class Phase(StrEnum):
    """KiloClaw's five instance statuses."""

    PROVISIONED = "Provisioned"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPED = "Stopped"
    DESTROYING = "Destroying"


class DestroyOp(StrEnum):
    MACHINE = "machine"
    VOLUME = "volume"
    RECOVER = "recover"


class CapacityRecovery(StrEnum):
    """How a capacity recovery moves the instance off a volume whose host is full."""

    REPLACE = "Replace"  # the volume never held data: a new, empty one replaces it
    FORK = "Fork"  # the volume holds data: it is forked (copied) onto a host with room


class ClawInstanceStatus(WireModel):
    """Observed state of a ClawInstance."""

    phase: Phase | None = Field(
        default=None,
        description="Provisioned, Starting, Running, Stopped or Destroying.",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the last completed reconcile acted on."
    )
    app_name: str | None = Field(default=None, description="Fly app that owns the machine and volume.")
    region: str | None = Field(default=None, description="Fly region the objects live in.")
    machine_id: str | None = Field(
        default=None,
        description="Fly Machine id; written as soon as Fly returns it, before any wait.",
    )
    volume_id: str | None = Field(
        default=None, description="Fly Volume id: the volume the machine mounts (or will mount)."
    )
    volume_size_gb: int | None = Field(
        default=None,
        ge=0,
        alias="volumeSizeGB",
        description="The volume's size in GB as Fly last reported it; below spec.volume.sizeGB "
        "while a grow is pending (Ready=False, reason Resizing).",
    )
    volume_missing_since: Timestamp | None = Field(
        default=None,
        description="When a read of the volume first answered 404. The volume is declared lost "
        "only if a read at least the loss grace period later answers 404 too and a listing by "
        "name does not show it; cleared when it is seen again.",
    )
    machine_missing_since: Timestamp | None = Field(
        default=None,
        description="When a read of the machine first answered 404 (same rule as "
        "volumeMissingSince, with a listing by the instance UID tag).",
    )
    lost_volume_id: str | None = Field(
        default=None,
        description="The last volume Fly proved lost (replaced by a new, empty one).",
    )
    last_volume_loss_at: Timestamp | None = Field(
        default=None, description="When the volume lostVolumeId was declared lost and replaced."
    )
    used_volume_id: str | None = Field(
        default=None,
        description="The last volume a machine of the instance was seen launched on (past "
        "`created`): it may hold data even when no check saw the machine started, so a capacity "
        "recovery forks it, never replaces it with an empty one.",
    )
    stranded_volume_id: str | None = Field(
        default=None,
        description="Set while a capacity recovery is in progress: the volume whose host has no "
        "room for the machine. It is deleted (and this cleared) only once the recovery is done: "
        "after the machine was created on the replacement (Replace), or after the machine on the "
        "fork started (Fork).",
    )
    superseded_volume_ids: list[Annotated[str, Field(description="A Fly volume id.")]] | None = Field(
        default=None,
        description="Older volumes of a capacity recovery that moved more than once (the fork's "
        "host was full too after a machine was launched on it, so the fork was forked in turn): "
        "kept, with the data they may hold, until a machine on the newest volume has started, then "
        "deleted (before strandedVolumeId). Unset outside such a recovery.",
    )
    stranded_region: str | None = Field(
        default=None, description="The region of strandedVolumeId (reported in the recovery's Events)."
    )
    stranded_at: Timestamp | None = Field(
        default=None,
        description="When the recovery in progress took its last step: the capacity error that began "
        "it, then the creation (or adoption) of the replacement or fork.",
    )
    capacity_recovery: CapacityRecovery | None = Field(
        default=None,
        description="The recovery in progress: Replace (the volume never held data: a new, empty "
        "one) or Fork (status.lastStartedAt was set: a copy on another host, never a new empty one).",
    )
    machine_state: str | None = Field(
        default=None, description="Last observed Fly machine state (started, stopped, ...)."
    )
    instance_id: str | None = Field(
        default=None, description="Last observed Fly machine version (instance_id)."
    )
    starting_at: Timestamp | None = Field(default=None, description="When the current start began.")
    last_started_at: Timestamp | None = Field(
        default=None, description="When the machine last reached started."
    )
    last_stopped_at: Timestamp | None = Field(
        default=None, description="When the machine was last seen or made stopped."
    )
    last_start_error_message: str | None = Field(
        default=None, description="Error of the last failed start; cleared by the next successful start."
    )
    last_start_error_at: Timestamp | None = Field(default=None, description="When the last start failed.")
    last_destroy_error_op: DestroyOp | None = Field(
        default=None, description="Destroy step that last failed: machine, volume or recover."
    )
    last_destroy_error_status: int | None = Field(
        default=None, description="HTTP status of the last failed destroy step (0 when none was received)."
    )
    last_destroy_error_message: str | None = Field(
        default=None,
        description="Error of the last failed destroy step; cleared by a successful (or 404) delete.",
    )
    last_destroy_error_at: Timestamp | None = Field(
        default=None, description="When the last destroy step failed."
    )
    pending_destroy_machine_id: str | None = Field(
        default=None, description="Machine still to be destroyed (two-phase destroy bookkeeping)."
    )
    pending_destroy_volume_id: str | None = Field(
        default=None, description="Volume still to be destroyed (two-phase destroy bookkeeping)."
    )
    destroyed_at: Timestamp | None = Field(
        default=None,
        description="When the destroy completed (machine and volume gone); the finalizer is "
        "being released. Keeps a repeated last pass from reporting the deletion twice.",
    )
    restarting_at: Timestamp | None = Field(
        default=None,
        description="Set while a restart (stop, update, start) is in flight; absent otherwise.",
    )
    restarting_instance_id: str | None = Field(
        default=None,
        description=(
            "The machine version (instance_id) when the restart guard was set. A resumed restart "
            "that finds the machine on another version with nothing left to change is complete: "
            "it is never stopped, updated and started a second time."
        ),
    )
    crash_count: int = Field(
        default=0,
        ge=0,
        description="Consecutive crashes: the machine failed, or its process exited on its own, "
        "within the crash window (--crash-window) of its start. Each one doubles the wait before "
        "the next start (--crash-backoff, capped by --crash-backoff-max); reset after a run longer "
        "than the window.",
    )
    last_crash_at: Timestamp | None = Field(
        default=None, description="When the last crash was seen; cleared with crashCount."
    )
    unhealthy_since: Timestamp | None = Field(
        default=None,
        description="With spec.healthCheck: since when the started machine's checks have not "
        "passed (Ready=False, reason Unhealthy); cleared when they pass or the machine stops.",
    )
    health_check_output: str | None = Field(
        default=None,
        max_length=1024,
        description="The failing check's name, status and output, as Fly last reported them.",
    )
    restarting_for: str | None = Field(
        default=None,
        description=(
            "The spec.restartedAt value the restart in flight serves (written with the guard): a "
            "restart found already applied marks that request handled, not a newer one."
        ),
    )
    restart_baseline_for: str | None = Field(
        default=None,
        description="The spec.restartedAt value restartBaselineAt was recorded for.",
    )
    restart_baseline_at: MicroTimestamp | None = Field(
        default=None,
        description=(
            "Fly's time of the machine when the operator began serving spec.restartedAt = "
            "restartBaselineFor (its latest start event, or its updated_at if later; to the "
            "microsecond), written before the first Fly call that may serve it. A start event "
            "Fly shows after it is a boot after the request: the machine was stopped and started "
            "again, so the request is served even if the calls that did it got no answer or an "
            "error although Fly applied them, and it is never restarted a second time. Cleared "
            "once the request is handled."
        ),
    )
    stopped_checks: int = Field(
        default=0,
        ge=0,
        description="Consecutive periodic checks that saw a desired-running machine stopped.",
    )
    handled_restarted_at: str | None = Field(
        default=None, description="The spec.restartedAt value last acted on."
    )
    last_handled_reconcile_at: str | None = Field(
        default=None, description="Echo of the claw.dev/reconcile-requested-at annotation, when handled."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled, StartFailed, MountRepaired and Restarting.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )

    def __setattr__(self, name: str, value: Any) -> None:
        # Assigning a field the value it already holds changes nothing the model shows (its
        # fields, equality, wire form) but costs a validation: a quiet check's decision makes a
        # dozen such assignments, a fifth of its CPU (issue 13). Only immutable scalars of the
        # very type held (an equal value of another type, e.g. a str for a Phase, is still
        # validated), and a list holding the very same items (conditions kept unchanged).
        current = self.__dict__.get(name, _ABSENT)
        if type(current) is type(value) and (
            (type(value) in _SCALARS and current == value)
            or (
                type(value) is list
                and len(value) == len(current)
                and all(new is old for new, old in zip(value, current, strict=True))
            )
        ):
            return
        super().__setattr__(name, value)


_ABSENT: Final = object()
_SCALARS: Final = frozenset({type(None), bool, int, str, Phase, DestroyOp, CapacityRecovery})
