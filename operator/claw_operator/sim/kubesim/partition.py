"""Network partitions of single clients, switched at runtime through `/_kubesim/partitions`.

kubesim authenticates nobody, so a client is told apart by what it sends: its bearer token
(give each client a kubeconfig of its own, `KubeSim.write_kubeconfig(..., token=...)`) or a
substring of its User-Agent. A partitioned client's requests are refused the way a network
partition refuses them:

- `reset` (default): the connection is dropped without an answer;
- `hang`: no answer until the partition is lifted (then the connection is dropped);
- `error`: `503 ServiceUnavailable`, a Status as from an overloaded apiserver.

Watches already open when the partition starts are cut too (a partition is not polite).
The control API (JSON):
- `POST /_kubesim/partitions` `{"token": "t", "userAgent": null, "mode": "reset"}` -> `{"id": …}`
- `GET /_kubesim/partitions` -> `{"partitions": [...], "refused": {id: n}}`
- `DELETE /_kubesim/partitions` (all) and `DELETE /_kubesim/partitions/{id}`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError, bad_request

MODES = ("reset", "hang", "error")
CONTROL_PREFIX = "/_kubesim/"


@dataclass(frozen=True)
class Partition:
    id: str
    token: str | None
    user_agent: str | None
    mode: str

    def matches(self, request: web.Request) -> bool:
        if self.token is not None:
            header = request.headers.get("Authorization", "")
            if header != f"Bearer {self.token}":
                return False
        return self.user_agent is None or self.user_agent in request.headers.get("User-Agent", "")


class Partitions:
    def __init__(self) -> None:
        self._active: dict[str, Partition] = {}
        self._ids = itertools.count(1)
        self.refused: Counter[str] = Counter()
        self._lifted = asyncio.Event()
        self._open: dict[int, web.Request] = {}  # requests in flight (watches), by id()

    def add(self, *, token: str | None, user_agent: str | None, mode: str = "reset") -> Partition:
        if token is None and user_agent is None:
            raise bad_request("a partition names a client: give token or userAgent")
        if mode not in MODES:
            raise bad_request(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        partition = Partition(str(next(self._ids)), token, user_agent, mode)
        self._active[partition.id] = partition
        for request in list(self._open.values()):  # cut what that client already has open (watches)
            if partition.matches(request) and request.transport is not None:
                request.transport.close()
        return partition

    def remove(self, partition_id: str | None = None) -> bool:
        if partition_id is None:
            self._active.clear()
        elif self._active.pop(partition_id, None) is None:
            return False
        self._lifted.set()
        self._lifted = asyncio.Event()
        return True

    def matching(self, request: web.Request) -> Partition | None:
        for partition in self._active.values():
            if partition.matches(request):
                return partition
        return None

    def report(self) -> dict[str, Any]:
        return {
            "partitions": [asdict(p) for p in self._active.values()],
            "refused": dict(self.refused),
        }

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)  # type: ignore[no-any-return]
        partition = self.matching(request)
        while partition is not None:  # loops only while a hanging request waits
            self.refused[partition.id] += 1
            if partition.mode == "error":
                error = ApiError(503, "ServiceUnavailable", "kubesim: this client is partitioned")
                return web.json_response(error.body(), status=503)
            if partition.mode == "hang":
                await self._lifted.wait()
                partition = self.matching(request)
                if partition is None:
                    break  # lifted: the request goes through after all
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)  # never sent: the connection is gone
        self._open[id(request)] = request
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            self._open.pop(id(request), None)

    # --- the control API ---------------------------------------------------------------------------

    async def _post(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError as exc:
            raise bad_request(f"the body is not JSON: {exc}") from exc
        partition = self.add(
            token=body.get("token"), user_agent=body.get("userAgent"), mode=body.get("mode") or "reset"
        )
        return web.json_response({"id": partition.id}, status=201)

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response(self.report())

    async def _delete_all(self, request: web.Request) -> web.Response:
        self.remove()
        return web.json_response({})

    async def _delete_one(self, request: web.Request) -> web.Response:
        if not self.remove(request.match_info["id"]):
            raise ApiError(404, "NotFound", f"no partition {request.match_info['id']}")
        return web.json_response({})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/_kubesim/partitions", self._post)
        app.router.add_get("/_kubesim/partitions", self._get)
        app.router.add_delete("/_kubesim/partitions", self._delete_all)
        app.router.add_delete("/_kubesim/partitions/{id}", self._delete_one)
