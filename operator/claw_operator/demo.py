"""`claw-operator demo`: kubesim + flysim + the operator in one process, and a guided tour.

Everything runs in threads of this process (each server on its own event loop), so Ctrl-C
stops it all. The operator's logs go to `operator.log` in the work directory; the terminal
shows what a user sees with `kubectl` — the real binary, against kubesim, with the kubeconfig
written there.

`--tour` walks through an instance's lifecycle, meddling with Fly the way reality does, through
flysim's normal `/v1` API (someone re-points a mount) and its `/_sim/faults` control API (an
outage on machine creates):

1. create — `kubectl apply`, then `kubectl wait --for=condition=Ready`;
2. a start failure and its recovery — Fly answers 503 to every machine create, then recovers;
3. a mount drift and its repair — the machine is updated to mount another volume;
4. a restart — `spec.restartedAt` changes;
5. a delete — the machine and the volume are destroyed, then the finalizer is released.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from claw_operator.api import GROUP, VERSION
from claw_operator.api.crd import render_crd_yaml
from claw_operator.fly import RateLimits, RetryPolicy
from claw_operator.kube.config import OperatorConfig
from claw_operator.kube.logs import JsonFormatter
from claw_operator.kube.runner import OperatorThread
from claw_operator.lifecycle.model import Timings
from claw_operator.sim.flysim import FlySimThread
from claw_operator.sim.flysim.profiles import resolve_profile
from claw_operator.sim.kubesim import KubeSimThread
from claw_operator.tourtimeline import Recording, TimelineRecorder, draw_timeline

APP = "claw-demo"
TOKEN = "demo-token"
NAMESPACE = "default"

REPO = Path(__file__).resolve().parents[2]

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
)

# flysim's realistic profile keeps a destroyed machine's volume claimed for 20 s ("up to a few
# minutes" on Fly); the tour shortens that wait so the delete step takes seconds.
_DEMO_OVERRIDES = {"realistic": {"volume_detach": 2.0, "destroyed_visible": 2.0}}

_EXAMPLE = """\
# The smallest ClawInstance: a region and an image (everything else takes its default).
apiVersion: claw.dev/v1alpha1
kind: ClawInstance
metadata:
  name: minimal
  namespace: default
spec:
  region: iad
  image: registry.fly.io/claw:latest
