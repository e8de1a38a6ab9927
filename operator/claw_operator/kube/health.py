"""Liveness and readiness, and the HTTP server of /metrics, /healthz and /readyz.

**Readiness** (`/readyz`): kopf has finished its initial listing and runs its handlers.

**Liveness** (`/healthz`): kopf's known failure mode is a watch stream that goes silent — the
connection looks open, nothing arrives, and the operator keeps running deaf. Silence alone is
not a symptom (a quiet cluster has nothing to say for hours; kopf swallows BOOKMARKs and the
server-side timeout reconnects without re-listing), so liveness fails only when the operator
*knows* of a change the stream should have delivered and it has stayed silent for longer than
`stale_after` since: every status the operator writes must come back as a watch event. The
bound must exceed the longest normal gap between a write and its echo, which includes a
watch reconnect (kopf's `server_timeout` 300 s, `inactivity_timeout` 70 s): `--watch-stale-after`,
600 s by default (`OperatorConfig.watch_stale_after`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from claw_operator.kube.kubeapi import KubeApi
from claw_operator.kube.metrics import CONTENT_TYPE, OperatorMetrics

logger = logging.getLogger("claw_operator.health")


def _revision(resource_version: str | None) -> int | None:
    # resourceVersions are opaque by contract, but etcd revisions (and kubesim's) are integers;
    # when one is not, any later event of the object settles what it owes.
    try:
        return int(resource_version or "")
    except ValueError:
        return None


class WatchHealth:
    """Is the ClawInstance watch stream delivering what the apiserver has?"""

    def __init__(self, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self.last_event: float | None = None
        # Per object uid: the revision we wrote that no watch event has delivered yet, and since
        # when the stream owes it.
        self._owed: dict[str, tuple[int | None, float]] = {}
        self.ready = False
        # More conditions of readiness (with `--shards auto`: this replica holds its Lease).
        self.ready_checks: list[Callable[[], bool]] = []

    def is_ready(self) -> bool:
        return self.ready and all(check() for check in self.ready_checks)

    def event_received(self, uid: str | None = None, resource_version: str | None = None) -> None:
        self.last_event = self._clock()
        if uid is None or uid not in self._owed:
            return
        owed, _ = self._owed[uid]
        seen = _revision(resource_version)
        if owed is None or seen is None or seen >= owed:
            del self._owed[uid]

    def change_made(self, uid: str, resource_version: str | None) -> None:
        """The operator wrote this revision of a watched object: the stream owes us its event."""
        since = self._owed[uid][1] if uid in self._owed else self._clock()
        self._owed[uid] = (_revision(resource_version), since)

    def forget(self, uid: str) -> None:
        self._owed.pop(uid, None)

    def retain(self, watched: Callable[[str], bool]) -> None:
        """Owe nothing for objects the watch no longer selects (a server-side shard selector
        narrowed: their events never come here again)."""
        for uid in [u for u in self._owed if not watched(u)]:
            del self._owed[uid]

    def silent_for(self) -> float | None:
        """How long the stream has owed an event, or None when it owes nothing."""
        if not self._owed:
            return None
        return self._clock() - min(since for _, since in self._owed.values())

    def alive(self) -> bool:
        silent = self.silent_for()
        return silent is None or silent <= self.stale_after

    def report(self) -> dict[str, Any]:
        silent = self.silent_for()
        since_event = None if self.last_event is None else round(self._clock() - self.last_event, 3)
        return {
            "alive": self.alive(),
            "ready": self.is_ready(),
            "watchOwedEventFor": None if silent is None else round(silent, 3),
            "watchStaleAfter": self.stale_after,
            "secondsSinceLastWatchEvent": since_event,
        }


class WatchedKubeApi(KubeApi):
    """KubeApi that tells `WatchHealth` of every status it writes (each must be echoed)."""

    def __init__(self, api_client: Any, health: WatchHealth) -> None:
        super().__init__(api_client)
        self._health = health

    async def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        updated = await super().replace_status(obj, status)
        meta = updated.get("metadata") or {}
        if meta.get("uid"):
            self._health.change_made(meta["uid"], meta.get("resourceVersion"))
        return updated


def _json(payload: dict[str, Any], status: int) -> web.Response:
    return web.Response(text=json.dumps(payload), status=status, content_type="application/json")


def build_app(metrics: OperatorMetrics, health: WatchHealth) -> web.Application:
    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def healthz(_: web.Request) -> web.Response:
        report = health.report()
        if not report["alive"]:
            logger.error("liveness failing: the watch stream is silent", extra=report)
        return _json(report, 200 if report["alive"] else 500)

    async def readyz(_: web.Request) -> web.Response:
        report = health.report()
        return _json(report, 200 if report["ready"] else 503)

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


class HealthServer:
    """/metrics, /healthz and /readyz on one port (aiohttp, on the operator's loop)."""

    def __init__(self, metrics: OperatorMetrics, health: WatchHealth, host: str, port: int) -> None:
        self._app = build_app(metrics, health)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port
        logger.info("serving /metrics, /healthz, /readyz", extra={"host": self._host, "port": self.port})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
