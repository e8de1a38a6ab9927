"""Fly wire models: unknown fields survive, only what was present is sent back."""

import copy
from typing import Any

from claw_operator.fly import Lease, Machine, MachineConfig, Mount, OwnerTag, Volume
from claw_operator.fly.tags import METADATA_UID_KEY

MACHINE_FROM_FLY: dict[str, Any] = {
    "id": "1857156b526dd8",
    "name": "claw-abc",
    "state": "started",
    "region": "iad",
    "instance_id": "01HEPA330HZ37A78TK080NAK1M",
    "version": "01HEPA330HZ37A78TK080NAK1M",
    "private_ip": "fdaa:0:1::2",
    "created_at": "2026-11-24T07:00:00Z",
    "updated_at": "2026-11-24T07:00:01Z",
    "host_status": "ok",
    "some_future_top_level_field": {"x": 1},
    "config": {
        "image": "registry.fly.io/claw:1",
        "env": None,  # older responses carry explicit nulls: they must be echoed, not dropped
        "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 3072, "persist_rootfs": "never"},
        "metadata": {METADATA_UID_KEY: "uid-1"},
        "mounts": [{"volume": "vol_1234567890abcdef", "path": "/root", "extend_threshold_percent": 80}],
        "services": [
            {
                "protocol": "tcp",
                "internal_port": 18789,
                "autostart": False,
                "autostop": "off",
                "ports": [{"port": 443, "handlers": ["tls", "http"], "tls_options": {"alpn": ["h2"]}}],
                "future_service_knob": True,
            }
        ],
        "checks": {"controller": {"type": "http", "port": 18789, "path": "/_kilo/health", "kind": "ready"}},
        "restart": {"policy": ""},
        "init": {},
        "dns": {},
        "containers": [{"name": "sidecar", "image": "x"}],
        "rootfs": {"persist": "never", "size_gb": 5},
    },
}


def test_machine_config_round_trip_preserves_unknown_fields_and_nulls() -> None:
    machine = Machine.model_validate(copy.deepcopy(MACHINE_FROM_FLY))
    assert machine.config is not None
    assert machine.config.to_wire() == MACHINE_FROM_FLY["config"]
    assert machine.to_wire() == MACHINE_FROM_FLY


def test_changed_config_keeps_everything_else() -> None:
    machine = Machine.model_validate(copy.deepcopy(MACHINE_FROM_FLY))
    assert machine.config is not None
    repaired = machine.config.model_copy(update={"mounts": [Mount(volume="vol_new", path="/root")]})
    wire = repaired.to_wire()
    assert wire["mounts"] == [{"volume": "vol_new", "path": "/root"}]
    expected = {k: v for k, v in MACHINE_FROM_FLY["config"].items() if k != "mounts"}
    assert {k: v for k, v in wire.items() if k != "mounts"} == expected


def test_attribute_assignment_is_sent() -> None:
    config = MachineConfig(image="img")
    config.env = {"A": "1"}
    assert config.to_wire() == {"image": "img", "env": {"A": "1"}}


def test_built_config_sends_only_what_was_set() -> None:
    assert MachineConfig(image="img").to_wire() == {"image": "img"}


def test_machine_helpers() -> None:
    machine = Machine.model_validate({"id": "m1", "instance_id": "v1", "state": "destroying"})
    assert machine.current_version == "v1"
    assert machine.metadata == {}
    assert machine.is_gone
    assert Machine.model_validate({"id": "m", "version": "v2", "instance_id": "v1"}).current_version == "v2"


def test_volume_soft_deleted_states_count_as_gone() -> None:
    assert Volume.model_validate({"id": "vol_1", "state": "pending_destroy"}).is_gone
    assert not Volume.model_validate({"id": "vol_1", "state": "created"}).is_gone


def test_lease_accepts_envelope_and_flat_shapes() -> None:
    envelope = {
        "status": "success",
        "data": {"nonce": "abcdef012345", "expires_at": 1, "owner": "x@y", "version": "v1"},
    }
    assert Lease.from_response(envelope).nonce == "abcdef012345"
    assert Lease.from_response({"nonce": "0123456789ab", "expires_at": 2}).expires_at == 2


def test_owner_tag_names_and_metadata() -> None:
    owner = OwnerTag(uid="6F1C2A3B-1111-2222-3333-444455556666", namespace="team", name="claw")
    assert owner.metadata() == {
        "claw_instance_uid": owner.uid,
        "claw_namespace": "team",
        "claw_name": "claw",
    }
    assert owner.selector() == {"claw_instance_uid": owner.uid}
    assert owner.volume_name() == "claw_6f1c2a3b1111222233334444"
    assert len(owner.volume_name()) <= 30
    assert owner.machine_name() == "claw-6f1c2a3b-1111-2222-3333-444455556666"


def test_volume_names_fit_flys_rules_for_any_uid() -> None:
    from claw_operator.fly.tags import volume_name

    for uid in ("6F1C2A3B-1111-2222-3333-444455556666", "short", "weird.uid+chars"):
        name = volume_name(uid)
        assert name == OwnerTag(uid, "ns", "n").volume_name()
        assert len(name) <= 30 and all(c.isdigit() or c.islower() or c == "_" for c in name), name


def test_env_values_stay_out_of_repr_but_go_on_the_wire() -> None:
    config = MachineConfig(image="img", env={"API_KEY": "sekret-value"})
    machine = Machine(id="m1", config=config)
    assert "sekret-value" not in repr(machine) and "sekret-value" not in str(machine)
    assert config.to_wire()["env"] == {"API_KEY": "sekret-value"}
