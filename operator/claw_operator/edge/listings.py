"""App-wide Fly listings shared by every instance that needs one at the same time.

Fly limits listing to 1 request/s per app (bursts of 3), whatever the answer's size. A listing
per instance (metadata recovery before a create, the destroy's last look for an unrecorded
machine) would make a fleet of N new instances wait N seconds for lists alone. So the
instances of one app share their lists: a lookup joins the *next* list call of its app, and
one call answers every lookup that joined it, indexed by owner.

Sharing never weakens what a lookup proves. A lookup only ever gets the answer of a list call
sent after the lookup began (never one already in flight), so it sees every create that had
happened when it asked, exactly as a list of its own would; and it sees it subject to the same
eventual consistency, no more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

Index = Mapping[str, Sequence[T]]


class SharedListing(Generic[T]):
    """Lookups by key (an owner UID, a volume name) answered by coalesced app-wide lists.

    `fetch(app)` makes one list call and returns its objects indexed by key. At most one call
    per app is in flight; lookups arriving meanwhile wait for the next one, which starts when
    the current one ends (and then takes its turn at the client's rate limiter).
    """

    def __init__(self, fetch: Callable[[str], Awaitable[Index[T]]]) -> None:
        self._fetch = fetch
        # app -> the answer of the next list call (not sent yet): lookups join it.
        self._next: dict[str, asyncio.Future[Index[T]]] = {}
        # app -> the task of the latest list call (running, or waiting for its predecessor).
        self._latest: dict[str, asyncio.Task[None]] = {}
        self.calls = 0

    async def lookup(self, app: str, key: str) -> tuple[T, ...]:
        future = self._next.get(app)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            # An exception nobody awaited (all lookups cancelled) is not worth a warning.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._next[app] = future
            task = asyncio.create_task(self._list(app, future, self._latest.get(app)))
            self._latest[app] = task
            task.add_done_callback(lambda t: self._latest.pop(app) if self._latest.get(app) is t else None)
        # Shielded: a cancelled lookup (a stopped daemon) must not cancel the others' list.
        index = await asyncio.shield(future)
        return tuple(index.get(key, ()))

    async def _list(
        self, app: str, future: asyncio.Future[Index[T]], previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        # From here on new lookups join the following call: this one is sent after they began.
        if self._next.get(app) is future:
            del self._next[app]
        self.calls += 1
        try:
            index = await self._fetch(app)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:  # every lookup of this call gets the same failure
            future.set_exception(exc)
            return
        future.set_result(index)
