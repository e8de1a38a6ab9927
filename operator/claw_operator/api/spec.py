"""The ClawInstance `spec`: what the user declares.

Field names, defaults and validation are fixed by the contract (clawinstance-api.md). The CRD
schema is generated from these models (`claw_operator.api.crd`), so every `description` here is
what `kubectl explain` shows, and every `x-kubernetes-validations` rule is enforced by the
apiserver.
"""

import re
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, field_validator, model_validator

from claw_operator.api.wire import WireModel

APP_PATTERN: Final = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
REGION_PATTERN: Final = r"^[a-z]{3}$"
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A Kubernetes object name (DNS-1123 subdomain), for Secret references.
SECRET_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"
MOUNT_PATH_PATTERN: Final = r"^/[^\x00]*$"
# A Go duration as Fly's checks take it: "15s", "1m30s", "500ms".
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
HTTP_PATH_PATTERN: Final = r"^/[^\s\x00]*$"
RESERVED_ENV_PREFIX: Final = "FLY_"
# The total size of spec.env (names plus values, in characters). Fly answers 413 to machine
# configs far above it and documents no limit; the operator also checks the rendered config
# (secretEnv values included) before sending it.
MAX_ENV_CHARS: Final = 128 * 1024

_ENV_NAME_RE: Final = re.compile(ENV_NAME_PATTERN)


def _check_env_name(name: str) -> str:
    if not _ENV_NAME_RE.match(name):
        raise ValueError(f"env name {name!r} must match {ENV_NAME_PATTERN}")
    if name.startswith(RESERVED_ENV_PREFIX):
        raise ValueError(f"env name {name!r} must not start with {RESERVED_ENV_PREFIX} (reserved by Fly)")
    return name


class CpuKind(StrEnum):
    SHARED = "shared"
    PERFORMANCE = "performance"


class DesiredState(StrEnum):
    RUNNING = "Running"
    STOPPED = "Stopped"


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class Guest(WireModel):
    """The Fly Machine's size."""

    cpu_kind: CpuKind = Field(
        default=CpuKind.SHARED,
        description="Fly CPU kind of the machine: `shared` or `performance`.",
    )
    cpus: int = Field(default=2, ge=1, le=8, description="Number of vCPUs (1-8).")
    memory_mb: int = Field(
        default=3072,
        ge=256,
        le=16384,
        multiple_of=256,
        alias="memoryMB",
        description="Memory in MiB (256-16384, a multiple of 256).",
    )


class VolumeSpec(WireModel):
    """The Fly Volume that holds the instance's data."""

    size_gb: int = Field(
        default=10,
        ge=1,
        le=500,
        alias="sizeGB",
        description=(
            "Volume size in GB at creation (1-500). Growing it extends the Fly volume; shrinking is rejected."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self >= oldSelf",
                    "message": "volume.sizeGB cannot shrink (Fly volumes can only be extended)",
                }
            ]
        },
    )
    mount_path: str = Field(
        default="/root",
        min_length=1,
        max_length=255,
        pattern=MOUNT_PATH_PATTERN,
        description="Absolute path where the volume must be mounted in the machine.",
    )


class HealthCheck(WireModel):
    """An HTTP check of the machine, run by Fly (rendered as the machine's `checks`)."""

    port: int = Field(ge=1, le=65535, description="Port the machine's process answers on (1-65535).")
    path: str = Field(
        default="/",
        min_length=1,
        max_length=1024,
        pattern=HTTP_PATH_PATTERN,
        description="Absolute HTTP path to GET; a 2xx answer passes.",
    )
    interval: str = Field(
        default="15s", max_length=32, pattern=DURATION_PATTERN, description="How often Fly checks (`15s`)."
    )
    timeout: str = Field(
        default="10s",
        max_length=32,
        pattern=DURATION_PATTERN,
        description="How long one check may take (`10s`).",
    )
    grace_period: str = Field(
        default="30s",
        max_length=32,
        pattern=DURATION_PATTERN,
        description=(
            "Time after a start during which failing checks are expected (`30s`): `Ready` stays "
            "False (`Unhealthy`) until they pass, but the Warning Event waits for this long."
        ),
    )


