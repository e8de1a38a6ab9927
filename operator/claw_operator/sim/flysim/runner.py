"""Run a `FlySim` on its own event loop in a background thread.

The operator's integration tests run kopf in one loop; this keeps flysim reachable (and its
clock ticking) independently of that loop. Control calls hop onto the simulator's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .sim import FlySim

T = TypeVar("T")


class FlySimThread:
    """`with FlySimThread(profile="fast") as sim: httpx.get(sim.base_url + "/v1/apps/a")`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **flysim_options: Any) -> None:
        self.host = host
        self.port = port
        self.sim = FlySim(**flysim_options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.base_url = ""

    def start(self, timeout: float = 10.0) -> str:
        self._thread = threading.Thread(target=self._run, name="flysim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("flysim did not start in time")
        if self._error is not None:
            raise RuntimeError("flysim failed to start") from self._error
        return self.base_url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        try:
            self.base_url = await self.sim.start(self.host, self.port)
        except BaseException as error:  # reported to the starting thread
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self.sim.stop()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None or self._stopped is None:
            return
        stopped = self._stopped
        self._loop.call_soon_threadsafe(stopped.set)
        self._thread.join(timeout)
        self._thread = None

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `function(*args, **kwargs)` on the simulator's loop and return its result."""
        if self._loop is None:
            raise RuntimeError("flysim thread is not running")

        async def invoke() -> T:
            return function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=10)

    # Thread-safe mirrors of the control API.
    def add_fault(self, path: str, **options: Any) -> str:
        return self.call(self.sim.add_fault, path, **options)

    def remove_fault(self, fault_id: str) -> bool:
        return self.call(self.sim.remove_fault, fault_id)

    def clear_faults(self) -> None:
        self.call(self.sim.clear_faults)

    def set_capacity(self, region: str, **options: Any) -> None:
        self.call(self.sim.set_capacity, region, **options)

    def fill_host(
        self, host_id: str | None = None, *, volume_id: str | None = None, full: bool = True
    ) -> str:
        return self.call(self.sim.fill_host, host_id, volume_id=volume_id, full=full)

    def write_volume(self, volume_id: str, path: str, content: str) -> None:
        self.call(self.sim.write_volume, volume_id, path, content)

    def volume_contents(self, volume_id: str) -> dict[str, str] | None:
        return self.call(self.sim.volume_contents, volume_id)

    def set_org_quota(self, max_machines: int | None) -> None:
        self.call(self.sim.set_org_quota, max_machines)

    def stats(self) -> dict[str, Any]:
        return self.call(self.sim.stats)

    def timeline(self, machine_id: str) -> list[dict[str, Any]]:
        return self.call(self.sim.timeline, machine_id)

    def reset(self) -> None:
        self.call(self.sim.reset)

    def exit_machine(self, machine_id: str, exit_code: int = 0) -> None:
        self.call(self.sim.exit_machine, machine_id, exit_code)

    def release_stuck(self, machine_id: str) -> bool:
        return self.call(self.sim.release_stuck, machine_id)

    def autostop(self, machine_id: str) -> None:
        self.call(self.sim.autostop, machine_id)

    def autostart(self, machine_id: str) -> None:
        self.call(self.sim.autostart, machine_id)

    def set_host_status(self, machine_id: str, status: str) -> None:
        self.call(self.sim.set_host_status, machine_id, status)

    def capacity(self) -> dict[str, Any]:
        return self.call(self.sim.capacity)

    def list_machines(self, app: str | None = None, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        return self.call(self.sim.list_machines, app, include_deleted=include_deleted)

    def get_machine(self, machine_id: str) -> dict[str, Any] | None:
        return self.call(self.sim.get_machine, machine_id)

    def list_volumes(self, app: str | None = None) -> list[dict[str, Any]]:
        return self.call(self.sim.list_volumes, app)

    def get_volume(self, volume_id: str) -> dict[str, Any] | None:
        return self.call(self.sim.get_volume, volume_id)

    def __enter__(self) -> FlySimThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def run_in_thread(host: str = "127.0.0.1", port: int = 0, **flysim_options: Any) -> Iterator[FlySimThread]:
    """A started `FlySimThread` for the `with` block; `.base_url` is where it listens."""
    runner = FlySimThread(host, port, **flysim_options)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