"""


class DemoError(Exception):
    """The demo cannot run (message says why and what to do)."""


def _example_manifest() -> str:
    example = REPO / "examples" / "minimal.yaml"
    return example.read_text() if example.is_file() else _EXAMPLE


@dataclass
class Step:
    number: int
    total: int
    title: str


class DemoSandbox:
    """kubesim, flysim and the operator, started in that order and stopped in reverse."""

    def __init__(self, workdir: Path, *, profile: str = "realistic", out: TextIO = sys.stdout) -> None:
        self.workdir = workdir
        self.profile = profile
        self.out = out
        self.kubeconfig = workdir / "kubeconfig"
        self.cache_dir = workdir / "kube-cache"
        self.log_path = workdir / "operator.log"
        self.kube: KubeSimThread | None = None
        self.fly: FlySimThread | None = None
        self.operator: OperatorThread | None = None
        self.flyhttp: httpx.Client | None = None
        self._log_handler: logging.Handler | None = None
        self._previous_level = logging.WARNING
        self.kubectl_path = shutil.which("kubectl")
        self.metrics_port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, metrics_port: int | None = None) -> None:
        if self.kubectl_path is None:
            raise DemoError("kubectl is not installed: run `make tools` (or install kubectl) and retry")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._capture_logs()
        crds = REPO / "crds"
        if not (crds / "clawinstances.yaml").is_file():
            crds = self.workdir / "crds"
            crds.mkdir(exist_ok=True)
            (crds / "clawinstances.yaml").write_text(render_crd_yaml())
        self.kube = KubeSimThread(crds=crds, kubeconfig=self.kubeconfig)
        self.kube.start()
        profile = resolve_profile(self.profile).with_overrides(**_DEMO_OVERRIDES.get(self.profile, {}))
        self.fly = FlySimThread(profile=profile, seed=1, token=TOKEN)
        self.fly.start()
        self.flyhttp = httpx.Client(
            base_url=self.fly.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        self.metrics_port = metrics_port
        self.operator = OperatorThread(
            OperatorConfig(
                fly_api_url=self.fly.base_url,
                fly_token=TOKEN,
                default_app=APP,
                timings=DEMO_TIMINGS,
                kubeconfig=str(self.kubeconfig),
                metrics_port=metrics_port,
                metrics_host="127.0.0.1",
                fly_client_options={
                    "retry": RetryPolicy(attempts=3, timeout=10, wait_initial=0.1, wait_max=0.5),
                    "create_resolve_delay": 0.2,
                    "rate_limits": RateLimits(action_rate=20, action_burst=20, get_rate=50, get_burst=50),
                },
            ),
            settings_hook=_demo_kopf,
        )
        self.operator.start()

    def _capture_logs(self) -> None:
        handler = logging.FileHandler(self.log_path)
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        # The terminal is kubectl's: kopf and the operator log to the file only.
        self._previous_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # full URLs; the client logs routes
        self._log_handler = handler

    def stop(self) -> None:
        """Stop the operator first (it talks to both simulators), then Fly, then Kubernetes."""
        for part in (self.operator, self.fly, self.kube, self.flyhttp):
            if part is None:
                continue
            try:
                part.close() if isinstance(part, httpx.Client) else part.stop()
            except Exception as exc:  # keep stopping the rest
                print(f"claw-operator demo: stopping {type(part).__name__} failed: {exc}", file=sys.stderr)
        self.operator, self.fly, self.kube, self.flyhttp = None, None, None, None
        if self._log_handler is not None:
            logging.getLogger().setLevel(self._previous_level)
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    def __enter__(self) -> DemoSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ kubectl

    def kubectl(self, *args: str, show: bool = True, check: bool = True) -> str:
        """Run the real kubectl against kubesim; print the command and its output."""
        assert self.kubectl_path is not None
        command = [
            self.kubectl_path,
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        output = (done.stdout + done.stderr).rstrip()
        if show:
            self.say(f"$ kubectl {' '.join(_quote(a) for a in args)}")
            if output:
                self.say(_indent(output))
        if check and done.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed ({done.returncode}): {output}")
        return output

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    # ------------------------------------------------------------------ reading state

    def instance(self, name: str) -> dict[str, Any] | None:
        assert self.kube is not None
        obj: dict[str, Any] | None = self.kube.get(f"{GROUP}/{VERSION}", "ClawInstance", name, NAMESPACE)
        return obj

    def instances(self) -> list[dict[str, Any]]:
        assert self.kube is not None
        return list(self.kube.list(f"{GROUP}/{VERSION}", "ClawInstance", NAMESPACE))

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        obj = self.instance(name) or {}
        for cond in (obj.get("status") or {}).get("conditions", []):
            if cond.get("type") == type_:
                return dict(cond)
        return {}

    def event_reasons(self, name: str) -> list[str]:
        assert self.kube is not None
        return [e.get("reason", "") for e in self.kube.events(name=name, namespace=NAMESPACE)]

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")

    def wait_condition(
        self, name: str, type_: str, status: str, reason: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            cond = self.condition(name, type_)
            if cond.get("status") == status and (reason is None or cond.get("reason") == reason):
                return cond
            return None

        label = f"{name}: {type_}={status}" + (f" ({reason})" if reason else "")
        return dict(self.wait(label, check, timeout))

    def wait_event(self, name: str, reason: str, timeout: float = 60.0) -> None:
        self.wait(f"{name}: Event {reason}", lambda: reason in self.event_reasons(name), timeout)

    # ------------------------------------------------------------------ Fly, behind the operator's back

    def fly_call(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.flyhttp is not None
        response = self.flyhttp.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def machine(self, machine_id: str) -> dict[str, Any]:
        machine: dict[str, Any] = self.fly_call("GET", f"/v1/apps/{APP}/machines/{machine_id}")
        return machine

    def live_machines(self) -> list[dict[str, Any]]:
        machines: list[dict[str, Any]] = self.fly_call("GET", f"/v1/apps/{APP}/machines")
        return [m for m in machines if m.get("state") not in ("destroyed", "destroying")]

    def live_volumes(self) -> list[dict[str, Any]]:
        volumes: list[dict[str, Any]] = self.fly_call("GET", f"/v1/apps/{APP}/volumes")
        gone = ("destroyed", "pending_destroy", "scheduling_destroy")
        return [v for v in volumes if v.get("state") not in gone]


def _demo_kopf(settings: Any) -> None:
    settings.posting.idle_timeout = 0.2  # Events show up in `kubectl describe` at once


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' {}[]"$\\') else arg


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


# ---------------------------------------------------------------------------- the tour


class Tour:
    TOTAL = 5

    def __init__(self, box: DemoSandbox, recorder: TimelineRecorder | None = None) -> None:
        self.box = box
        self.manifest = box.workdir / "minimal.yaml"
        self._clock = time.monotonic()
        self._recorder = recorder

    def step(self, number: int, title: str, story: str) -> None:
        if self._recorder is not None:
            self._recorder.mark(f"{number}. {title}")
        elapsed = time.monotonic() - self._clock
        self.box.say()
        self.box.say(f"━━ Step {number}/{self.TOTAL}: {title}  (t+{elapsed:.0f}s)")
        for line in story.strip().splitlines():
            self.box.say(f"   {line.strip()}")
        self.box.say()

    def show(self, name: str) -> None:
        """`kubectl get` of the instance, its conditions, and the Events `kubectl describe` lists."""
        self.box.kubectl("get", "clawinstance", name)
        self.conditions(name)
        self.events(name)

    def conditions(self, name: str) -> None:
        self.box.kubectl(
            "get",
            "clawinstance",
            name,
            "-o",
            'jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}){"\\n"}{end}',
        )

    def events(self, name: str) -> None:
        output = self.box.kubectl("describe", "clawinstance", name, show=False)
        self.box.say(f"$ kubectl describe clawinstance {name}   # its Events")
        self.box.say(_indent(_events_section(output)))

    def _repoint_mount(self, machine_id: str, volume_id: str) -> None:
        box = self.box
        base = f"/v1/apps/{APP}/machines/{machine_id}"
        box.fly_call("POST", f"{base}/stop")
        box.wait("the machine stopped", lambda: box.machine(machine_id)["state"] == "stopped", timeout=30)
        config = box.machine(machine_id)["config"]
        config["mounts"] = [{"volume": volume_id, "path": "/data"}]
        box.fly_call("POST", base, json={"config": config})

        def start_accepted() -> bool:
            # Fly refuses a start while replacing, and for a moment after a stop: retry.
            try:
                box.fly_call("POST", f"{base}/start")
            except httpx.HTTPStatusError:
                return False
            return True

        box.wait("the start accepted", start_accepted, timeout=30)
        box.wait("the machine started", lambda: box.machine(machine_id)["state"] == "started", timeout=30)

    def run(self) -> None:
        box = self.box
        self.manifest.write_text(_example_manifest())

        self.step(
            1,
            "create an instance",
            """
            `kubectl apply` a ClawInstance; the operator creates a Fly Volume, then a Machine
            mounting it, and waits for it to start. Ready turns True.
            """,
        )
        box.kubectl("apply", "-f", str(self.manifest))
        box.kubectl("wait", "--for=condition=Ready", "clawinstance/minimal", "--timeout=90s")
        box.wait_event("minimal", "Started", timeout=10)
        self.show("minimal")

        self.step(
            2,
            "a start failure, and its recovery",
            """
            Fly's hosts in iad are full: every machine create answers 412 "insufficient
            memory" (a fault injected through flysim's /_sim/faults). A second instance
            cannot start: StartFailed=True (InsufficientCapacity), phase Stopped, a Warning
            Event; the operator retries with backoff. Capacity returns; the next retry starts it.
            """,
        )
        fault = box.fly_call(
            "POST",
            "/_sim/faults",
            json={
                "method": "POST",
                "path": "/v1/apps/*/machines",
                "mode": "error",
                "status": 412,
                "count": None,
                "message": "insufficient memory available to fulfill request",
            },
        )
        flaky = self.manifest.read_text().replace("name: minimal", "name: flaky")
        (box.workdir / "flaky.yaml").write_text(flaky)
        box.kubectl("apply", "-f", str(box.workdir / "flaky.yaml"))
        box.wait_condition("flaky", "StartFailed", "True", timeout=60)
        box.wait_event("flaky", "StartFailed")
        self.show("flaky")
        box.say()
        box.say(f"   ... capacity returns (DELETE /_sim/faults/{fault['id']})")
        box.fly_call("DELETE", f"/_sim/faults/{fault['id']}")
        box.wait_condition("flaky", "Ready", "True", timeout=90)
        box.wait_condition("flaky", "StartFailed", "False", timeout=10)
        self.show("flaky")

        self.step(
            3,
            "a mount drift, and its repair",
            """
            Someone pauses reconciliation (annotation claw.dev/paused=true) and re-points the
            machine at another volume by hand through the Fly API (stop, update, start).
            Once unpaused, the periodic check sees the wrong mount and restarts the machine
            onto the instance's own volume: MountRepaired=True; Events Restarting, Restarted,
            MountRepaired.
            """,
        )
        box.kubectl("annotate", "clawinstance", "minimal", "claw.dev/paused=true")
        box.wait_condition("minimal", "Reconciling", "False", "Paused", timeout=30)
        self.conditions("minimal")
        status = (box.instance("minimal") or {}).get("status") or {}
        machine_id, volume_id = status["machineId"], status["volumeId"]
        stray = box.fly_call(
            "POST", f"/v1/apps/{APP}/volumes", json={"name": "stray", "region": "iad", "size_gb": 1}
        )
        box.say(f"   ... by hand, on Fly: machine {machine_id} now mounts {stray['id']} at /data")
        self._repoint_mount(machine_id, stray["id"])
        box.kubectl("annotate", "clawinstance", "minimal", "claw.dev/paused-")
        box.wait_condition("minimal", "MountRepaired", "True", timeout=90)
        box.wait_condition("minimal", "Restarting", "False", "RestartSucceeded", timeout=60)
        box.wait_event("minimal", "MountRepaired")
        mounts = [(m["volume"], m["path"]) for m in box.machine(machine_id)["config"]["mounts"]]
        self.show("minimal")
        box.say(f"   Fly: machine {machine_id} mounts {mounts} (the instance's volume is {volume_id})")

        self.step(
            4,
            "a restart",
            """
            Setting spec.restartedAt asks for a restart: stop, update, start. The Restarting
            condition guards it (a crash midway resumes, never restarts twice).
            """,
        )
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        restarts_before = box.event_reasons("minimal").count("Restarted")
        patch = f'{{"spec":{{"restartedAt":"{stamp}"}}}}'
        box.kubectl("patch", "clawinstance", "minimal", "--type=merge", "-p", patch)
        box.wait_condition("minimal", "Restarting", "True", "RestartRequested", timeout=30)
        box.kubectl(
            "get",
            "clawinstance",
            "minimal",
            "-o",
            'jsonpath=Restarting={.status.conditions[?(@.type=="Restarting")].status}'
            ' ({.status.conditions[?(@.type=="Restarting")].reason}){"\\n"}',
        )
        box.wait(
            "minimal: Event Restarted",
            lambda: box.event_reasons("minimal").count("Restarted") > restarts_before,
            timeout=90,
        )
        box.wait_condition("minimal", "Ready", "True", timeout=30)
        self.show("minimal")

        self.step(
            5,
            "delete",
            """
            `kubectl delete` runs the two-phase destroy: the machine, then the volume, then
            the finalizer is released and the object disappears.
            """,
        )
        box.kubectl("delete", "clawinstance", "minimal", "flaky", "--wait=false")
        box.wait(
            "minimal: phase Destroying",
            lambda: (box.instance("minimal") or {}).get("status", {}).get("phase") in ("Destroying", None),
            timeout=30,
        )
        box.kubectl("get", "clawinstances")
        box.kubectl("wait", "--for=delete", "clawinstance/minimal", "clawinstance/flaky", "--timeout=90s")
        box.kubectl("get", "clawinstances")
        box.kubectl(
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=minimal",
            "--sort-by",
            ".lastTimestamp",
            "-o",
            "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message",
        )
        owned = [m for m in box.live_machines() if m.get("metadata", {}).get("claw_name")]
        volumes = [v for v in box.live_volumes() if v.get("name") != "stray"]
        box.say(f"   Fly: {len(owned)} machines and {len(volumes)} volumes left for the deleted instances")
        if owned or volumes:
            raise DemoError(f"Fly objects left behind: {owned or volumes}")


def _draw_tour(box: DemoSandbox, recording: Recording, workdir: Path | None) -> Path | None:
    """The tour's timeline picture (in the kept workdir, else the temp dir); its path, printed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        box.say("(pip install 'claw-operator[plots]' for a timeline picture of the tour)")
        return None
    assert box.fly is not None
    fly_states: dict[str, list[dict[str, Any]]] = {}
    for name in recording.names():
        for machine_id in recording.machine_ids(name):
            try:
                fly_states[machine_id] = box.fly.timeline(machine_id)
            except Exception:  # a machine flysim no longer knows: drawn without its states
                fly_states[machine_id] = []
    where = workdir or Path(tempfile.gettempdir())
    path = draw_timeline(recording, fly_states, where / f"claw-tour-{datetime.now(UTC):%Y%m%dT%H%M%S}.png")
    box.say(f"Timeline of the tour (phases, conditions, Fly's machine states): {path}")
    return path


