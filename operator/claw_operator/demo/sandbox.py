"""`Sandbox`: kubesim, flysim and claw-operator in one process, as `claw-operator demo` and the
integration tests run them.

Each part runs on its own event loop in a thread of this process (so blocking clients, kubectl,
and kopf's own loop all work against it): kubesim with the CRD installed and a kubeconfig in the
work directory, flysim with a token, and any number of operators pointed at both. The sandbox
also reads what a user would look at — the ClawInstance's status, conditions and Events — and
talks to Fly the way a user (`/v1`) or the tests (`/_sim/` faults) do.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from claw_operator.api import GROUP, VERSION
from claw_operator.api.crd import render_crd_yaml
from claw_operator.fly import DESTROYED_MACHINE_STATES, DESTROYED_VOLUME_STATES, FlyClientOptions
from claw_operator.kube.config import OperatorConfig
from claw_operator.kube.logs import JsonFormatter
from claw_operator.kube.runner import OperatorThread
from claw_operator.lifecycle.model import Timings
from claw_operator.sim.flysim import FlySimThread, LatencyProfile
from claw_operator.sim.kubesim import KubeSimThread

__all__ = ["REPO", "Sandbox", "SandboxError", "crds_directory"]

log = logging.getLogger("claw_operator.sandbox")

# The checkout this package runs from, when it does (examples/ and crds/ are read from there).
REPO = Path(__file__).resolve().parents[3]

KopfSettingsHook = Callable[[Any], None]
_T = TypeVar("_T")


class SandboxError(Exception):
    """The sandbox could not do what was asked (the message says why and what to do)."""


def crds_directory(workdir: Path) -> Path:
    """The repository's `crds/` in a checkout; otherwise the CRD rendered from the models into
    `workdir/crds` (an installed package has no `crds/`)."""
    crds = REPO / "crds"
    if (crds / "clawinstances.yaml").is_file():
        return crds
    crds = workdir / "crds"
    crds.mkdir(parents=True, exist_ok=True)
    (crds / "clawinstances.yaml").write_text(render_crd_yaml())
    return crds


def _running(part: _T | None) -> _T:
    if part is None:
        raise SandboxError("the sandbox is not running")
    return part


class Sandbox:
    """kubesim, flysim and operators, started by `start()` (or `with`) and stopped in reverse.

    `timings`, `fly_client_options` and `kopf_settings` are what every operator started with
    `start_operator` runs with unless told otherwise; `log_handler` receives the operators' logs
    (JSON lines) while the sandbox runs.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        app: str,
        token: str,
        profile: str | LatencyProfile = "fast",
        seed: int = 0,
        timings: Timings | None = None,
        fly_client_options: FlyClientOptions | None = None,
        kopf_settings: KopfSettingsHook | None = None,
        log_handler: logging.Handler | None = None,
        namespace: str = "default",
    ) -> None:
        self.workdir = workdir
        self.app = app
        self.token = token
        self.profile = profile
        self.seed = seed
        self.timings = timings or Timings()
        self.fly_client_options = fly_client_options or FlyClientOptions()
        self.kopf_settings = kopf_settings
        self.log_handler = log_handler
        self.namespace = namespace
        self.kubeconfig = workdir / "kubeconfig"
        self.operators: list[OperatorThread] = []
        self._kube: KubeSimThread | None = None
        self._fly: FlySimThread | None = None
        self._flyhttp: httpx.Client | None = None
        self._previous_level: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """kubesim (CRD installed, kubeconfig written), then flysim."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._capture_logs()
        try:
            self._kube = KubeSimThread(crds=crds_directory(self.workdir), kubeconfig=self.kubeconfig)
            self._kube.start()
            self._fly = FlySimThread(profile=self.profile, seed=self.seed, token=self.token)
            self._fly.start()
            self._flyhttp = httpx.Client(
                base_url=self._fly.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
            )
        except BaseException:
            self.stop()
            raise

    def start_operator(
        self, *, token: str | None = None, gateway_hook: Any = None, **config: Any
    ) -> OperatorThread:
        """An operator against this sandbox, started and ready: with the sandbox's Fly token
        unless `token` is given; `config` replaces fields of its `OperatorConfig` (`default_app`,
        `timings`, `metrics_port`, …); `gateway_hook` may wrap its Fly gateway (`run_operator`)."""
        operator = OperatorThread(
            dataclasses.replace(
                OperatorConfig(
                    fly_api_url=self.fly.base_url,
                    fly_token=self.token if token is None else token,
                    default_app=self.app,
                    timings=self.timings,
                    kubeconfig=str(self.kubeconfig),
                    metrics_port=None,
                    metrics_host="127.0.0.1",
                    fly_client_options=self.fly_client_options,
                ),
                **config,
            ),
            settings_hook=self.kopf_settings,
            gateway_hook=gateway_hook,
        )
        operator.start()
        self.operators.append(operator)
        return operator

    def stop_operators(self) -> None:
        while self.operators:
            self.operators.pop().stop()

    def stop(self) -> None:
        """The operators first (they talk to both simulators), then Fly, then Kubernetes."""
        parts: list[Callable[[], None]] = [self.stop_operators]
        parts += [part.stop for part in (self._fly, self._kube) if part is not None]
        parts += [self._flyhttp.close] if self._flyhttp is not None else []
        for stop in parts:
            try:
                stop()
            except Exception:  # keep stopping the rest
                log.exception("stopping the sandbox: %s failed", stop)
        self._fly, self._kube, self._flyhttp = None, None, None
        self._release_logs()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _capture_logs(self) -> None:
        if self.log_handler is None or self._previous_level is not None:
            return
        self.log_handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        self._previous_level = root.level
        root.addHandler(self.log_handler)
        root.setLevel(logging.INFO)

    def _release_logs(self) -> None:
        if self.log_handler is None or self._previous_level is None:
            return
        root = logging.getLogger()
        root.removeHandler(self.log_handler)
        root.setLevel(self._previous_level)
        self._previous_level = None

    @property
    def kube(self) -> KubeSimThread:
        return _running(self._kube)

    @property
    def fly(self) -> FlySimThread:
        return _running(self._fly)

    @property
    def flyhttp(self) -> httpx.Client:
        """A client of flysim's HTTP API, with the sandbox's token."""
        return _running(self._flyhttp)

    # ------------------------------------------------------------------ ClawInstances

    def get(self, name: str) -> dict[str, Any] | None:
        """The ClawInstance as the apiserver holds it, or None."""
        obj: dict[str, Any] | None = self.kube.get(f"{GROUP}/{VERSION}", "ClawInstance", name, self.namespace)
        return obj

    def instances(self) -> list[dict[str, Any]]:
        """Every ClawInstance of the namespace, as the apiserver holds them."""
        return list(self.kube.list(f"{GROUP}/{VERSION}", "ClawInstance", self.namespace))

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for cond in self.status(name).get("conditions", []):
            if cond.get("type") == type_:
                return dict(cond)
        return {}

    def events(self, name: str) -> list[dict[str, Any]]:
        return list(self.kube.events(name=name, namespace=self.namespace))

    def event_reasons(self, name: str) -> list[str]:
        return [e.get("reason", "") for e in self.events(name)]

    # ------------------------------------------------------------------ waiting

    def wait(
        self, predicate: Callable[[], Any], timeout: float = 20.0, what: str | Callable[[], str] = "condition"
    ) -> Any:
        """The first truthy value of `predicate()` (polled every 50 ms), or `SandboxError`."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.05)
        described = what() if callable(what) else what
        raise SandboxError(f"timed out after {timeout:g}s waiting for {described}; last value: {last!r}")

    def wait_phase(self, name: str, phase: str, timeout: float = 20.0) -> dict[str, Any]:
        return dict(
            self.wait(
                lambda: (s := self.status(name)).get("phase") == phase and s,
                timeout,
                lambda: f"{name} phase {phase} (status: {self.status(name)})",
            )
        )

    def wait_condition(
        self, name: str, type_: str, status: str, reason: str | None = None, timeout: float = 20.0
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            cond = self.condition(name, type_)
            if cond.get("status") == status and (reason is None or cond.get("reason") == reason):
                return cond
            return None

        return dict(
            self.wait(check, timeout, f"{name} {type_}={status} {reason or ''} (status: {self.status(name)})")
        )

    def wait_events(self, name: str, *reasons: str, timeout: float = 5.0) -> list[str]:
        """Wait until the object has Events with every one of `reasons`; return all its reasons.

        kopf posts Events in the background, after the status write that one usually waits for:
        reading them at once races with the poster.
        """
        wanted = set(reasons)

        def posted() -> list[str] | None:
            found = self.event_reasons(name)
            return found if wanted <= set(found) else None

        found: list[str] = self.wait(
            posted,
            timeout,
            lambda: f"Events {sorted(wanted)} of {name} (so far: {self.event_reasons(name)})",
        )
        return found

    def wait_gone(self, name: str, timeout: float = 20.0) -> None:
        self.wait(lambda: self.get(name) is None, timeout, f"{name} deleted")

    # ------------------------------------------------------------------ Fly, behind the operator's back

    def fly_call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request to flysim (`/v1` or `/_sim/`); its JSON answer, or `httpx.HTTPStatusError`."""
        response = self.flyhttp.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def machine(self, machine_id: str) -> dict[str, Any]:
        machine: dict[str, Any] = self.fly_call("GET", f"/v1/apps/{self.app}/machines/{machine_id}")
        return machine

    def machines(self, **params: Any) -> list[dict[str, Any]]:
        machines: list[dict[str, Any]] = self.fly_call("GET", f"/v1/apps/{self.app}/machines", params=params)
        return machines

    def live_machines(self) -> list[dict[str, Any]]:
        return [m for m in self.machines() if m.get("state") not in DESTROYED_MACHINE_STATES]

    def volumes(self) -> list[dict[str, Any]]:
        """The app's volumes, but the soft-deleted ones Fly still lists."""
        volumes: list[dict[str, Any]] = self.fly_call("GET", f"/v1/apps/{self.app}/volumes")
        return [v for v in volumes if v.get("state") not in DESTROYED_VOLUME_STATES]

    def fault(self, **spec: Any) -> str:
        """Inject a fault (`POST /_sim/faults`, see docs/flysim.md); its id."""
        return str(self.fly_call("POST", "/_sim/faults", json=spec)["id"])

    def remove_fault(self, fault_id: str) -> None:
        self.fly_call("DELETE", f"/_sim/faults/{fault_id}")

    def clear_faults(self) -> None:
        self.fly_call("DELETE", "/_sim/faults")
