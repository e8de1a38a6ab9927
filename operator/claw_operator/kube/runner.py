"""Run the operator: kopf, our handlers, the Fly client, in one asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import kopf
import yaml
from kopf._cogs.structs.references import Insights  # kopf.operator(insights=...): see ShardWatch
from kubernetes.config import ConfigException

from claw_operator.edge import FlyGateway, ResolvedEnv
from claw_operator.fly import FlyClientConfig, FlyClientOptions, FlyMachinesClient
from claw_operator.kube.config import OperatorConfig
from claw_operator.kube.events import SERIES, EventSeries, post_event
from claw_operator.kube.handlers import configure, register
from claw_operator.kube.health import HealthServer, WatchedKubeApi, WatchHealth
from claw_operator.kube.kubeapi import KubeApi, load_api_client
from claw_operator.kube.memtrim import libc, trim_after_bursts, trim_interval
from claw_operator.kube.metrics import OperatorMetrics
from claw_operator.kube.preflight import check_startup, describe_kubeconfig_error
from claw_operator.kube.reconciler import EventSink, Executor, Reconciler
from claw_operator.kube.shards import (
    FencedExecutor,
    LeaseApi,
    LeaseKeeper,
    ShardWatch,
    default_identity,
    default_namespace,
    register_metrics,
)
from claw_operator.lifecycle.model import Action, ActionResult, EventRecord, Instance, RestartMachine

logger = logging.getLogger("claw_operator.runner")


# Connections to Fly (far below a pod's usual 1,024 file descriptors). Every starting instance
# holds a connection for its wait (a long poll of seconds): a fleet starting at once must not
# queue its creates behind 100 of them.
FLEET_FLY_CLIENT = FlyClientOptions(max_connections=512, max_keepalive_connections=128)


def fly_client(config: OperatorConfig, *, on_request: Callable[..., None] | None = None) -> FlyMachinesClient:
    """The one Fly client of the process, sized for a fleet; the edge receives it ready-made.

    `config.fly_client_options` (tests, benchmarks) override `FLEET_FLY_CLIENT` field by field.
    """
    wait = max(1, min(60, int(config.timings.fly_wait_timeout.total_seconds())))
    options = config.fly_client_options.over(FLEET_FLY_CLIENT)
    return FlyMachinesClient(
        FlyClientConfig(
            token=config.fly_token,
            base_url=config.fly_api_url,
            wait_server_timeout=wait,
            on_request=on_request,
            **options.overrides(),
        )
    )


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


class _CountedExecutor:
    """The Executor, counting restarts and mount repairs as they complete (or fail)."""

    def __init__(self, executor: Executor, metrics: OperatorMetrics) -> None:
        self._executor, self._metrics = executor, metrics

    async def execute(self, action: Action, instance: Instance, env: ResolvedEnv | None) -> ActionResult:
        result = await self._executor.execute(action, instance, env)
        if isinstance(action, RestartMachine):
            self._metrics.observe_restart(action.reason, succeeded=result.failure is None)
        return result


def _counted_events(metrics: OperatorMetrics, series: EventSeries) -> EventSink:
    async def post(obj: dict[str, Any], event: EventRecord) -> None:
        metrics.observe_event(event)
        if event.reason in SERIES:
            await series.post(obj, event)
        else:
            await post_event(obj, event)

    return post


def _lease_keeper(config: OperatorConfig, api_client: Any, gateway: FlyGateway) -> LeaseKeeper:
    identity = config.shard_identity or default_identity()
    timings = config.shard_timings
    api = LeaseApi(
        KubeApi(
            api_client,
            connections=4,
            timeout=timings.retry_period.total_seconds() * 2,
            user_agent=f"claw-operator-shards/{identity}",
        )
    )
    return LeaseKeeper(
        api,
        identity=identity,
        namespace=config.shard_namespace or default_namespace(config.kubeconfig),
        timings=timings,
        on_gained=gateway.inherit,
    )


async def _forward_ready(
    kopf_ready: asyncio.Event,
    health: WatchHealth,
    ready_flag: asyncio.Event | threading.Event | None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    await kopf_ready.wait()
    health.ready = True
    if ready_flag is not None:
        ready_flag.set()
    if on_ready is not None:
        on_ready()


async def _release_early(keeper: LeaseKeeper, fenced: FencedExecutor, drain: float) -> None:
    """SIGTERM with `--shards auto`: act on nothing from now on, wait for the Fly mutations in
    flight (at most `drain` s), then release the Lease — the others take this replica's
    instances over at their next listing, while kopf is still shutting down (about 2 s)."""
    keeper.stop_acting()
    started = time.monotonic()
    drained = await fenced.drained(drain)
    logger.info(
        "stopping: releasing the shard Lease",
        extra={"in_flight_drained": drained, "waited": round(time.monotonic() - started, 3)},
    )
    await keeper.stop(release=True)


def _early_release_on_sigterm(
    keeper: LeaseKeeper, fenced: FencedExecutor, stop: asyncio.Event, drain: float
) -> Callable[[], None]:
    """Installed once kopf runs (kopf's own SIGTERM handler is replaced: this one sets the stop
    flag kopf was given, then releases the Lease early)."""

    def install() -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # kopf handles no signals outside the main thread either
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []

        def on_sigterm() -> None:
            logger.info("Signal SIGTERM is received. Operator is stopping.")
            stop.set()
            if not tasks:
                tasks.append(loop.create_task(_release_early(keeper, fenced, drain)))

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)

    return install


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
    With `config.metrics_port` set, /metrics, /healthz and /readyz are served on it.
    """
    metrics = OperatorMetrics()
    health = WatchHealth(config.watch_stale_after)
    metrics.track_watch_health(health.silent_for)
    try:
        api_client = load_api_client(config.kubeconfig)
    except (ConfigException, OSError, yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
        raise describe_kubeconfig_error(exc, config.kubeconfig) from exc
    kube = WatchedKubeApi(api_client, health)
    # The Fly client reports each exchange to the metrics (it never imports them).
    gateway = FlyGateway(fly_client(config, on_request=metrics.observe_fly_request), config.timings)
    edge = gateway_hook(gateway) if gateway_hook is not None else gateway
    keeper = _lease_keeper(config, api_client, gateway) if config.shards == "auto" else None
    executor: Executor = _CountedExecutor(edge, metrics)
    if keeper is not None:
        executor = FencedExecutor(executor, keeper)
        health.ready_checks.append(keeper.can_mutate)
    reconciler = Reconciler(
        kube,
        edge,
        executor,
        _counted_events(metrics, EventSeries(kube)),
        timings=config.timings,
        default_app=config.default_app,
        # Half the liveness bound: a deaf watch is still overtaken by fresh reads (and the
        # writes they lead to make /healthz fail) well within --watch-stale-after.
        fresh_every=config.watch_stale_after / 2,
    )
    registry = kopf.OperatorRegistry()
    scheduler = register(registry, reconciler, metrics=metrics, health=health, shards=keeper)
    kopf.on.login(registry=registry)(_login_handler(api_client))
    settings = kopf.OperatorSettings()
    configure(settings)
    if settings_hook is not None:
        settings_hook(settings)
    # kopf's view of what it watches: the shard watch takes ClawInstances out and back in to
    # make kopf list them anew with a changed shardSelector.
    insights = Insights()
    watch: ShardWatch | None = None
    if keeper is not None:
        watch = ShardWatch(keeper, settings, insights, kube, namespaces=tuple(config.namespaces))
        watch.on_relisted += [health.retain, metrics.retain]
        register_metrics(metrics.registry, keeper, watch)
    logger.info(
        "starting claw-operator",
        extra={
            "fly_api_url": config.fly_api_url,
            "namespaces": ",".join(config.namespaces) or "*",
            "default_app": config.default_app,
        },
    )
    server: HealthServer | None = None
    kopf_ready = asyncio.Event()
    on_ready = None
    if keeper is not None and isinstance(executor, FencedExecutor) and stop_flag is None:
        stop_flag = asyncio.Event()
        drain = config.shard_timings.renew_deadline.total_seconds()
        on_ready = _early_release_on_sigterm(keeper, executor, stop_flag, drain)
    forward = asyncio.create_task(_forward_ready(kopf_ready, health, ready_flag, on_ready))
    trimming: asyncio.Task[None] | None = None
    try:
        if config.metrics_port is not None:
            server = HealthServer(metrics, health, config.metrics_host, config.metrics_port)
            await server.start()
        if not await check_startup(api_client, config, stop_flag):
            return  # stopped while waiting for the apiserver or Fly
        if watch is not None:
            await watch.start()  # server-side sharding or not; the first listing's selector
        scheduler.start()
        trim_every = trim_interval()
        if trim_every > 0 and libc() is not None:
            # The pages a burst of passes freed go back to the OS once it is over (kube/memtrim.py).
            trimming = asyncio.create_task(
                trim_after_bursts(
                    lambda: scheduler.passes_started, scheduler.running_count, interval=trim_every
                )
            )
        if keeper is not None:
            # Join the ring once kopf has listed every instance and runs the handlers: the others
            # stop acting on this replica's share the moment they see its Lease.
            keeper.launch(kopf_ready)
        await kopf.operator(
            registry=registry,
            settings=settings,
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            standalone=True,
            stop_flag=stop_flag,
            ready_flag=kopf_ready,
            memo=kopf.Memo(),
            insights=insights,
        )
    finally:
        forward.cancel()
        if trimming is not None:
            trimming.cancel()
        # No pass starts any more; the running ones finish before the Lease is released and
        # the clients close.
        await scheduler.close()
        if watch is not None:
            await watch.stop()
        if keeper is not None:
            # kopf has stopped every handler: nothing acts any more, the others may take over.
            await keeper.stop(release=True)
        if server is not None:
            await server.stop()
        await gateway.aclose()
        await kube.aclose()
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
