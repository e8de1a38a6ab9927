"""`claw-operator demo`: the sandbox kept running until Ctrl-C, or, with `--tour`, the tour.

The terminal is kubectl's: the operator logs to `operator.log` in the work directory.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from claw_operator.demo.console import Console
from claw_operator.demo.sandbox import REPO, Sandbox, SandboxError
from claw_operator.demo.timeline import Recording, TimelineRecorder, draw_timeline
from claw_operator.demo.tour import Tour, example_manifest
from claw_operator.fly import FlyClientOptions, RateLimits, RetryPolicy
from claw_operator.lifecycle.model import Timings
from claw_operator.sim.flysim.profiles import resolve_profile

__all__ = ["run_demo"]

APP = "claw-demo"
TOKEN = "demo-token"

# Short cadences so each step of the tour shows its effect within seconds (the production
# defaults check a running machine every 5 minutes).
DEMO_TIMINGS = Timings(
    poll_starting=timedelta(seconds=1),
    poll_running=timedelta(seconds=1),
    poll_destroying=timedelta(seconds=1),
    poll_idle=timedelta(seconds=5),
    poll_jitter=timedelta(seconds=0.2),
    starting_timeout=timedelta(seconds=60),
    stopped_threshold=10,
    fly_wait_timeout=timedelta(seconds=10),
    retry_base=timedelta(seconds=1),
    retry_cap=timedelta(seconds=3),
    volume_detach=timedelta(seconds=2),  # as _DEMO_OVERRIDES shortens flysim's detach
)

DEMO_FLY_CLIENT = FlyClientOptions(
    retry=RetryPolicy(attempts=3, timeout=10, wait_initial=0.1, wait_max=0.5),
    create_resolve_delay=0.2,
    rate_limits=RateLimits(action_rate=20, action_burst=20, get_rate=50, get_burst=50),
)

# flysim's realistic profile keeps a destroyed machine's volume claimed for 20 s ("up to a few
# minutes" on Fly); the tour shortens that wait so the delete step takes seconds.
_DEMO_OVERRIDES = {"realistic": {"volume_detach": 2.0, "destroyed_visible": 2.0}}


def _demo_kopf(settings: Any) -> None:
    settings.posting.idle_timeout = 0.2  # Events show up in `kubectl describe` at once


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(
    *,
    tour: bool,
    profile: str = "realistic",
    workdir: Path | None = None,
    metrics_port: int | None = None,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
) -> int:
    """The sandbox (until Ctrl-C or `stop`) or, with `tour`, the scripted walk. Exit status."""
    # A temporary directory goes when the demo ends well; one given, or one holding the logs
    # of a failure, stays.
    keep = workdir is not None
    directory = workdir or Path(tempfile.mkdtemp(prefix="claw-demo-"))
    started = time.monotonic()
    log_path = directory / "operator.log"
    box = Sandbox(
        directory,
        app=APP,
        token=TOKEN,
        profile=resolve_profile(profile).with_overrides(**_DEMO_OVERRIDES.get(profile, {})),
        seed=1,
        timings=DEMO_TIMINGS,
        fly_client_options=DEMO_FLY_CLIENT,
        kopf_settings=_demo_kopf,
    )
    httpx_logger = logging.getLogger("httpx")
    httpx_level = httpx_logger.level
    try:
        console = Console(box.kubeconfig, directory / "kube-cache", out=out)
        directory.mkdir(parents=True, exist_ok=True)
        box.log_handler = logging.FileHandler(log_path)
        httpx_logger.setLevel(logging.WARNING)  # full URLs; the client logs routes
        with _sigterm_as_interrupt():
            console.say(f"Starting kubesim, flysim ({profile} profile) and claw-operator ...")
            with box:
                box.start_operator(metrics_port=metrics_port)
                console.say(f"  kubesim   {box.kube.base_url}   (kubeconfig: {box.kubeconfig})")
                console.say(f"  flysim    {box.fly.base_url}/v1   (control API: {box.fly.base_url}/_sim/)")
                console.say(f"  operator  logs: {log_path}")
                if metrics_port is not None:
                    console.say(f"            http://127.0.0.1:{metrics_port}/metrics  /healthz  /readyz")
                if tour:
                    recorder = TimelineRecorder(box.instances).start()
                    try:
                        Tour(box, console, recorder).run()
                    finally:
                        recording = recorder.stop()
                    console.say()
                    console.say(f"Tour complete in {time.monotonic() - started:.0f}s.")
                    _draw_tour(box, console, recording, directory if keep else None)
                    console.say(
                        "Try it yourself: `make sandbox` (or `claw-operator demo`) keeps everything running."
                    )
                    return 0
                _keep_running(box, console, log_path, stop)
                return 0
    except KeyboardInterrupt:
        print(file=out)
        print("Stopped.", file=out, flush=True)
        return 0 if not tour else 130
    except (SandboxError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        keep = True
        print(f"claw-operator demo: {exc}", file=sys.stderr)
        print(f"(operator logs: {log_path})", file=sys.stderr)
        return 1
    finally:
        httpx_logger.setLevel(httpx_level)
        if box.log_handler is not None:
            box.log_handler.close()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


def _draw_tour(box: Sandbox, console: Console, recording: Recording, workdir: Path | None) -> Path | None:
    """The tour's timeline picture (in the kept workdir, else the temp dir); its path, printed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        console.say("(pip install 'claw-operator[plots]' for a timeline picture of the tour)")
        return None
    fly_states: dict[str, list[dict[str, Any]]] = {}
    for name in recording.names():
        for machine_id in recording.machine_ids(name):
            try:
                fly_states[machine_id] = box.fly.timeline(machine_id)
            except Exception:  # a machine flysim no longer knows: drawn without its states
                fly_states[machine_id] = []
    where = workdir or Path(tempfile.gettempdir())
    path = draw_timeline(recording, fly_states, where / f"claw-tour-{datetime.now(UTC):%Y%m%dT%H%M%S}.png")
    console.say(f"Timeline of the tour (phases, conditions, Fly's machine states): {path}")
    return path


