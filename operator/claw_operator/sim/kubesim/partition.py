"""Network partitions of single clients, switched at runtime through `/_kubesim/partitions`.

kubesim authenticates nobody, so a client is told apart by what it sends: its bearer token
(give each client a kubeconfig of its own, `KubeSim.write_kubeconfig(..., token=...)`) or a
substring of its User-Agent. A partitioned client's requests are refused the way a network
partition refuses them:

- `reset` (default): the connection is dropped without an answer;
- `hang`: no answer until the partition is lifted (then the connection is dropped);
- `error`: `503 ServiceUnavailable`, a Status as from an overloaded apiserver;
- `forbidden`: `403 Forbidden`, the Status the apiserver sends when RBAC denies the request
  (`<resource>.<group> is forbidden: User "…" cannot <verb> resource "<resource>" in API group
  "<group>" …`). Not a partition, strictly, but the same switch: only resource requests are
  refused (discovery stays open, as `system:discovery` grants it to every user), and `resource`
  narrows it to one resource (its plural).

Watches already open when the partition starts are cut too (a partition is not polite).
The control API (JSON):
- `POST /_kubesim/partitions` `{"token": "t", "userAgent": null, "mode": "reset", "resource": null}`
  -> `{"id": …}`
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

MODES = ("reset", "hang", "error", "forbidden")
CONTROL_PREFIX = "/_kubesim/"


@dataclass(frozen=True)
class Partition:
    id: str
    token: str | None
    user_agent: str | None
    mode: str
    resource: str | None = None  # `forbidden` only: refuse requests on this resource (plural) alone

    def matches(self, request: web.Request) -> bool:
        if self.mode == "forbidden":
            target = resource_request(request)
            if target is None or (self.resource is not None and target.resource != self.resource):
                return False
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

    def add(
        self, *, token: str | None, user_agent: str | None, mode: str = "reset", resource: str | None = None
    ) -> Partition:
        if token is None and user_agent is None:
            raise bad_request("a partition names a client: give token or userAgent")
        if mode not in MODES:
            raise bad_request(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if resource is not None and mode != "forbidden":
            raise bad_request("resource narrows only a forbidden partition")
        partition = Partition(str(next(self._ids)), token, user_agent, mode, resource)
        self._active[partition.id] = partition
        if mode == "forbidden":
            return partition  # RBAC denies new requests; what is open stays open
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
            if partition.mode == "forbidden":
                error = rbac_denial(request)
                return web.json_response(error.body(), status=error.code)
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
            token=body.get("token"),
            user_agent=body.get("userAgent"),
            mode=body.get("mode") or "reset",
            resource=body.get("resource"),
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


# --- RBAC denials (`forbidden`) -------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceRequest:
    group: str  # "" for the core API
    resource: str  # plural
    namespace: str | None
    name: str | None
    subresource: str | None
    verb: str


_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def resource_request(request: web.Request) -> ResourceRequest | None:
    """The resource a request is about (`/api/v1/...`, `/apis/GROUP/VERSION/...`), with the RBAC
    verb it needs; None for discovery and everything else."""
    parts = [p for p in request.path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    verb = _VERBS.get(request.method, request.method.lower())
    if request.method == "GET" and name is None:
        verb = "watch" if request.query.get("watch") in ("true", "1") else "list"
    elif request.method == "DELETE" and name is None:
        verb = "deletecollection"
    return ResourceRequest(group, resource, namespace, name, subresource, verb)


def rbac_denial(request: web.Request) -> ApiError:
    """The 403 the apiserver's RBAC authorizer sends, worded as it words it."""
    target = resource_request(request)
    assert target is not None
    qualified = f"{target.resource}.{target.group}" if target.group else target.resource
    subject = f'{qualified} "{target.name}"' if target.name else qualified
    shown = f"{target.resource}/{target.subresource}" if target.subresource else target.resource
    scope = f'in the namespace "{target.namespace}"' if target.namespace else "at the cluster scope"
    return ApiError(
        403,
        "Forbidden",
        f'{subject} is forbidden: User "system:serviceaccount:kubesim:denied" cannot {target.verb} '
        f'resource "{shown}" in API group "{target.group}" {scope}',
        details={"name": target.name or "", "group": target.group, "kind": target.resource},
    )
