"""`kubectl claw inspect`: one ClawInstance, its Events and its Fly side, in one report.

`build_report` is pure (the calls are made by the command): it turns what was read into one
plain dict, which `-o json|yaml` prints as is and `render_text` lays out for a person. No
secret reaches it: env *values* are never put in (keys only), the Fly token is never passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from claw_operator.api import RECONCILE_REQUEST_ANNOTATION, Phase
from claw_operator.kube.instance import is_paused, to_instance
from claw_operator.lifecycle.model import MachineView, Timings, VolumeView
from claw_operator.lifecycle.timing import cadence
from claw_operator.plugin.flyside import Drift, FlySide, drift, mounts_own_volume
from claw_operator.plugin.kubeside import event_time, parse_time

RECENT_K8S_EVENTS = 15


def age(since: datetime | None, now: datetime) -> str:
    """kubectl's compact age: 45s, 12m, 3h, 5d (<unknown> without a time)."""
    if since is None:
        return "<unknown>"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def guest_text(guest: Any) -> str | None:
    if guest is None:
        return None
    return f"{guest.cpu_kind}/{guest.cpus}cpu/{guest.memory_mb}MB"


def _machine(view: MachineView, own_volume: bool) -> dict[str, Any]:
    return {
        "id": view.id,
        "state": view.state,
        "version": view.instance_id,
        "region": view.region,
        "image": view.image,
        "guest": guest_text(view.guest),
        "mounts": [f"{m.volume}:{m.path}" for m in view.mounts],
        "mountsOwnVolume": own_volume,
        "updatedAt": view.updated_at.isoformat() if view.updated_at else None,
    }


def _volume(view: VolumeView) -> dict[str, Any]:
    return {
        "id": view.id,
        "sizeGB": view.size_gb,
        "region": view.region,
        "state": view.state,
        "attachedMachineId": view.attached_machine_id,
    }


def _drift(found: Drift, obj: dict[str, Any], machine: MachineView) -> dict[str, Any] | None:
    if found.reason is None:
        return None
    if condition(obj, "Restarting").get("status") == "True":
        pending = "a restart is in flight"
    elif is_paused(obj):
        pending = "a restart is pending once resumed (paused)"
    elif machine.state == "started":
        pending = "a restart is pending"
    else:
        pending = f"applied at the next start (machine {machine.state})"
    return {"reason": found.reason, "change": found.message, "pending": pending}


def next_check(obj: dict[str, Any], timings: Timings | None = None) -> str:
    """When the operator looks again, from what the object says (at the operator's default flags)."""
    timings = timings or Timings()
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    name = metadata.get("name", "NAME")
    if is_paused(obj):
        return f"none: reconciliation is paused (kubectl claw resume {name})"
    requested = (metadata.get("annotations") or {}).get(RECONCILE_REQUEST_ANNOTATION)
    if requested is not None and requested != status.get("lastHandledReconcileAt"):
        return f"now: a reconcile was requested ({requested}) and is not handled yet"
    stalled = condition(obj, "Stalled")
    if stalled.get("status") == "True":
        return (
            f"none: Stalled ({stalled.get('reason')}) waits for a spec change "
            f"or kubectl claw reconcile {name}"
        )
    phase_text = status.get("phase")
    if metadata.get("deletionTimestamp"):
        phase_text = Phase.DESTROYING.value
    try:
        phase = Phase(phase_text) if phase_text else None
    except ValueError:
        phase = None
    every = cadence(phase, timings)
    return (
        f"every {duration(every)} (+ up to {duration(timings.poll_jitter)} jitter) while "
        f"{phase.value if phase else 'not yet reconciled'}, at the operator's default --poll-* flags"
    )


def _fly_report(
    fly: FlySide | None, fly_note: str | None, obj: dict[str, Any], app: str, url: str | None
) -> dict[str, Any]:
    if fly is None:
        return {"looked": False, "note": fly_note or "not looked at", "app": app}
    status = obj.get("status") or {}
    report: dict[str, Any] = {
        "looked": True,
        "app": app,
        "apiUrl": url,
        "machine": None,
        "machineGone": fly.machine_gone,
        "volume": None,
        "volumeGone": fly.volume_gone,
        "checks": [
            {"name": c.name, "status": c.status, "output": c.output, "updatedAt": c.updated_at}
            for c in fly.checks
        ],
        "events": [
            {"at": e.at.isoformat() if e.at else None, "type": e.type, "status": e.status, "source": e.source}
            for e in fly.events
        ],
        "errors": list(fly.errors),
        "drift": None,
        "envCompared": None,
    }
    if not status.get("machineId"):
        report["note"] = "no machine yet (status.machineId is empty)"
    if fly.volume is not None:
        report["volume"] = _volume(fly.volume)
    if fly.machine is not None and not fly.machine_gone:
        instance = to_instance(obj, default_app=app, env=None, failures=0)
        report["machine"] = _machine(fly.machine, mounts_own_volume(instance, fly.machine))
        found = drift(instance, fly.machine)
        report["drift"] = _drift(found, obj, fly.machine)
        report["envCompared"] = found.env_compared
    return report


