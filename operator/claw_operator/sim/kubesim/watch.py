"""`?watch=1`: a stream of JSON lines `{"type": ..., "object": ...}`, one per change.

resourceVersion semantics as in the apiserver's watch cache: unset or "0" starts with a synthetic
ADDED for every current object; N replays the retained changes after N, or — when N is older
than the retained window — sends one ERROR event carrying a 410 `Expired` Status. Label and field
selectors are applied to both sides of a change, so an object that stops matching is seen as
DELETED and one that starts matching as ADDED. BOOKMARKs (when allowed) carry the current
resourceVersion; `timeoutSeconds` ends the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import bad_request
from .resources import ResourceType
from .store import ADDED, DELETED, MODIFIED, Change, ObjectStore, ResourceExpired, Subscription
from .table import build_table, partial_metadata

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass
class WatchRequest:
    rtype: ResourceType
    namespace: str | None  # None: every namespace (or a cluster-scoped kind)
    predicate: Callable[[dict[str, Any]], bool]
    resource_version: str | None
    timeout: float
    allow_bookmarks: bool
    send_initial_events: bool
    output: str  # "object", "table" or "metadata"
    include_object: str  # for tables: None, Metadata or Object


def _encode_line(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


class WatchStream:
    def __init__(
        self,
        store: ObjectStore,
        request: WatchRequest,
        bookmark_interval: float,
        on_events: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.request = request
        self.bookmark_interval = bookmark_interval
        self._on_events = on_events  # told the UIDs of the object events (not bookmarks) sent

    def _sent(self, uids: list[str]) -> None:
        if self._on_events is not None and uids:
            self._on_events(uids)

    def _render(self, obj: dict[str, Any]) -> dict[str, Any]:
        request = self.request
        if request.output == "table":
            return build_table(request.rtype, [obj], include_object=request.include_object)
        if request.output == "metadata":
            return partial_metadata(obj)
        return obj

    def _line(self, event_type: str, obj: dict[str, Any], change: Change | None = None) -> bytes:
        if change is None or self.request.output == "table":  # tables hold ages: never shared
            return _encode_line(event_type, self._render(obj))
        key = f"{event_type}|{self.request.rtype.api_version}|{self.request.output}"
        line = change.encoded.get(key)
        if line is None:
            line = change.encoded[key] = _encode_line(event_type, self._render(obj))
        return line

    def translate(self, change: Change) -> bytes | None:
        """The line a watcher with these selectors sees for `change`, if any."""
        rtype, matches = self.request.rtype, self.request.predicate
        new = rtype.present(change.obj)
        new_matches = matches(new)
        if change.type == ADDED:
            return self._line(ADDED, new, change) if new_matches else None
        if change.type == DELETED:
            return self._line(DELETED, new, change) if new_matches else None
        old_matches = change.old is not None and matches(rtype.present(change.old))
        if new_matches and old_matches:
            return self._line(MODIFIED, new, change)
        if new_matches:
            return self._line(ADDED, new, change)
        if old_matches:
            return self._line(DELETED, new, change)
        return None

    def _bookmark(self, annotations: dict[str, str] | None = None) -> bytes:
        metadata: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        if annotations:
            metadata["annotations"] = annotations
        rtype = self.request.rtype
        return _encode_line(
            "BOOKMARK", {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": metadata}
        )

    async def serve(self, http_request: web.Request) -> web.StreamResponse:
        request, store = self.request, self.store
        scope = request.namespace if request.rtype.namespaced else None
        initial: list[bytes] = []
        initial_uids: list[str] = []
        expired: str | None = None
        # Snapshot and subscribe atomically, so no change falls between the two.
        async with store.lock:
            subscription = store.subscribe(request.rtype.storage, scope)
            if request.resource_version in (None, "", "0") or request.send_initial_events:
                for stored in store.list(request.rtype.storage, scope):
                    obj = request.rtype.present(stored)
                    if request.predicate(obj):
                        initial.append(self._line(ADDED, obj))
                        initial_uids.append(obj["metadata"].get("uid", ""))
            else:
                try:
                    since = int(request.resource_version or "0")
                except ValueError:
                    store.unsubscribe(subscription)
                    raise bad_request(f"invalid resourceVersion {request.resource_version!r}") from None
                try:
                    for change in store.changes_since(request.rtype.storage, scope, since):
                        line = self.translate(change)
                        if line is not None:
                            initial.append(line)
                            initial_uids.append(change.obj["metadata"].get("uid", ""))
                except ResourceExpired as exc:
                    expired = str(exc)
            if request.send_initial_events and request.allow_bookmarks:
                initial.append(self._bookmark({INITIAL_EVENTS_END: "true"}))
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        response.enable_chunked_encoding()
        try:
            await response.prepare(http_request)
            if expired is not None:
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": expired,
                    "reason": "Expired",
                    "code": 410,
                }
                await response.write(_encode_line("ERROR", status))
                return response
            if initial:
                await response.write(b"".join(initial))
                self._sent(initial_uids)
            await self._stream(response, subscription)
        except ConnectionResetError:
            pass  # the client went away
        finally:
            store.unsubscribe(subscription)
        return response

    async def _stream(self, response: web.StreamResponse, subscription: Subscription) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request.timeout
        next_bookmark = loop.time() + self.bookmark_interval
        while True:
            now = loop.time()
            if now >= deadline:
                return
            wait = deadline - now
            if self.request.allow_bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            await subscription.wait(wait)
            lines, uids = [], []
            for change in subscription.drain():
                line = self.translate(change)
                if line is not None:
                    lines.append(line)
                    uids.append(change.obj["metadata"].get("uid", ""))
            if lines:
                await response.write(b"".join(lines))
                self._sent(uids)
            if subscription.closed:
                return  # server stopping, or this watcher fell too far behind: the client re-watches
            # A bookmark promises every change up to its resourceVersion was sent: never while
            # changes that arrived during the write above are still pending.
            if self.request.allow_bookmarks and loop.time() >= next_bookmark and not subscription.pending:
                await response.write(self._bookmark())
                next_bookmark = loop.time() + self.bookmark_interval
