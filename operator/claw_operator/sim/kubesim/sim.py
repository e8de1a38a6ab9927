"""`KubeSim`: the emulator in-process (on the caller's event loop), and `KubeSimThread`: the same
on its own event loop in a background thread, for tests that run kopf or blocking clients."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import tempfile
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from . import patch as patching
from .gc import GarbageCollector
from .kubeconfig import TOKEN, write_kubeconfig
from .objects import ObjectService, WriteOptions
from .resources import ResourceRegistry, ResourceType
from .selectors import parse_label_selector
from .server import ApiServer
from .store import ObjectList, ObjectStore
from .tls import Certificate, self_signed

T = TypeVar("T")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


# An alias: inside the classes below, `list` names a method.
Names = list[str]


class KubeSim:
    """A Kubernetes API emulator served over HTTP on the running event loop.

    Besides the HTTP API, tests can inspect and change objects directly: `get`/`list` read the
    store (synchronously), `create`/`patch`/`delete`/`apply` go through the same semantics as
    HTTP requests (and so emit watch events). Every object returned is the caller's own copy.
    """

    def __init__(
        self,
        *,
        history_limit: int = 10_000,
        watch_queue_limit: int = 100_000,
        bookmark_interval: float = 60.0,
        default_watch_timeout: float = 1800.0,
        gc_interval: float = 1.0,
        event_ttl: float = 3600.0,
        namespaces: tuple[str, ...] = DEFAULT_NAMESPACES,
        tls: bool = False,
        shard_selectors: bool = True,
    ) -> None:
        """`shard_selectors=False`: an apiserver before KEP-5866 (1.28-1.35): `shardSelector`
        ignored."""
        self.registry = ResourceRegistry()
        self.store = ObjectStore(history_limit=history_limit, watch_queue_limit=watch_queue_limit)
        self.objects = ObjectService(self.store, self.registry)
        self.api = ApiServer(
            self.objects,
            bookmark_interval=bookmark_interval,
            default_watch_timeout=default_watch_timeout,
            shard_selectors=shard_selectors,
        )
        self.gc = GarbageCollector(self.objects, interval=gc_interval, event_ttl=event_ttl)
        self.kubeconfig: Path | None = None
        self._initial_namespaces = namespaces
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.tls = tls  # serve HTTPS with a self-signed certificate (`certificate`, once started)
        self.certificate: Certificate | None = None
        self._certificate_dir: tempfile.TemporaryDirectory[str] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: a free port); returns the base URL, e.g. http://127.0.0.1:41234
        (https://, with a fresh self-signed certificate, when `tls`)."""
        ssl_context = None
        if self.tls and self.certificate is None:
            self._certificate_dir = tempfile.TemporaryDirectory(prefix="kubesim-tls-")
            self.certificate = self_signed(Path(self._certificate_dir.name), host)
        if self.certificate is not None:
            ssl_context = self.certificate.server_context()
        for name in self._initial_namespaces:
            if self.get("v1", "Namespace", name) is None:
                await self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        # Request lines as long as an apiserver takes (Go's 1 MiB header limit): a replica's
        # shardSelector names up to a few dozen hash ranges.
        self._runner = web.AppRunner(
            self.api.build_app(),
            access_log=None,
            shutdown_timeout=0.5,
            max_line_size=1 << 20,
            max_field_size=1 << 16,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound_port = self._runner.addresses[0][1] if self._runner.addresses else port
        self._base_url = f"{'https' if ssl_context else 'http'}://{host}:{bound_port}"
        self.api.server_address = f"{host}:{bound_port}"
        self.gc.start()
        return self._base_url

    async def stop(self) -> None:
        """Close every watch stream, stop the garbage collector and the HTTP server."""
        self.store.close_all_subscriptions()
        await self.gc.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._certificate_dir is not None:
            self._certificate_dir.cleanup()
            self._certificate_dir = None
            self.certificate = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("KubeSim is not started")
        return self._base_url

    def connection(self) -> dict[str, str]:
        """What a client needs without a kubeconfig, e.g. `kopf.ConnectionInfo(**sim.connection())`:
        `{"server": base_url, "scheme": "Bearer", "token": ...}`, plus `ca_data` (the certificate,
        base64) with TLS."""
        info = {"server": self.base_url, "scheme": "Bearer", "token": TOKEN}
        if self.certificate is not None:
            info["ca_data"] = self.certificate.authority_data
        return info

    def write_kubeconfig(
        self,
        path: str | Path,
        *,
        namespace: str = "default",
        context: str = "kubesim",
        token: str | None = None,
    ) -> Path:
        """Write a kubeconfig pointing at this server (with its certificate, with TLS); its path.

        With `token`, a kubeconfig for one client of its own (a partition can name it), and
        `self.kubeconfig` stays as it was."""
        authority = self.certificate.authority_data if self.certificate is not None else None
        written = write_kubeconfig(
            path,
            self.base_url,
            namespace=namespace,
            context=context,
            certificate_authority_data=authority,
            token=token or TOKEN,
        )
        if token is None:
            self.kubeconfig = written
        return written

    # --- resource types ----------------------------------------------------------------------------

    def resource_type(self, api_version: str, kind_or_plural: str) -> ResourceType:
        rtype = self.registry.for_kind(api_version, kind_or_plural)
        if rtype is None:
            group, _, version = api_version.rpartition("/")
            rtype = self.registry.lookup(group, version, kind_or_plural)
        if rtype is None:
            raise KeyError(f"no resource type {kind_or_plural!r} in {api_version!r}")
        return rtype

    # --- objects -----------------------------------------------------------------------------------

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object as a client would GET it, or None."""
        rtype = self.resource_type(api_version, kind)
        stored = self.store.get(rtype.storage, (namespace or "") if rtype.namespaced else "", name)
        return copy.deepcopy(rtype.present(stored)) if stored is not None else None

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> ObjectList:
        rtype = self.resource_type(api_version, kind)
        return copy.deepcopy(self.objects.list(rtype, namespace, parse_label_selector(label_selector)))

    def events(
        self, name: str | None = None, namespace: str | None = None, kind: str | None = None
    ) -> ObjectList:
        """core/v1 Events about an object (by involvedObject name and kind), oldest first."""
        found = [
            event
            for event in self.list("v1", "Event", namespace)
            if (name is None or event.get("involvedObject", {}).get("name") == name)
            and (kind is None or event.get("involvedObject", {}).get("kind") == kind)
        ]
        return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))

    async def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        rtype = self.resource_type(obj["apiVersion"], obj["kind"])
        namespace = namespace or obj.get("metadata", {}).get("namespace")
        return copy.deepcopy((await self.objects.create(rtype, namespace, obj)).obj)

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        subresource: str = "",
        patch_type: str = patching.MERGE,
    ) -> dict[str, Any]:
        rtype = self.resource_type(api_version, kind)
        options = WriteOptions(field_manager="kubesim")
        result = await self.objects.patch(rtype, namespace, name, patch_type, body, options, subresource)
        return copy.deepcopy(result.obj)

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        deleted = await self.objects.delete(self.resource_type(api_version, kind), namespace, name)
        return copy.deepcopy(deleted)

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create the object, or server-side-apply it over the existing one (manager `kubesim`)."""
        rtype = self.resource_type(obj["apiVersion"], obj["kind"])
        metadata = obj.get("metadata", {})
        options = WriteOptions(field_manager="kubesim", field_validation="Strict")
        result = await self.objects.patch(
            rtype, metadata.get("namespace"), metadata["name"], patching.APPLY, obj, options
        )
        return copy.deepcopy(result.obj)

    async def apply_crds(self, path: str | Path) -> Names:
        """Apply every CustomResourceDefinition in a YAML file or a directory of them; their names."""
        source = Path(path)
        files = sorted(source.glob("*.yaml")) + sorted(source.glob("*.yml")) if source.is_dir() else [source]
        names = []
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    names.append((await self.apply(doc))["metadata"]["name"])
        return names

    # --- observation -------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self.store.resource_version

    @property
    def request_counts(self) -> Counter[tuple[str, str]]:
        """Resource requests served, by (method, route template), e.g.
        `("PATCH", "/apis/claw.dev/v1alpha1/namespaces/{namespace}/clawinstances/{name}/status")`;
        the method is "WATCH" for watch requests."""
        return self.api.request_counts

    async def wait_for(
        self, condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02
    ) -> None:
        """Until `condition()` holds (TimeoutError after `timeout` seconds)."""
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(interval)


class KubeSimThread:
    """A `KubeSim` on its own event loop in a daemon thread.

    `start()` returns the base URL; `call(coro)` runs a coroutine on the server's loop and waits;
    `get`/`list` read directly; `create`/`patch`/`delete`/`apply`/`apply_crds` are marshalled.
    """

    def __init__(
        self,
        sim: KubeSim | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        crds: str | Path | None = None,
        kubeconfig: str | Path | None = None,
    ) -> None:
        self.sim = sim or KubeSim()
        self.host, self.port = host, port
        self.crds = crds
        self.kubeconfig_path = kubeconfig
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return self.sim.base_url

    @property
    def kubeconfig(self) -> Path | None:
        return self.sim.kubeconfig

    def start(self, timeout: float = 30.0) -> str:
        started: Future[str] = Future()
        self._thread = threading.Thread(target=self._serve, args=(started,), name="kubesim", daemon=True)
        self._thread.start()
        base_url = started.result(timeout)
        if self.kubeconfig_path is not None:
            self.sim.write_kubeconfig(self.kubeconfig_path)
        return base_url

    def _serve(self, started: Future[str]) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            self._stopped = asyncio.Event()
            try:
                base_url = await self.sim.start(self.host, self.port)
                if self.crds is not None:
                    await self.sim.apply_crds(self.crds)
            except BaseException as exc:
                started.set_exception(exc)
                return
            started.set_result(base_url)
            await self._stopped.wait()
            await self.sim.stop()

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is None or self._thread is None or self._stopped is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            self.loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> KubeSimThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def call(self, coroutine: Coroutine[Any, Any, T] | Awaitable[T], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's loop (from any other thread) and return its result."""
        if self.loop is None:
            raise RuntimeError("KubeSimThread is not started")

        async def wrapper() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.sim.get(api_version, kind, name, namespace)

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> ObjectList:
        return self.call(self._list(api_version, kind, namespace, label_selector))

    async def _list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None
    ) -> ObjectList:
        return self.sim.list(api_version, kind, namespace, label_selector)

    def events(
        self, name: str | None = None, namespace: str | None = None, kind: str | None = None
    ) -> ObjectList:
        return self.call(self._events(name, namespace, kind))

    async def _events(self, name: str | None, namespace: str | None, kind: str | None) -> ObjectList:
        return self.sim.events(name, namespace, kind)

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        return self.call(self.sim.create(obj, namespace))

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        subresource: str = "",
        patch_type: str = patching.MERGE,
    ) -> dict[str, Any]:
        return self.call(
            self.sim.patch(
                api_version, kind, name, body, namespace, subresource=subresource, patch_type=patch_type
            )
        )

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.call(self.sim.delete(api_version, kind, name, namespace))

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.call(self.sim.apply(obj))

    def apply_crds(self, path: str | Path) -> Names:
        return self.call(self.sim.apply_crds(path))

    def connection(self) -> dict[str, str]:
        return self.sim.connection()

    def write_kubeconfig(self, path: str | Path, **kwargs: Any) -> Path:
        return self.sim.write_kubeconfig(path, **kwargs)


@contextlib.contextmanager
def run_in_thread(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    crds: str | Path | None = None,
    kubeconfig: str | Path | None = None,
    **sim_options: Any,
) -> Iterator[KubeSimThread]:
    """`with run_in_thread(crds="crds", kubeconfig=tmp / "kubeconfig") as kubesim: ...`"""
    runner = KubeSimThread(KubeSim(**sim_options), host=host, port=port, crds=crds, kubeconfig=kubeconfig)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