class SecretKeySelector(WireModel):
    """A key of a Secret in the ClawInstance's namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_NAME_PATTERN,
        description="Name of the Secret, in the same namespace as the ClawInstance.",
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="Key within the Secret whose value becomes the environment value.",
    )


class SecretEnvVar(WireModel):
    """An environment variable whose value is read from a Secret."""

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable name; must not start with `FLY_`.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!self.startsWith('FLY_')",
                    "message": "secretEnv names must not start with FLY_ (reserved by Fly)",
                }
            ]
        },
    )
    secret_key_ref: SecretKeySelector = Field(
        description="The Secret key holding the value. The value never appears in status, "
        "events, logs or metrics.",
    )

    @field_validator("name")
    @classmethod
    def _name_not_reserved(cls, value: str) -> str:
        return _check_env_name(value)


_ENV_RULE: Final = (
    "self.all(k, k.matches('" + ENV_NAME_PATTERN + "') && !k.startsWith('" + RESERVED_ENV_PREFIX + "'))"
)
_ENV_SIZE_RULE: Final = f"self.map(k, size(k) + size(self[k])).sum() <= {MAX_ENV_CHARS}"
_SECRET_ENV_DISJOINT_RULE: Final = (
    "!has(self.env) || !has(self.secretEnv) || self.secretEnv.all(e, !(e.name in self.env))"
)
_FALLBACK_NOT_REGION_RULE: Final = (
    "!has(self.fallbackRegions) || !self.fallbackRegions.exists(r, r == self.region)"
)
_APP_IMMUTABLE_RULE: Final = (
    "has(self.app) == has(oldSelf.app) && (!has(self.app) || self.app == oldSelf.app)"
)


class ClawInstanceSpec(WireModel):
    """What the user declares: one Fly Volume plus one Fly Machine mounting it."""

    model_config = WireModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": _APP_IMMUTABLE_RULE,
                    "message": "app is immutable",
                    "fieldPath": ".app",
                },
                {
                    "rule": _SECRET_ENV_DISJOINT_RULE,
                    "message": "a name may appear in env or in secretEnv, not in both",
                    "fieldPath": ".secretEnv",
                },
                {
                    "rule": _FALLBACK_NOT_REGION_RULE,
                    "message": "fallbackRegions must not contain region",
                    "fieldPath": ".fallbackRegions",
                },
            ]
        }
    }

    app: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=APP_PATTERN,
        description=(
            "Fly app that owns the machine and volume. Defaults to the operator's "
            "`--default-app` (env `FLY_APP`). Immutable."
        ),
    )
    region: str = Field(
        pattern=REGION_PATTERN,
        min_length=3,
        max_length=3,
        description="Fly region of the volume and machine, e.g. `iad`. Immutable.",
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "region is immutable"}]
        },
    )
    image: str = Field(
        min_length=1,
        max_length=512,
        description="OCI image of the machine. Changing it updates the machine in place (a restart).",
    )
    guest: Guest = Field(default_factory=Guest, description="The machine's CPU and memory.")
    volume: VolumeSpec = Field(
        default_factory=VolumeSpec, description="The Fly Volume holding the instance's data."
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Plain environment variables. Names match `[A-Za-z_][A-Za-z0-9_]*` and must not "
            f"start with `FLY_`; names and values together at most {MAX_ENV_CHARS} characters. "
            "Changing them restarts the machine."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": _ENV_RULE,
                    "message": "env names must match [A-Za-z_][A-Za-z0-9_]* and must not start with FLY_",
                },
                {
                    "rule": _ENV_SIZE_RULE,
                    "message": f"env is too large: its names and values together must stay within "
                    f"{MAX_ENV_CHARS} characters (Fly refuses larger machine configs)",
                },
            ]
        },
    )
    secret_env: Annotated[list[SecretEnvVar], Field(max_length=256)] = Field(
        default_factory=list,
        description=(
            "Environment variables whose values are read from Secrets in the same namespace. "
            "Changing them (or the Secret's value) restarts the machine."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    state: DesiredState = Field(
        default=DesiredState.RUNNING,
        description="Desired power state: `Running`, or `Stopped` (stops the machine, keeps the volume).",
    )
    restarted_at: str | None = Field(
        default=None,
        max_length=256,
        description=(
            "Change this value (a timestamp by convention) to request a restart, like "
            "`kubectl rollout restart`."
        ),
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description=(
            "On delete: `Delete` destroys the machine then the volume; `Orphan` leaves both on Fly."
        ),
    )
    fallback_regions: Annotated[
        list[
            Annotated[
                str,
                Field(pattern=REGION_PATTERN, min_length=3, max_length=3, description="A Fly region code."),
            ]
        ],
        Field(max_length=8),
    ] = Field(
        default_factory=list,
        description=(
            "Regions to create the volume in, in order, when `region` has no capacity for it "
            "(KiloClaw's region fallback); must not contain `region`. The machine goes where "
            "the volume is: `status.region` records where that is."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(r, self.exists_one(s, s == r))",
                    "message": "fallbackRegions must be unique",
                }
            ],
        },
    )
    health_check: HealthCheck | None = Field(
        default=None,
        description=(
            "An HTTP check rendered as the Fly machine's `checks`. While it does not pass, "
            "`Ready=False` with reason `Unhealthy` (the phase stays `Running`). Unset: `Ready` "
            "follows Fly's `started`."
        ),
    )

    @field_validator("env")
    @classmethod
    def _env_names_valid(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            _check_env_name(name)
        return value

    @model_validator(mode="after")
    def _fallback_regions_valid(self) -> "ClawInstanceSpec":
        if self.region in self.fallback_regions:
            raise ValueError("fallbackRegions must not contain region")
        if len(set(self.fallback_regions)) != len(self.fallback_regions):
            raise ValueError("fallbackRegions must be unique")
        return self

    @model_validator(mode="after")
    def _env_and_secret_env_disjoint(self) -> "ClawInstanceSpec":
        clash = sorted({item.name for item in self.secret_env} & set(self.env))
        if clash:
            raise ValueError(f"names in both env and secretEnv: {', '.join(clash)}")
        return self
