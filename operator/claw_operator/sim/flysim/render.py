"""Objects as Fly puts them on the wire (field names of §3 and the OpenAPI spec)."""

from __future__ import annotations

import re
import time
from typing import Any

from .machines import MachineLifecycle, image_tag, rfc3339
from .model import App, Lease, Machine, MachineEvent, Volume, VolumeSnapshot

_BLOCK_SIZE = 4096
# Sentinel images for the machine's `checks` (each check in config.checks is reported):
# `sim-unhealthy` never passes; `sim-healthy-after-<seconds>` passes that long after each start.
SENTINEL_UNHEALTHY = "sim-unhealthy"
_SENTINEL_HEALTHY_AFTER = re.compile(r"^sim-healthy-after-(\d+(\.\d+)?)$")


def checks_json(machine: Machine, now: float) -> list[dict[str, Any]]:
    """The status of each check of the config, as flyd reports them in the machine GET [D]."""
    checks = machine.config.get("checks")
    if not isinstance(checks, dict) or not checks:
        return []
    tag = image_tag(str(machine.config.get("image", "")))
    starts = [e.timestamp_ms / 1000 for e in machine.events if e.type == "start"]
    started = starts[-1] if starts and machine.state == "started" else None
    after = _SENTINEL_HEALTHY_AFTER.match(tag)
    reported = []
    for name in sorted(checks):
        check = checks[name] if isinstance(checks[name], dict) else {}
        target = f"{check.get('type', 'http')} :{check.get('port', '?')}{check.get('path', '')}"
        if started is None:
            status, output = "critical", "the machine is not started"
        elif tag == SENTINEL_UNHEALTHY:
            status, output = "critical", f"{target}: connect: connection refused"
        elif after is not None and now - started < float(after.group(1)):
            status, output = "critical", f"{target}: 503 Service Unavailable"
        else:
            status, output = "passing", f"{target}: 200 OK"
        reported.append({"name": name, "status": status, "output": output, "updated_at": rfc3339(now)})
    return reported


def event_json(event: MachineEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "status": event.status,
        "source": event.source,
        "timestamp": event.timestamp_ms,
        "request": event.request,
    }


def events_json(machine: Machine, limit: int) -> list[dict[str, Any]]:
    """Newest first [D]."""
    return [event_json(e) for e in reversed(machine.events[-limit:])] if limit > 0 else []


def machine_json(
    machine: Machine,
    *,
    summary: bool = False,
    embedded_events: int = 10,
    nonce: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """A Machine; `nonce` only in the answer to the create/update that took a lease [D]."""
    body: dict[str, Any] = {
        "id": machine.id,
        "name": machine.name,
        "state": machine.state,
        "region": machine.region,
        "instance_id": machine.instance_id,
        "version": machine.instance_id,
        "private_ip": machine.private_ip,
        "created_at": rfc3339(machine.created_at),
        "updated_at": rfc3339(machine.updated_at),
        "image_ref": machine.image_ref,
        "host_status": machine.host.status,
    }
    if machine.cordoned:
        body["cordoned"] = True
    if summary:
        return body
    if machine.host.status == "ok":
        body["config"] = machine.config
    else:
        # With the host unreachable Fly serves what it has as `incomplete_config` [D][O].
        body["incomplete_config"] = machine.config
    body["events"] = events_json(machine, embedded_events)
    body["checks"] = checks_json(machine, time.time() if now is None else now)
    if nonce:
        body["nonce"] = nonce
    return body


def volume_json(volume: Volume) -> dict[str, Any]:
    blocks = volume.size_gb * 1024**3 // _BLOCK_SIZE
    return {
        "id": volume.id,
        "name": volume.name,
        "state": volume.state,
        "size_gb": volume.size_gb,
        "region": volume.region,
        "zone": volume.host.zone,
        "encrypted": volume.encrypted,
        "attached_machine_id": volume.attached_machine_id,
        "attached_alloc_id": volume.attached_alloc_id,
        "created_at": rfc3339(volume.created_at),
        "blocks": blocks,
        "block_size": _BLOCK_SIZE,
        "blocks_free": blocks,
        "blocks_avail": blocks,
        "fstype": volume.fstype,
        "snapshot_retention": volume.snapshot_retention,
        "auto_backup_enabled": volume.auto_backup_enabled,
        "host_status": volume.host.status,
    }


def snapshot_json(snapshot: VolumeSnapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "size": snapshot.size,
        "digest": snapshot.digest,
        "created_at": rfc3339(snapshot.created_at),
        "retention_days": snapshot.retention_days,
        "status": snapshot.status,
        "volume_size": snapshot.volume_size,
    }


def lease_envelope(lease: Lease, *, with_nonce: bool = True) -> dict[str, Any]:
    """The envelope fly-go and flyctl read; the spec's flat `Lease` is its `data` [C][O]."""
    return {"status": "success", "data": MachineLifecycle.lease_data(lease, with_nonce=with_nonce)}


def app_json(app: App, machine_count: int, volume_count: int) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "status": app.status,
        "organization": {"name": app.org_slug, "slug": app.org_slug},
        "network": app.network,
        "machine_count": machine_count,
        "volume_count": volume_count,
    }
