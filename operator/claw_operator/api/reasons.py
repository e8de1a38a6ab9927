"""The one vocabulary of reasons: every condition reason and every Event reason the operator
writes, as enum members (CamelCase values, as kstatus and `kubectl describe` show them).

`docs/troubleshooting.md` explains each one (a test iterates these enums); the decisions use
the members, never string literals.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """`reason` of a condition (Ready, Reconciling, Stalled, StartFailed, MountRepaired,
    Restarting). Several are shared between conditions."""

    # Ready / Reconciling: where the instance stands.
    RUNNING = "Running"
    STOPPED = "Stopped"
    STARTING = "Starting"
    STOPPING = "Stopping"
    PROVISIONING = "Provisioning"
    RESTARTING = "Restarting"
    REPAIRING_MOUNT = "RepairingMount"
    DESTROYING = "Destroying"
    PAUSED = "Paused"
    RECONCILED = "Reconciled"
    STALLED = "Stalled"
    MACHINE_NOT_STARTED = "MachineNotStarted"
    RESIZING = "Resizing"
    # Reconciling=True: nothing can be created yet, a listing by UID tag or volume name cannot
    # prove that no earlier create landed (it failed, or Fly's lists may not show it yet).
    LISTING_INCONCLUSIVE = "ListingInconclusive"
    # Ready=False: started, but spec.healthCheck does not pass.
    UNHEALTHY = "Unhealthy"
    # Ready=Unknown while a 404 waits for its second look (loss only on proof).
    NOT_FOUND_ONCE = "NotFoundOnce"
    # Stalled: what blocks progress until the spec or the environment changes.
    NOT_STALLED = "NotStalled"
    INVALID_CONFIG = "InvalidConfig"
    UNAUTHORIZED = "Unauthorized"
    QUOTA_EXCEEDED = "QuotaExceeded"
    START_TIMEOUT = "StartTimeout"
    SECRET_NOT_FOUND = "SecretNotFound"
    # StartFailed: the last start.
    NOT_STARTED = "NotStarted"
    STARTED = "Started"
    START_FAILED = "StartFailed"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    FLY_API_ERROR = "FlyAPIError"
    # StartFailed (and Ready): the machine keeps stopping soon after its start.
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    # MountRepaired.
    NO_REPAIR = "NoRepair"
    MOUNT_REPAIRED = "MountRepaired"
    REPAIR_FAILED = "RepairFailed"
    # Restarting: why a restart runs, and how the last one ended.
    NOT_RESTARTING = "NotRestarting"
    RESTART_REQUESTED = "RestartRequested"
    CONFIG_CHANGED = "ConfigChanged"
    MOUNT_REPAIR = "MountRepair"
    RESTART_SUCCEEDED = "RestartSucceeded"
    RESTART_FAILED = "RestartFailed"


class EventReason(StrEnum):
    """`reason` of the Kubernetes Events posted on a ClawInstance (one per transition)."""

    VOLUME_CREATED = "VolumeCreated"
    MACHINE_CREATED = "MachineCreated"
    STARTED = "Started"
    START_FAILED = "StartFailed"
    START_TIMEOUT = "StartTimeout"
    RESTARTING = "Restarting"
    RESTARTED = "Restarted"
    RESTART_FAILED = "RestartFailed"
    MOUNT_REPAIRED = "MountRepaired"
    STOPPED = "Stopped"
    MACHINE_LOST = "MachineLost"
    VOLUME_LOST = "VolumeLost"
    VOLUME_REPLACED = "VolumeReplaced"
    VOLUME_FORKED = "VolumeForked"
    MACHINE_RECOVERED = "MachineRecovered"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    UNHEALTHY = "Unhealthy"
    DESTROYING = "Destroying"
    DESTROY_FAILED = "DestroyFailed"
    DESTROYED = "Destroyed"
    PAUSED = "Paused"
    HANDED_OVER = "HandedOver"  # `--shards auto`: another operator replica reconciles it now
