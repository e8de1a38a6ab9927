"""The real operator, in-process, against kubesim + flysim (each on its own loop and thread).

Tests talk to both sandboxes the way users and Fly do: the official `kubernetes` client for
ClawInstances, plain HTTP for Fly (the normal `/v1` API to meddle "behind the operator's
back", the `/_sim/` control API for faults and capacity).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config

from claw_operator.api import GROUP, PLURAL, VERSION
from claw_operator.fly import RateLimits, RetryPolicy
from claw_operator.kube.config import OperatorConfig
from claw_operator.kube.logs import JsonFormatter
from claw_operator.kube.runner import OperatorThread
from claw_operator.lifecycle.model import Timings
from claw_operator.sim.flysim import FlySimThread
from claw_operator.sim.kubesim import KubeSimThread
from tests.conftest import REPO

APP = "claw-test"
TOKEN = "fo1_integration-secret-token"

FAST = Timings(
    poll_starting=timedelta(seconds=0.5),
    poll_running=timedelta(seconds=0.5),
    poll_destroying=timedelta(seconds=0.3),
    poll_idle=timedelta(seconds=1),
    poll_jitter=timedelta(seconds=0.1),
    starting_timeout=timedelta(seconds=4),
    stopped_threshold=5,
    fly_wait_timeout=timedelta(seconds=2),
    retry_base=timedelta(seconds=0.2),
    retry_cap=timedelta(seconds=1),
    loss_grace=timedelta(seconds=0.5),
    listing_settle=timedelta(seconds=1.5),
)


def _fast_kopf(settings: Any) -> None:
    settings.watching.server_timeout = 30
    settings.watching.client_timeout = 40
    settings.posting.idle_timeout = 0.1


@dataclass
class Sandbox:
    kube: KubeSimThread
    fly: FlySimThread
    api: client.CustomObjectsApi
    core: client.CoreV1Api
    flyhttp: httpx.Client
    kubeconfig: Path
    logs: io.StringIO
    operators: list[OperatorThread] = field(default_factory=list)
    namespace: str = "default"

    # ---- the operator
    def start_operator(
        self,
        *,
        token: str = TOKEN,
        timings: Timings = FAST,
        gateway_hook: Any = None,
        default_app: str | None = APP,
        metrics_port: int | None = None,
        watch_stale_after: float = 600.0,
    ) -> OperatorThread:
        operator = OperatorThread(
            OperatorConfig(
                fly_api_url=self.fly.base_url,
                fly_token=token,
                default_app=default_app,
                timings=timings,
                kubeconfig=str(self.kubeconfig),
                metrics_port=metrics_port,
                metrics_host="127.0.0.1",
                watch_stale_after=watch_stale_after,
                fly_client_options={
                    "retry": RetryPolicy(attempts=3, timeout=5, wait_initial=0.05, wait_max=0.2),
                    "create_resolve_attempts": 3,
                    "create_resolve_delay": 0.1,
                    "volume_resolve_timeout": 0.5,
                    # Every test instance shares one app: Fly's per-app list limit (1/s) would
                    # pace the whole suite. The limiter itself is pinned by the client's tests.
                    "rate_limits": RateLimits(action_rate=100, action_burst=100, get_rate=100, get_burst=100),
                },
            ),
            settings_hook=_fast_kopf,
            gateway_hook=gateway_hook,
        )
        operator.start()
        self.operators.append(operator)
        return operator

    def stop_operators(self) -> None:
        while self.operators:
            self.operators.pop().stop()

    # ---- ClawInstances
    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClawInstance",
            "metadata": {"name": name, **spec.pop("metadata", {})},
            "spec": {"region": "iad", "image": "registry.fly.io/claw:1", **spec},
        }
        created: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, body
        )
        return patched

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def status(self, name: str) -> dict[str, Any]:
        obj = self.get(name)
        return (obj or {}).get("status") or {}

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for cond in self.status(name).get("conditions", []):
            if cond["type"] == type_:
                return dict(cond)
        return {}

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.kube.events(name=name, namespace=self.namespace)]

    def event_reasons(self, name: str) -> list[str]:
        return [e.get("reason", "") for e in self.events(name)]

    def wait_events(self, name: str, *reasons: str, timeout: float = 5.0) -> list[str]:
        """Wait until the object has Events with every one of `reasons`; return all its reasons.

        kopf posts Events in the background, after the status write that a test usually waits
        for: reading them at once races with the poster.
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

    def wait(
        self, predicate: Callable[[], Any], timeout: float = 20.0, what: str | Callable[[], str] = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.05)
        described = what() if callable(what) else what
        raise AssertionError(f"timed out waiting for {described}; last value: {last!r}")

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

    def wait_gone(self, name: str, timeout: float = 20.0) -> None:
        self.wait(lambda: self.get(name) is None, timeout, f"{name} deleted")

    def record_phases(self, name: str) -> PhaseRecorder:
        recorder = PhaseRecorder(self, name)
        recorder.start()
        return recorder

    # ---- Fly
    def machines(self, **params: Any) -> list[dict[str, Any]]:
        response = self.flyhttp.get(f"/v1/apps/{APP}/machines", params=params)
        response.raise_for_status()
        machines: list[dict[str, Any]] = response.json()
        return machines

    def live_machines(self) -> list[dict[str, Any]]:
        return [m for m in self.machines() if m["state"] not in ("destroyed", "destroying")]

    def volumes(self) -> list[dict[str, Any]]:
        response = self.flyhttp.get(f"/v1/apps/{APP}/volumes")
        response.raise_for_status()
        volumes: list[dict[str, Any]] = response.json()
        return [
            v for v in volumes if v.get("state") not in ("destroyed", "pending_destroy", "scheduling_destroy")
        ]

    def fault(self, **spec: Any) -> str:
        response = self.flyhttp.post("/_sim/faults", json=spec)
        response.raise_for_status()
        return str(response.json()["id"])

    def clear_faults(self) -> None:
        self.flyhttp.delete("/_sim/faults").raise_for_status()


class PhaseRecorder(threading.Thread):
    """Every distinct status.phase an object goes through, in order (polled every 10 ms)."""

    def __init__(self, box: Sandbox, name: str) -> None:
        super().__init__(daemon=True)
        self.box, self.name = box, name
        self.phases: list[str] = []
        self.restarting: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            status = self.box.status(self.name)
            phase = status.get("phase")
            if phase and (not self.phases or self.phases[-1] != phase):
                self.phases.append(phase)
            cond = next((c for c in status.get("conditions", []) if c["type"] == "Restarting"), None)
            if cond and (not self.restarting or self.restarting[-1] != cond["status"]):
                self.restarting.append(cond["status"])
            time.sleep(0.01)

    def stop(self) -> list[str]:
        self._stop_event.set()
        self.join(5)
        return self.phases


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    kubeconfig = tmp_path / "kubeconfig"
    with (
        KubeSimThread(crds=REPO / "crds", kubeconfig=kubeconfig) as kube,
        FlySimThread(profile="fast", seed=7, token=TOKEN) as fly,
    ):
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        flyhttp = httpx.Client(
            base_url=fly.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        box = Sandbox(
            kube=kube,
            fly=fly,
            api=client.CustomObjectsApi(api_client),
            core=client.CoreV1Api(api_client),
            flyhttp=flyhttp,
            kubeconfig=kubeconfig,
            logs=logs,
        )
        try:
            yield box
        finally:
            box.stop_operators()
            flyhttp.close()
            api_client.close()
            root.removeHandler(handler)
            root.setLevel(previous_level)
