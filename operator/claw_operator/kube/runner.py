"""Run the operator: kopf, our handlers, the Fly client, in one asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf

from claw_operator.kube.config import OperatorConfig
from claw_operator.kube.events import post_event
from claw_operator.kube.flygateway import FlyGateway
from claw_operator.kube.handlers import configure, register
from claw_operator.kube.kubeapi import KubeApi, load_api_client
from claw_operator.kube.reconciler import Reconciler

logger = logging.getLogger("claw_operator.runner")


def _login_handler(api_client: Any) -> Any:
    """kopf logs in with the same credentials as our own calls (kubeconfig or in-cluster)."""

    def login(**_: Any) -> kopf.ConnectionInfo:
        cfg = api_client.configuration
        header = cfg.get_api_key_with_prefix("authorization") or cfg.get_api_key_with_prefix("BearerToken")
        scheme, token = header.split(" ", 1) if header and " " in header else (None, header or None)
        return kopf.ConnectionInfo(
            server=cfg.host,
            ca_path=cfg.ssl_ca_cert,
            insecure=not cfg.verify_ssl,
            username=cfg.username or None,
            password=cfg.password or None,
            scheme=scheme,
            token=token,
            certificate_path=cfg.cert_file,
            private_key_path=cfg.key_file,
        )

    return login


async def run_operator(
    config: OperatorConfig,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    settings_hook: Any = None,
    gateway_hook: Any = None,
) -> None:
    """Run until `stop_flag` is set (or forever). Builds every collaborator from `config`.

    `settings_hook(settings)` adjusts kopf settings; `gateway_hook(gateway)` may wrap the Fly
    gateway (the integration tests use it to force races at exact points of a pass).
    """
    api_client = load_api_client(config.kubeconfig)
    kube = KubeApi(api_client)
    gateway = FlyGateway.from_config(config)
    edge = gateway_hook(gateway) if gateway_hook is not None else gateway
    reconciler = Reconciler(
        kube,
        edge,
        edge,
        post_event,
        timings=config.timings,
        default_app=config.default_app,
    )
    registry = kopf.OperatorRegistry()
    register(registry, reconciler)
    kopf.on.login(registry=registry)(_login_handler(api_client))
    settings = kopf.OperatorSettings()
    configure(settings)
    if settings_hook is not None:
        settings_hook(settings)
    logger.info(
        "starting claw-operator",
        extra={
            "fly_api_url": config.fly_api_url,
            "namespaces": ",".join(config.namespaces) or "*",
            "default_app": config.default_app,
        },
    )
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            standalone=True,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            memo=kopf.Memo(),
        )
    finally:
        await gateway.aclose()
        kube.close()
        api_client.close()  # type: ignore[no-untyped-call]


class OperatorThread:
    """The operator on its own event loop in a background thread (tests, the demo).

    `with OperatorThread(config): ...` starts it and waits until kopf is ready; leaving the block
    sets kopf's stop flag and joins the thread.
    """

    def __init__(
        self, config: OperatorConfig, *, settings_hook: Any = None, gateway_hook: Any = None
    ) -> None:
        self.config = config
        self._settings_hook = settings_hook
        self._gateway_hook = gateway_hook
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._thread = threading.Thread(target=self._main, name="claw-operator", daemon=True)
        self._thread.start()
        deadline_hit = not self._ready.wait(timeout)
        if self.error is not None:
            raise RuntimeError("the operator failed to start") from self.error
        if deadline_hit:
            raise TimeoutError("the operator did not become ready in time")

    def _main(self) -> None:
        try:
            asyncio.run(
                run_operator(
                    self.config,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    settings_hook=self._settings_hook,
                    gateway_hook=self._gateway_hook,
                )
            )
        except BaseException as exc:  # reported to whoever waits on start() / stop()
            self.error = exc
            self._ready.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> OperatorThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