def _keep_running(box: Sandbox, console: Console, log_path: Path, stop: threading.Event | None) -> None:
    manifest = box.workdir / "minimal.yaml"
    manifest.write_text(example_manifest())
    console.kubectl("apply", "-f", str(manifest))
    example = yaml.safe_load(manifest.read_text())
    name = example["metadata"]["name"]
    cache = f"--cache-dir {console.cache_dir}"
    console.say(
        f"""
The sandbox is running. In another terminal:

    export KUBECONFIG={box.kubeconfig}

    kubectl get clawinstances                      # phase, machine, Ready
    kubectl describe clawinstance {name}           # conditions and Events
    kubectl wait --for=condition=Ready clawinstance/{name} --timeout=60s
    kubectl annotate clawinstance {name} claw.dev/paused=true            # pause reconciliation
    kubectl annotate clawinstance {name} claw.dev/paused-                # resume
    kubectl annotate clawinstance {name} claw.dev/reconcile-requested-at="$(date +%s)"  # reconcile now
    kubectl patch clawinstance {name} --type=merge -p '{{"spec":{{"restartedAt":"'$(date +%s)'"}}}}'
    kubectl apply -f {REPO / "examples" / "secret-env.yaml"}   # a Secret, and an instance using it
    kubectl delete clawinstance {name}

Fly (flysim) is at {box.fly.base_url}/v1 (any token); break things with its
control API, e.g. curl -X POST {box.fly.base_url}/_sim/faults -d '{{"method": "POST",
"path": "/v1/apps/*/machines", "mode": "error", "status": 503, "count": 3}}'
(if kubectl complains about stale API discovery, add {cache})

Operator logs: tail -f {log_path}
Ctrl-C stops everything."""
    )
    waiter = stop or threading.Event()
    operator = box.operators[0]
    while not waiter.wait(0.5):
        if operator.error is not None:
            raise SandboxError(f"the operator stopped: {operator.error}")
