"""The spec and status models speak the contract's wire names, defaults and validation."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from claw_operator.api import (
    ClawInstanceSpec,
    ClawInstanceStatus,
    CpuKind,
    DeletionPolicy,
    DesiredState,
    Phase,
)

MINIMAL: dict[str, Any] = {"region": "iad", "image": "registry.fly.io/claw:latest"}


def test_minimal_spec_takes_the_contract_defaults() -> None:
    spec = ClawInstanceSpec.model_validate(MINIMAL)
    assert spec.app is None
    assert spec.guest.cpu_kind is CpuKind.SHARED
    assert (spec.guest.cpus, spec.guest.memory_mb) == (2, 3072)
    assert (spec.volume.size_gb, spec.volume.mount_path) == (10, "/root")
    assert spec.env == {} and spec.secret_env == []
    assert spec.state is DesiredState.RUNNING
    assert spec.restarted_at is None
    assert spec.deletion_policy is DeletionPolicy.DELETE


def test_spec_round_trips_camel_case() -> None:
    wire = {
        **MINIMAL,
        "app": "claw-apps",
        "guest": {"cpuKind": "performance", "cpus": 4, "memoryMB": 8192},
        "volume": {"sizeGB": 20, "mountPath": "/data"},
        "env": {"A": "1"},
        "secretEnv": [{"name": "TOKEN", "secretKeyRef": {"name": "creds", "key": "token"}}],
        "state": "Stopped",
        "restartedAt": "2026-11-24T08:00:00Z",
        "deletionPolicy": "Orphan",
        "fallbackRegions": ["ord", "ewr"],
        "healthCheck": {
            "port": 8080,
            "path": "/healthz",
            "interval": "15s",
            "timeout": "5s",
            "gracePeriod": "30s",
        },
    }
    spec = ClawInstanceSpec.model_validate(wire)
    assert spec.secret_env[0].secret_key_ref.key == "token"
    assert spec.to_wire() == wire


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"region": "12345"}, "region"),
        ({"guest": {"cpus": 0}}, "guest.cpus"),
        ({"guest": {"memoryMB": 300}}, "guest.memoryMB"),
        ({"state": "Paused"}, "state"),
        ({"env": {"FLY_X": "1"}}, "env"),
        ({"image": ""}, "image"),
        ({"volume": {"mountPath": "relative"}}, "volume.mountPath"),
    ],
)
def test_invalid_spec_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ClawInstanceSpec.model_validate({**MINIMAL, **change})
    locations = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert any(loc.startswith(field) for loc in locations), locations


def test_missing_image_is_refused() -> None:
    with pytest.raises(ValidationError, match="image"):
        ClawInstanceSpec.model_validate({"region": "iad"})


def test_env_and_secret_env_overlap_is_refused() -> None:
    with pytest.raises(ValidationError, match="TOKEN"):
        ClawInstanceSpec.model_validate(
            {
                **MINIMAL,
                "env": {"TOKEN": "x"},
                "secretEnv": [{"name": "TOKEN", "secretKeyRef": {"name": "s", "key": "k"}}],
            }
        )


def test_status_wire_names_and_times() -> None:
    status = ClawInstanceStatus(
        phase=Phase.STARTING,
        machine_id="148ed193b95e89",
        volume_id="vol_abc",
        starting_at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
        last_start_error_message="boom",
    )
    wire = status.to_wire()
    assert wire == {
        "phase": "Starting",
        "machineId": "148ed193b95e89",
        "volumeId": "vol_abc",
        "startingAt": "2026-11-24T08:00:00Z",
        "lastStartErrorMessage": "boom",
        "crashCount": 0,
        "stoppedChecks": 0,
        "conditions": [],
    }
    assert ClawInstanceStatus.model_validate(wire) == status


def test_empty_status_reads_from_nothing() -> None:
    assert ClawInstanceStatus.model_validate({}).phase is None


def test_a_status_assignment_is_validated_unless_it_repeats_the_value_held() -> None:
    """Assigning the value a field holds is skipped (a quiet decision makes a dozen such); any
    other assignment is validated as before: coerced, or refused."""
    status = ClawInstanceStatus(phase=Phase.RUNNING, observed_generation=2, app_name="app")
    status.phase = "Stopped"  # type: ignore[assignment]  # a str: still validated into a Phase
    assert status.phase is Phase.STOPPED
    with pytest.raises(ValidationError):
        status.observed_generation = -1
    with pytest.raises(ValidationError):
        status.phase = "Gone"  # type: ignore[assignment]
    status.app_name = "app"
    status.observed_generation = 2
    assert (status.app_name, status.observed_generation) == ("app", 2)
    status.region = None  # the default, held: nothing changes
    assert status == ClawInstanceStatus(phase=Phase.STOPPED, observed_generation=2, app_name="app")
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Running",
        "lastTransitionTime": "2026-11-24T07:00:00Z",
    }
    status.conditions = [ready]  # type: ignore[list-item]
    assert status.conditions[0].reason == "Running"  # other items: validated into Conditions
    before = status.conditions
    status.conditions = list(before)  # the very same items
    assert status.conditions[0] is before[0]