def _secret_ref(item: dict[str, Any]) -> str:
    """Where a secretEnv value comes from (its name and reference; never the value)."""
    ref = item.get("secretKeyRef") or {}
    return f"{item.get('name')} <- secret {ref.get('name')}/{ref.get('key')}"


def build_report(
    obj: dict[str, Any],
    events: list[dict[str, Any]],
    *,
    fly: FlySide | None,
    fly_note: str | None,
    app: str,
    fly_api_url: str | None,
    now: datetime,
) -> dict[str, Any]:
    metadata, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    guest = spec.get("guest") or {}
    volume = spec.get("volume") or {}
    ready = condition(obj, "Ready")
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "uid": metadata.get("uid"),
        "created": metadata.get("creationTimestamp"),
        "age": age(parse_time(metadata.get("creationTimestamp")), now),
        "deleting": bool(metadata.get("deletionTimestamp")),
        "generation": metadata.get("generation"),
        "observedGeneration": status.get("observedGeneration"),
        "paused": is_paused(obj),
        "phase": status.get("phase"),
        "ready": ready.get("status", "Unknown"),
        "readyReason": ready.get("reason"),
        "spec": {
            "app": app,
            "region": spec.get("region"),
            "image": spec.get("image"),
            "state": spec.get("state", "Running"),
            "guest": (
                f"{guest.get('cpuKind', 'shared')}/{guest.get('cpus', 2)}cpu/{guest.get('memoryMB', 3072)}MB"
            ),
            "volume": f"{volume.get('sizeGB', 10)}GB at {volume.get('mountPath', '/root')}",
            "restartedAt": spec.get("restartedAt"),
            # Keys only: values (and every secretEnv value) stay out of the report.
            "envKeys": sorted((spec.get("env") or {}).keys()),
            "secretEnv": [_secret_ref(item) for item in spec.get("secretEnv") or []],
            "deletionPolicy": spec.get("deletionPolicy", "Delete"),
        },
        "status": {
            key: status.get(key)
            for key in (
                "appName",
                "region",
                "machineId",
                "volumeId",
                "machineState",
                "instanceId",
                "startingAt",
                "lastStartedAt",
                "lastStoppedAt",
                "restartingAt",
                "crashCount",
                "stoppedChecks",
                "handledRestartedAt",
                "lastHandledReconcileAt",
            )
        },
        "conditions": [
            {
                "type": c.get("type"),
                "status": c.get("status"),
                "reason": c.get("reason"),
                "message": c.get("message", ""),
                "lastTransitionTime": c.get("lastTransitionTime"),
                "age": age(parse_time(c.get("lastTransitionTime")), now),
            }
            for c in status.get("conditions") or []
        ],
        "lastStartError": (
            {"message": status.get("lastStartErrorMessage"), "at": status.get("lastStartErrorAt")}
            if status.get("lastStartErrorMessage")
            else None
        ),
        "lastDestroyError": (
            {
                "op": status.get("lastDestroyErrorOp"),
                "status": status.get("lastDestroyErrorStatus"),
                "message": status.get("lastDestroyErrorMessage"),
                "at": status.get("lastDestroyErrorAt"),
            }
            if status.get("lastDestroyErrorMessage")
            else None
        ),
        "nextCheck": next_check(obj),
        "fly": _fly_report(fly, fly_note, obj, app, fly_api_url),
        "events": [
            {
                "type": e.get("type"),
                "reason": e.get("reason"),
                "message": e.get("message", ""),
                "count": e.get("count") or 1,
                "lastTimestamp": event_time(e),
                "age": age(parse_time(event_time(e)), now),
            }
            for e in events[-RECENT_K8S_EVENTS:]
        ],
    }
