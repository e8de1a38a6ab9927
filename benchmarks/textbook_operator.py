"""A textbook kopf operator for ClawInstances: issue 13's point of comparison, run by `fleet.py
--operator textbook` in the same harness as claw-operator.

What a first operator from kopf's documentation looks like, and nothing more:

- a **create** handler that creates the volume and the machine and waits for the machine to
  start, then writes `status` (Ready=True);
- a **`kopf.timer`** per object, every `--poll` seconds: one GET of the machine, a status write
  only when its state changed;
- a **delete** handler: destroy the machine, delete the volume (retried while Fly still holds
  it bound), and kopf removes its finalizer.

No safety: no client-side rate limiting, no duplicate protection (a create retried after a lost
answer makes a second volume), no recovery by tags, no status conflicts, no Events beyond
kopf's own. Not a benchmark itself (`make bench` skips it).

    python benchmarks/textbook_operator.py --kubeconfig KUBECONFIG --fly-api-url URL --poll 8
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kopf
import yaml

GROUP, VERSION, PLURAL = "claw.dev", "v1alpha1", "clawinstances"
MOUNT_PATH = "/data"


class Fly:
    """The few Fly Machines calls, on one aiohttp session."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.token}"},
                connector=aiohttp.TCPConnector(limit=512),
                timeout=aiohttp.ClientTimeout(total=90),
            )
        return self._session

    async def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, json=body, params=params or None) as answer:
            data = await answer.json(content_type=None) if answer.content_length != 0 else None
            return answer.status, data


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready(status: str, reason: str) -> list[dict[str, Any]]:
    return [{"type": "Ready", "status": status, "reason": reason, "lastTransitionTime": now()}]


def configure(fly: Fly, default_app: str, poll: float) -> None:
    @kopf.on.startup()
    async def settings(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.persistence.finalizer = f"{GROUP}/textbook"
        settings.posting.enabled = False

    @kopf.on.create(GROUP, VERSION, PLURAL)
    async def create(spec: kopf.Spec, uid: str, patch: kopf.Patch, **_: Any) -> None:
        app = spec.get("app") or default_app
        guest = spec.get("guest") or {}
        status, volume = await fly.call(
            "POST",
            f"/v1/apps/{app}/volumes",
            {
                "name": f"claw_{uid.replace('-', '')[:24]}",
                "region": spec["region"],
                "size_gb": (spec.get("volume") or {}).get("sizeGB", 1),
            },
        )
        if status >= 300:
            raise kopf.TemporaryError(f"volume create: {status} {volume}", delay=5)
        status, machine = await fly.call(
            "POST",
            f"/v1/apps/{app}/machines",
            {
                "region": spec["region"],
                "config": {
                    "image": spec["image"],
                    "guest": {
                        "cpu_kind": guest.get("cpuKind", "shared"),
                        "cpus": guest.get("cpus", 1),
                        "memory_mb": guest.get("memoryMB", 1024),
                    },
                    "env": dict(spec.get("env") or {}),
                    "mounts": [{"volume": volume["id"], "path": MOUNT_PATH}],
                    "metadata": {"claw_instance_uid": uid},
                },
            },
        )
        if status >= 300:
            raise kopf.TemporaryError(f"machine create: {status} {machine}", delay=5)
        status, _ = await fly.call(
            "GET",
            f"/v1/apps/{app}/machines/{machine['id']}/wait",
            state="started",
            timeout="60",
            instance_id=machine.get("instance_id", ""),
        )
        if status >= 300:
            raise kopf.TemporaryError(f"wait: {status}", delay=5)
        patch.status.update(
            {
                "phase": "Running",
                "appName": app,
                "machineId": machine["id"],
                "volumeId": volume["id"],
                "machineState": "started",
                "conditions": ready("True", "Running"),
            }
        )

    @kopf.timer(GROUP, VERSION, PLURAL, interval=poll, initial_delay=poll)
    async def check(status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        machine_id, app = status.get("machineId"), status.get("appName")
        if not machine_id or not app:
            return
        code, machine = await fly.call("GET", f"/v1/apps/{app}/machines/{machine_id}")
        state = machine.get("state") if code == 200 and machine else "gone"
        if state != status.get("machineState"):
            patch.status["machineState"] = state
            patch.status["conditions"] = ready(
                "True" if state == "started" else "False", "Running" if state == "started" else "NotRunning"
            )

    @kopf.on.delete(GROUP, VERSION, PLURAL)
    async def delete(status: kopf.Status, **_: Any) -> None:
        machine_id, volume_id, app = status.get("machineId"), status.get("volumeId"), status.get("appName")
        if not app:
            return
        if machine_id:
            code, _ = await fly.call("DELETE", f"/v1/apps/{app}/machines/{machine_id}", force="true")
            if code >= 300 and code != 404:
                raise kopf.TemporaryError(f"machine destroy: {code}", delay=2)
        if volume_id:
            code, _ = await fly.call("DELETE", f"/v1/apps/{app}/volumes/{volume_id}")
            if code >= 300 and code != 404:
                raise kopf.TemporaryError(f"volume delete: {code} (still bound?)", delay=2)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--fly-api-url", required=True)
    parser.add_argument("--default-app", default="bench")
    parser.add_argument("--poll", type=float, default=8.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fly = Fly(args.fly_api_url, os.environ.get("FLY_API_TOKEN", ""))
    configure(fly, args.default_app, args.poll)
    with open(args.kubeconfig) as handle:
        kubeconfig = yaml.safe_load(handle)
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    users = kubeconfig["users"][0]["user"]

    @kopf.on.login()
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=server, token=users.get("token"), insecure=True)

    asyncio.run(kopf.operator(clusterwide=True, standalone=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