def _events_section(output: str) -> str:
    """The `Events:` block that ends `kubectl describe`."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Events:"):
            return "\n".join(lines[index:])
    return output


# ---------------------------------------------------------------------------- entry points


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
    box = DemoSandbox(directory, profile=profile, out=out)
    try:
        with _sigterm_as_interrupt(), box:
            box.say(f"Starting kubesim, flysim ({profile} profile) and claw-operator ...")
            box.start(metrics_port=metrics_port)
            assert box.kube is not None and box.fly is not None
            box.say(f"  kubesim   {box.kube.base_url}   (kubeconfig: {box.kubeconfig})")
            box.say(f"  flysim    {box.fly.base_url}/v1   (control API: {box.fly.base_url}/_sim/)")
            box.say(f"  operator  logs: {box.log_path}")
            if metrics_port is not None:
                box.say(f"            http://127.0.0.1:{metrics_port}/metrics  /healthz  /readyz")
            if tour:
                recorder = TimelineRecorder(lambda: box.instances()).start()
                try:
                    Tour(box, recorder).run()
                finally:
                    recording = recorder.stop()
                box.say()
                box.say(f"Tour complete in {time.monotonic() - started:.0f}s.")
                _draw_tour(box, recording, directory if keep else None)
                box.say("Try it yourself: `make sandbox` (or `claw-operator demo`) keeps everything running.")
                return 0
            _sandbox(box, stop)
            return 0
    except KeyboardInterrupt:
        box.say()
        box.say("Stopped.")
        return 0 if not tour else 130
    except (DemoError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        keep = True
        print(f"claw-operator demo: {exc}", file=sys.stderr)
        print(f"(operator logs: {box.log_path})", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


def _sandbox(box: DemoSandbox, stop: threading.Event | None) -> None:
    manifest = box.workdir / "minimal.yaml"
    manifest.write_text(_example_manifest())
    box.kubectl("apply", "-f", str(manifest))
    example = yaml.safe_load(manifest.read_text())
    name = example["metadata"]["name"]
    cache = f"--cache-dir {box.cache_dir}"
    box.say(
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

Fly (flysim) is at {box.fly.base_url if box.fly else "?"}/v1 (any token); break things with its
control API, e.g. curl -X POST {box.fly.base_url if box.fly else "?"}/_sim/faults -d '{{"method": "POST",
"path": "/v1/apps/*/machines", "mode": "error", "status": 503, "count": 3}}'
(if kubectl complains about stale API discovery, add {cache})

Operator logs: tail -f {box.log_path}
Ctrl-C stops everything."""
    )
    waiter = stop or threading.Event()
    while not waiter.wait(0.5):
        if box.operator is not None and box.operator.error is not None:
            raise DemoError(f"the operator stopped: {box.operator.error}")
