"""Typed models of the ClawInstance spec and status, its conditions, and the CRD generated
from them (the schema's single source of truth)."""

from claw_operator.api.conditions import (
    CONDITION_TYPES,
    Condition,
    ConditionStatus,
    find_condition,
    set_condition,
)
from claw_operator.api.resource import (
    API_VERSION,
    CATEGORY,
    FINALIZER,
    GROUP,
    KIND,
    PAUSED_ANNOTATION,
    PLURAL,
    RECONCILE_REQUEST_ANNOTATION,
    SHORT_NAME,
    SINGULAR,
    VERSION,
)
from claw_operator.api.spec import (
    ClawInstanceSpec,
    CpuKind,
    DeletionPolicy,
    DesiredState,
    Guest,
    HealthCheck,
    SecretEnvVar,
    SecretKeySelector,
    VolumeSpec,
)
from claw_operator.api.status import CapacityRecovery, ClawInstanceStatus, DestroyOp, Phase

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "CONDITION_TYPES",
    "FINALIZER",
    "GROUP",
    "KIND",
    "PAUSED_ANNOTATION",
    "PLURAL",
    "RECONCILE_REQUEST_ANNOTATION",
    "SHORT_NAME",
    "SINGULAR",
    "VERSION",
    "CapacityRecovery",
    "ClawInstanceSpec",
    "ClawInstanceStatus",
    "Condition",
    "ConditionStatus",
    "CpuKind",
    "DeletionPolicy",
    "DesiredState",
    "DestroyOp",
    "Guest",
    "HealthCheck",
    "Phase",
    "SecretEnvVar",
    "SecretKeySelector",
    "VolumeSpec",
    "find_condition",
    "set_condition",
]
