"""The real operator, in-process, against kubesim + flysim (each on its own loop and thread):
the demo's sandbox (`claw_operator.demo.sandbox`).

Tests talk to both simulators the way users and Fly do: the official `kubernetes` client for
ClawInstances, plain HTTP for Fly (the normal `/v1` API to meddle "behind the operator's
back", the `/_sim/` control API for faults and capacity).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from claw_operator.api import GROUP, PLURAL, VERSION
from claw_operator.demo import sandbox as demo_sandbox
from claw_operator.fly import FlyClientOptions, RateLimits, RetryPolicy
from claw_operator.lifecycle.model import Timings

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
    volume_detach=timedelta(seconds=0.3),  # flysim's fast profile detaches in 0.1 s
)


def _fast_kopf(settings: Any) -> None:
    settings.watching.server_timeout = 30
    settings.watching.client_timeout = 40
    settings.posting.idle_timeout = 0.1


FLY_CLIENT = FlyClientOptions(
    retry=RetryPolicy(attempts=3, timeout=5, wait_initial=0.05, wait_max=0.2),
    create_resolve_attempts=3,
    create_resolve_delay=0.1,
    volume_resolve_timeout=0.5,
    # Every test instance shares one app: Fly's per-app list limit (1/s) would pace the whole
    # suite. The limiter itself is pinned by the client's tests.
    rate_limits=RateLimits(action_rate=100, action_burst=100, get_rate=100, get_burst=100),
)


class Sandbox(demo_sandbox.Sandbox):
    """The demo's sandbox (FAST timings, flysim's fast profile), plus the official `kubernetes`
    client for ClawInstances and Secrets and the operators' logs in `logs`."""

    def __init__(self, workdir: Path) -> None:
        self.logs = io.StringIO()
        super().__init__(
            workdir,
            app=APP,
            token=TOKEN,
            profile="fast",
            seed=7,
            timings=FAST,
            fly_client_options=FLY_CLIENT,
            kopf_settings=_fast_kopf,
            log_handler=logging.StreamHandler(self.logs),
        )
        self._api_client: client.ApiClient | None = None

    def start(self) -> None:
        super().start()
        self._api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.api = client.CustomObjectsApi(self._api_client)
        self.core = client.CoreV1Api(self._api_client)

    def stop(self) -> None:
        super().stop()
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None

    # ---- ClawInstances, through the kubernetes client
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

    def record_phases(self, name: str) -> PhaseRecorder:
        recorder = PhaseRecorder(self, name)
        recorder.start()
        return recorder


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
    with Sandbox(tmp_path) as box:
        yield box
