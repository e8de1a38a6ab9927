"""The guided tour (`claw-operator demo --tour`): an instance's lifecycle in five steps, each
shown as a user sees it with `kubectl`, meddling with Fly the way reality does — through
flysim's normal `/v1` API (someone re-points a mount) and its `/_sim/faults` control API (Fly's
hosts are full):

1. create — `kubectl apply`, then `kubectl wait --for=condition=Ready`;
2. a start failure and its recovery — every machine create is refused, then capacity returns;
3. a mount drift and its repair — the machine is updated to mount another volume;
4. a restart — `spec.restartedAt` changes;
5. a delete — the machine and the volume are destroyed, then the finalizer is released.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from claw_operator.demo.console import Console, indent
from claw_operator.demo.sandbox import REPO, Sandbox, SandboxError
from claw_operator.demo.timeline import TimelineRecorder

__all__ = ["Tour", "example_manifest"]

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


def example_manifest() -> str:
    """examples/minimal.yaml from a checkout, or the same manifest for an installed package."""
    example = REPO / "examples" / "minimal.yaml"
    return example.read_text() if example.is_file() else _EXAMPLE


class Tour:
    TOTAL = 5

    def __init__(self, box: Sandbox, console: Console, recorder: TimelineRecorder | None = None) -> None:
        self.box = box
        self.console = console
        self.manifest = box.workdir / "minimal.yaml"
        self._clock = time.monotonic()
        self._recorder = recorder

    def step(self, number: int, title: str, story: str) -> None:
        if self._recorder is not None:
            self._recorder.mark(f"{number}. {title}")
        elapsed = time.monotonic() - self._clock
        self.console.say()
        self.console.say(f"━━ Step {number}/{self.TOTAL}: {title}  (t+{elapsed:.0f}s)")
        for line in story.strip().splitlines():
            self.console.say(f"   {line.strip()}")
        self.console.say()

    def show(self, name: str) -> None:
        """`kubectl get` of the instance, its conditions, and the Events `kubectl describe` lists."""
        self.console.kubectl("get", "clawinstance", name)
        self.conditions(name)
        self.events(name)

    def conditions(self, name: str) -> None:
        self.console.kubectl(
            "get",
            "clawinstance",
            name,
            "-o",
            'jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}){"\\n"}{end}',
        )

    def events(self, name: str) -> None:
        output = self.console.kubectl("describe", "clawinstance", name, show=False)
        self.console.say(f"$ kubectl describe clawinstance {name}   # its Events")
        self.console.say(indent(_events_section(output)))

    def _repoint_mount(self, machine_id: str, volume_id: str) -> None:
        box = self.box
        base = f"/v1/apps/{box.app}/machines/{machine_id}"
        box.fly_call("POST", f"{base}/stop")
        box.wait(lambda: box.machine(machine_id)["state"] == "stopped", 30, "the machine stopped")
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

        box.wait(start_accepted, 30, "the start accepted")
        box.wait(lambda: box.machine(machine_id)["state"] == "started", 30, "the machine started")

    def run(self) -> None:
        box, console = self.box, self.console
        self.manifest.write_text(example_manifest())

        self.step(
            1,
            "create an instance",
            """
            `kubectl apply` a ClawInstance; the operator creates a Fly Volume, then a Machine
            mounting it, and waits for it to start. Ready turns True.
            """,
        )
        console.kubectl("apply", "-f", str(self.manifest))
        console.kubectl("wait", "--for=condition=Ready", "clawinstance/minimal", "--timeout=90s")
        box.wait_events("minimal", "Started", timeout=10)
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
        fault = box.fault(
            method="POST",
            path="/v1/apps/*/machines",
            mode="error",
            status=412,
            count=None,
            message="insufficient memory available to fulfill request",
        )
        flaky = self.manifest.read_text().replace("name: minimal", "name: flaky")
        (box.workdir / "flaky.yaml").write_text(flaky)
        console.kubectl("apply", "-f", str(box.workdir / "flaky.yaml"))
        box.wait_condition("flaky", "StartFailed", "True", timeout=60)
        box.wait_events("flaky", "StartFailed", timeout=60)
        self.show("flaky")
        console.say()
        console.say(f"   ... capacity returns (DELETE /_sim/faults/{fault})")
        box.remove_fault(fault)
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
        console.kubectl("annotate", "clawinstance", "minimal", "claw.dev/paused=true")
        box.wait_condition("minimal", "Reconciling", "False", "Paused", timeout=30)
        self.conditions("minimal")
        status = box.status("minimal")
        machine_id, volume_id = status["machineId"], status["volumeId"]
        stray = box.fly_call(
            "POST", f"/v1/apps/{box.app}/volumes", json={"name": "stray", "region": "iad", "size_gb": 1}
        )
        console.say(f"   ... by hand, on Fly: machine {machine_id} now mounts {stray['id']} at /data")
        self._repoint_mount(machine_id, stray["id"])
        console.kubectl("annotate", "clawinstance", "minimal", "claw.dev/paused-")
        box.wait_condition("minimal", "MountRepaired", "True", timeout=90)
        box.wait_condition("minimal", "Restarting", "False", "RestartSucceeded", timeout=60)
        box.wait_events("minimal", "MountRepaired", timeout=60)
        mounts = [(m["volume"], m["path"]) for m in box.machine(machine_id)["config"]["mounts"]]
        self.show("minimal")
        console.say(f"   Fly: machine {machine_id} mounts {mounts} (the instance's volume is {volume_id})")

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
        restarting = (
            'jsonpath=Restarting={.status.conditions[?(@.type=="Restarting")].status}'
            ' ({.status.conditions[?(@.type=="Restarting")].reason}){"\\n"}'
        )
        # A fast restart is over before a `kubectl get` starts: watch the condition instead.
        with console.watching("get", "clawinstance", "minimal", "-o", restarting) as seen:
            box.wait(lambda: seen, 30, "kubectl's watch")
            console.kubectl("patch", "clawinstance", "minimal", "--type=merge", "-p", patch)
            box.wait(
                lambda: box.event_reasons("minimal").count("Restarted") > restarts_before,
                90,
                "minimal: Event Restarted",
            )
            box.wait(
                lambda: any("=True" in line for line in seen) and "=False" in seen[-1],
                30,
                "kubectl's watch to show the restart",
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
        console.kubectl("delete", "clawinstance", "minimal", "flaky", "--wait=false")
        box.wait(
            lambda: (box.get("minimal") or {}).get("status", {}).get("phase") in ("Destroying", None),
            30,
            "minimal: phase Destroying",
        )
        console.kubectl("get", "clawinstances")
        console.kubectl("wait", "--for=delete", "clawinstance/minimal", "clawinstance/flaky", "--timeout=90s")
        console.kubectl("get", "clawinstances")
        console.kubectl(
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
        volumes = [v for v in box.volumes() if v.get("name") != "stray"]
        console.say(
            f"   Fly: {len(owned)} machines and {len(volumes)} volumes left for the deleted instances"
        )
        if owned or volumes:
            raise SandboxError(f"Fly objects left behind: {owned or volumes}")


def _events_section(output: str) -> str:
    """The `Events:` block that ends `kubectl describe`."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Events:"):
            return "\n".join(lines[index:])
    return output
