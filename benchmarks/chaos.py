"""Chaos: a fleet of ClawInstances under Fly faults, user edits and `kill -9` of the operator,
with the invariants checked on the real processes.

kubesim, flysim (realistic latencies) and the operator run as three processes (`processes.py`,
as `fleet.py` does). Per seed, the run:

1. creates N ClawInstances (spread over namespaces and Fly apps) while faults are already
   being injected;
2. for `--chaos` seconds: injects flysim faults (errors 5xx/429, hang, reset, silent success on
   every write route, single 404s on GET machine and GET volume, stale and empty listings,
   regional capacity), makes user edits (image, volume grow, restartedAt, state
   Stopped/Running, pause/unpause, delete and re-create), and `kill -9`s the operator at random
   moments and, on purpose, between a machine destroy and its volume delete and between the
   stop and the start of a restart (both seen in flysim's state), restarting it each time;
3. lifts every fault, unpauses, and waits for every instance to converge;
4. deletes everything and waits for Fly to be empty.

Checked throughout, from flysim's own state (`GET /_sim/world`, which no fault touches):
0 duplicate machines or volumes per instance at every sample (machines tagged
`claw_instance_uid`, volumes named `claw_` + 24 hex digits of the UID); no volume an instance's
machine ever mounted is destroyed, or left for another volume, while the instance lives. After
the lift: each `restartedAt` ran exactly once (stops and new versions on flysim's timeline);
every instance converged (Ready, the desired power state, `status.volumeId` = the mounted volume,
the spec applied, no `Stalled`). After the delete: no machine, volume or ClawInstance left.

    python benchmarks/chaos.py                     # 3 seeds x 100 instances (make chaos)
    python benchmarks/chaos.py --seeds 1 --n 30 --chaos 40    # a quick look
    python benchmarks/chaos.py --first-seed 7 --seeds 1 --keep-logs /tmp/chaos-logs

Writes `benchmarks/results/chaos.json` (or `--output`) and, per seed, a picture of the run next
to it (`chaos-seed<N>.png`: the fleet by phase and Ready, faults, kills, Fly's live objects and
violations over time, time to first Ready, Fly calls per phase, operator CPU and RSS); exits 1
when any invariant broke, 2 when the harness itself failed (its figures are then not to be trusted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

import plots
from claw_operator.api import GROUP, PAUSED_ANNOTATION, PLURAL, VERSION
from claw_operator.fly.tags import METADATA_UID_KEY
from claw_operator.lifecycle import volume_name
from processes import REPO, RESULTS, free_port, kill_hard, sample, simulators, spawn, stop

API = f"/apis/{GROUP}/{VERSION}"
FLY_TOKEN = "chaos-token"
REGIONS = ("iad", "ord", "ams", "fra")
LIVE_VOLUME_STATES = frozenset({"created", "creating", "hydrating", "restoring", "extending"})
GONE_MACHINE_STATES = frozenset({"destroying", "destroyed"})
IMAGE = "registry.fly.io/claw"

# Every route the operator writes through, and the reads it decides from.
WRITE_ROUTES = (
    ("POST", "/v1/apps/*/volumes"),
    ("PUT", "/v1/apps/*/volumes/*/extend"),
    ("DELETE", "/v1/apps/*/volumes/*"),
    ("POST", "/v1/apps/*/machines"),
    ("POST", "/v1/apps/*/machines/*"),
    ("POST", "/v1/apps/*/machines/*/start"),
    ("POST", "/v1/apps/*/machines/*/stop"),
    ("DELETE", "/v1/apps/*/machines/*"),
)
READ_ROUTES = (
    ("GET", "/v1/apps/*/machines"),
    ("GET", "/v1/apps/*/machines/*"),
    ("GET", "/v1/apps/*/machines/*/wait"),
    ("GET", "/v1/apps/*/volumes"),
    ("GET", "/v1/apps/*/volumes/*"),
)
LIST_ROUTES = (("GET", "/v1/apps/*/machines"), ("GET", "/v1/apps/*/volumes"))
FLICKER_ROUTES = (("GET", "/v1/apps/*/machines/*"), ("GET", "/v1/apps/*/volumes/*"))

# Fault kinds and how often each is drawn.
FAULT_WEIGHTS = {
    "error_5xx": 2.0,
    "error_429": 1.0,
    "hang": 0.4,
    "reset": 1.0,
    "silent_success": 3.0,
    "not_found_flicker": 2.0,
    "stale_list": 1.5,
    "empty_list": 1.0,
    "capacity": 0.4,
    # A silently succeeded create followed by listings that do not show it yet (issue 18, 1).
    "silent_create_then_stale_list": 1.2,
}
ACTION_WEIGHTS = {
    "image": 2.0,
    "volume_grow": 2.0,
    "restart": 2.0,
    "stop": 1.2,
    "start": 1.2,
    "pause": 0.8,
    "delete_and_replace": 0.5,
}


# The first of an unconverged instance's problems names its violation: what Fly shows first,
# then what the status says.
PROBLEM_ORDER = (
    "object_missing",
    "machines",
    "mounted_volume_not_ours",
    "volume_not_grown",
    "machine_state",
    "image_not_applied",
    "status_machine_mismatch",
    "generation_not_observed",
    "not_ready",
)
# Event reasons that claim Fly lost something; in this run nothing is ever lost out of band.
LOSS_REASONS = ("VolumeLost", "MachineLost")
FLY_ID = re.compile(r"\b(vol_[a-z0-9]+|[0-9a-f]{14})\b")


def now_epoch() -> float:
    return time.time()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------- the record


@dataclass
class Violation:
    kind: str
    instance: str
    at: float
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "instance": self.instance, "at": iso(self.at), "evidence": self.evidence}


@dataclass
class RestartRequest:
    value: str
    at: float
    machine_id: str | None
    version: str | None
    killed_in_window: bool = False


@dataclass
class Tracked:
    """One ClawInstance as the harness made it: what it asked for, and when."""

    key: str
    namespace: str
    name: str
    app: str
    region: str
    image: str
    size_gb: int
    desired: str = "Running"
    paused: bool = False
    uid: str | None = None
    created_at: float = 0.0
    doomed_at: float | None = None
    restart: RestartRequest | None = None
    actions: list[str] = field(default_factory=list)
    edits_while_paused: list[str] = field(default_factory=list)

    @property
    def reserved(self) -> bool:
        # An instance with a restart requested gets no other edit: its stops and versions on
        # flysim's timeline then belong to that restart alone.
        return self.restart is not None or self.doomed_at is not None


# ------------------------------------------------------------------------------- the clients


class Clients:
    def __init__(self, kube_url: str, fly_url: str, session: aiohttp.ClientSession) -> None:
        self.kube_url, self.fly_url, self.session = kube_url, fly_url, session
        self.kube_headers = {"Authorization": "Bearer kubesim"}
        self.fly_headers = {"Authorization": f"Bearer {FLY_TOKEN}"}

    async def kube(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        headers = {**self.kube_headers, "Content-Type": content_type}
        data = json.dumps(body) if body is not None else None
        async with self.session.request(method, self.kube_url + path, headers=headers, data=data) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text.startswith("{") else text)

    async def sim(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        async with self.session.request(
            method, self.fly_url + path, headers=self.fly_headers, json=body, params=params
        ) as response:
            response.raise_for_status()
            return await response.json()


class Operator:
    """The operator process: started, killed with SIGKILL, started again, each life logged apart."""

    def __init__(self, args: list[str], workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.lives = 0
        self.started_at = 0.0
        self.up_at: float | None = None  # when this life's first log line was seen
        self.logs: list[Path] = []

    def start(self) -> None:
        self.lives += 1
        log = self.workdir / f"operator-{self.lives}.log"
        self.logs.append(log)
        self.process = spawn(self.args, log, env={"FLY_API_TOKEN": FLY_TOKEN})
        self.started_at = time.monotonic()
        self.up_at = None

    def up_for(self) -> float:
        """Seconds since this life logged its first line ("starting claw-operator"): the Python
        start-up before it takes seconds on a loaded machine, and a process killed in it has
        done nothing (no pass, no status) — its kill would test nothing."""
        if self.up_at is None:
            if not self.running or not self.logs or not self.logs[-1].exists():
                return 0.0
            if self.logs[-1].stat().st_size == 0:
                return 0.0
            self.up_at = time.monotonic()
        return time.monotonic() - self.up_at

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> float:
        """kill -9; returns how long this life lasted."""
        assert self.process is not None
        kill_hard(self.process)
        return time.monotonic() - self.started_at

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def records(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for life, log in enumerate(self.logs, 1):
            if not log.exists():
                continue
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        record = json.loads(line)
                        record["life"] = life
                        out.append(record)
        return out


# ------------------------------------------------------------------------------- one seed


class ChaosRun:
    def __init__(self, args: argparse.Namespace, seed: int, clients: Clients, operator: Operator) -> None:
        self.args, self.seed, self.c, self.operator = args, seed, clients, operator
        self.rng = random.Random(f"chaos:{seed}")
        self.instances: dict[str, Tracked] = {}
        self.objects: dict[str, dict[str, Any]] = {}  # ns/name -> latest object seen by the watch
        self.by_uid: dict[str, Tracked] = {}
        self.violations: list[Violation] = []
        self._seen_violation_keys: set[Any] = set()
        self.faults_injected: Counter[str] = Counter()
        self.fault_requests: dict[str, tuple[str, int]] = {}  # fault id -> (kind, count asked)
        self.fault_log: list[dict[str, Any]] = []
        self.fault_fired: Counter[str] = Counter()
        self.kills: list[dict[str, Any]] = []
        self.actions: Counter[str] = Counter()
        self.phase = "setup"
        self.world: dict[str, Any] = {"machines": [], "volumes": [], "time": 0.0}
        self.samples = 0
        self.max_live = {"machines": 0, "volumes": 0}
        # Per instance UID: every volume one of its machines mounted (id -> first seen), the
        # volume its live machine mounts now.
        self.ever_mounted: dict[str, dict[str, float]] = defaultdict(dict)
        self.current_mount: dict[str, str] = {}
        self.capacity_restore: dict[str, dict[str, Any]] = {}
        self.restart_window_kills = 0
        self.destroy_window_kills = 0
        self.kill_lock = asyncio.Lock()
        self.next_index = 0
        self.durations: dict[str, float] = {}
        self.converge_times: list[float] = []
        self.restart_checks: list[dict[str, Any]] = []
        self.delete_started = 0.0
        self.unconverged: list[str] = []
        self.harness_errors: list[str] = []
        self.background: set[asyncio.Task[Any]] = set()
        # The raw material of the pictures (plots.draw_chaos), times in seconds since the creates.
        self.t0: float | None = None  # epoch of the first create
        self.phase_marks: list[tuple[str, float]] = []  # (phase, epoch it began)
        self.fly_stats_at: dict[str, Counter[str]] = {}  # phase -> Fly requests by endpoint so far
        self.moments: list[dict[str, Any]] = []  # one per --series-every: the fleet as the watch sees it
        self.last_moment = 0.0
        self.first_ready: dict[str, float] = {}  # instance key -> epoch its Ready was first True
        # Instance key -> epoch the watch first showed a status (any), and a status.phase.
        self.first_status: dict[str, float] = {}
        self.first_phase: dict[str, float] = {}
        self.process_samples: list[tuple[float, float, float, int]] = []  # (epoch, CPU s, RSS MiB, life)

    # -- bookkeeping ---------------------------------------------------------------------------

    async def enter(self, phase: str) -> None:
        """The run moves on to `phase`: noted, with Fly's request counts so far (per phase)."""
        self.phase = phase
        at = now_epoch()
        if phase == "chaos":
            self.t0 = at
        self.phase_marks.append((phase, at))
        try:
            self.fly_stats_at[phase] = fly_counts(await self.c.sim("GET", "/_sim/stats"))
        except aiohttp.ClientError as error:
            self.harness_errors.append(f"fly stats at {phase}: {error}")

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def violate(
        self, kind: str, instance: str, evidence: dict[str, Any], dedupe: Any = None, at: float | None = None
    ) -> None:
        key = (kind, instance, dedupe)
        if dedupe is not None and key in self._seen_violation_keys:
            return
        self._seen_violation_keys.add(key)
        at = at or now_epoch()
        evidence = {"phase": self.phase, **evidence}
        self.violations.append(Violation(kind, instance, at, evidence))
        print(f"  ! {kind} {instance}: {json.dumps(evidence, default=str)[:300]}", flush=True)

    def faults_near(
        self, epoch: float, before: float = 20.0, after: float = 5.0, about: str | None = None
    ) -> list[str]:
        """The faults injected around `epoch` (offsets in seconds), the 12 nearest to it; only
        those on paths containing `about` (e.g. "volumes") when given."""
        near = [
            entry
            for entry in self.fault_log
            if epoch - before <= entry["at"] <= epoch + after and (about is None or about in entry["path"])
        ]
        nearest = sorted(sorted(near, key=lambda e: abs(e["at"] - epoch))[:12], key=lambda e: e["at"])
        return [
            f"{e['at'] - epoch:+.1f}s {e['kind']} {e['method']} {e['path']}"
            + (f" x{e['count']}" if e["count"] else "")
            for e in nearest
        ]

    # -- kube ----------------------------------------------------------------------------------

    async def watch(self) -> None:
        path = f"{API}/{PLURAL}"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            try:
                status, listing = await self.c.kube("GET", path)
                if status != 200:
                    raise RuntimeError(f"list: {status}")
                seen = {}
                for obj in listing["items"]:
                    meta = obj["metadata"]
                    seen[f"{meta['namespace']}/{meta['name']}"] = obj
                self.objects = seen
                rv = listing["metadata"]["resourceVersion"]
                async with self.c.session.get(
                    self.c.kube_url + path,
                    headers=self.c.kube_headers,
                    params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "3600"},
                    timeout=timeout,
                ) as response:
                    async for line in response.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        meta = obj.get("metadata") or {}
                        key = f"{meta.get('namespace')}/{meta.get('name')}"
                        if event["type"] == "DELETED":
                            self.objects.pop(key, None)
                        elif event["type"] in ("ADDED", "MODIFIED"):
                            self.objects[key] = obj
                            if key not in self.first_ready and _ready_true(obj):
                                self.first_ready[key] = now_epoch()
                            status = obj.get("status") or {}
                            if status and key not in self.first_status:
                                self.first_status[key] = now_epoch()
                            if status.get("phase") and key not in self.first_phase:
                                self.first_phase[key] = now_epoch()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the watch comes back; the sampler keeps going meanwhile
                print(f"  (watch: {type(error).__name__}: {error}; again)", flush=True)
                await asyncio.sleep(0.5)

    def manifest(self, inst: Tracked) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClawInstance",
            "metadata": {"name": inst.name, "namespace": inst.namespace},
            "spec": {
                "app": inst.app,
                "region": inst.region,
                "image": inst.image,
                "guest": {"cpuKind": "shared", "cpus": 1, "memoryMB": 256},
                "volume": {"sizeGB": inst.size_gb},
                "env": {"CHAOS_SEED": str(self.seed)},
            },
        }

    async def create(self) -> Tracked:
        index = self.next_index
        self.next_index += 1
        namespace = f"chaos-{index % self.args.namespaces}"
        inst = Tracked(
            key=f"{namespace}/claw-{index:04d}",
            namespace=namespace,
            name=f"claw-{index:04d}",
            app=f"chaos-s{self.seed}-{index % self.args.apps}",
            region=REGIONS[index % len(REGIONS)],
            image=f"{IMAGE}:v0",
            size_gb=1,
        )
        status, answer = await self.c.kube(
            "POST", f"{API}/namespaces/{namespace}/{PLURAL}", self.manifest(inst)
        )
        if status != 201:
            raise RuntimeError(f"create {inst.key}: {status} {answer}")
        inst.uid = answer["metadata"]["uid"]
        inst.created_at = now_epoch()
        self.instances[inst.key] = inst
        self.by_uid[inst.uid] = inst
        return inst

    async def patch(self, inst: Tracked, body: dict[str, Any]) -> bool:
        status, answer = await self.c.kube(
            "PATCH",
            f"{API}/namespaces/{inst.namespace}/{PLURAL}/{inst.name}",
            body,
            content_type="application/merge-patch+json",
        )
        if status != 200:
            print(f"  (patch {inst.key} {body}: {status} {str(answer)[:200]})", flush=True)
        return status == 200

    async def delete(self, inst: Tracked) -> None:
        inst.doomed_at = now_epoch()
        await self.c.kube("DELETE", f"{API}/namespaces/{inst.namespace}/{PLURAL}/{inst.name}")

    # -- fly -----------------------------------------------------------------------------------

    async def add_fault(self, kind: str, method: str, path: str, mode: str, count: int, **extra: Any) -> None:
        spec = {"method": method, "path": path, "mode": mode, "count": count, **extra}
        fault = await self.c.sim("POST", "/_sim/faults", spec)
        self.faults_injected[kind] += 1
        self.fault_requests[fault["id"]] = (kind, count)
        self.fault_log.append(
            {"at": now_epoch(), "kind": kind, "mode": mode, "method": method, "path": path, "count": count}
        )

    async def inject(self, kind: str) -> None:
        rng = self.rng
        any_route = rng.choice(WRITE_ROUTES + READ_ROUTES)
        match kind:
            case "error_5xx":
                await self.add_fault(
                    kind, *any_route, "error", rng.randint(1, 3), status=rng.choice((500, 502, 503, 504))
                )
            case "error_429":
                await self.add_fault(
                    kind,
                    *any_route,
                    "error",
                    rng.randint(1, 2),
                    status=429,
                    retry_after=rng.choice((None, 1)),
                )
            case "hang":
                await self.add_fault(kind, *any_route, "hang", 1)
            case "reset":
                await self.add_fault(kind, *any_route, "reset", rng.randint(1, 2))
            case "silent_success":
                route = WRITE_ROUTES[self.faults_injected[kind] % len(WRITE_ROUTES)]
                await self.add_fault(
                    kind, *route, "silent_success", 1, status=rng.choice((408, 408, 502, 504))
                )
            case "not_found_flicker":
                await self.add_fault(kind, *rng.choice(FLICKER_ROUTES), "not_found_flicker", 1, window=1e9)
            case "stale_list":
                await self.add_fault(
                    kind,
                    *rng.choice(LIST_ROUTES),
                    "stale_list",
                    rng.randint(1, 4),
                    window=rng.choice((5, 10, 20)),
                )
            case "empty_list":
                await self.add_fault(kind, *rng.choice(LIST_ROUTES), "empty_list", rng.randint(1, 3))
            case "capacity":
                await self.squeeze_capacity(rng.choice(REGIONS), rng.uniform(5, 15))
            case "silent_create_then_stale_list":
                what = rng.choice(("volumes", "machines"))
                await self.add_fault(
                    "silent_success", "POST", f"/v1/apps/*/{what}", "silent_success", 1, status=408
                )
                await self.add_fault(
                    "stale_list", "GET", f"/v1/apps/*/{what}", "stale_list", rng.randint(3, 6), window=20
                )
                self.faults_injected[kind] += 1

    async def squeeze_capacity(self, region: str, seconds: float) -> None:
        """No room for a new or restarted machine in `region` for a while (412/409 capacity)."""
        if region in self.capacity_restore:
            return
        current = await self.c.sim("POST", "/_sim/capacity", {})  # no region: only reads
        hosts = current["regions"].get(region, {}).get("hosts") or []
        if not hosts:
            return
        self.capacity_restore[region] = {
            "region": region,
            "max_machines": None,
            "host_cpus": hosts[0]["cpus"],
            "host_memory_mb": hosts[0]["memory_mb"],
        }
        await self.c.sim("POST", "/_sim/capacity", {"region": region, "max_machines": 0, "host_cpus": 0})
        self.faults_injected["capacity"] += 1
        self.fault_log.append(
            {
                "at": now_epoch(),
                "kind": "capacity",
                "mode": "capacity",
                "method": "*",
                "path": region,
                "count": 0,
            }
        )

        async def restore() -> None:
            await asyncio.sleep(seconds)
            await self.restore_capacity(region)

        self.spawn(restore())

    async def restore_capacity(self, region: str) -> None:
        body = self.capacity_restore.pop(region, None)
        if body is not None:
            await self.c.sim("POST", "/_sim/capacity", body)

    async def lift_faults(self) -> None:
        remaining = {f["id"]: f for f in await self.c.sim("GET", "/_sim/faults")}
        for fault_id, (kind, asked) in self.fault_requests.items():
            left = remaining.get(fault_id)
            self.fault_fired[kind] += asked - (left["count"] if left else 0)
        await self.c.sim("DELETE", "/_sim/faults")
        for region in list(self.capacity_restore):
            await self.restore_capacity(region)
        self.fault_fired["capacity"] = self.faults_injected["capacity"]

    # -- kills ---------------------------------------------------------------------------------

    async def kill(
        self, why: str, instance: str | None = None, evidence: dict[str, Any] | None = None
    ) -> None:
        life = self.operator.lives  # the life that was judged worth killing
        async with self.kill_lock:
            if not self.operator.running or self.operator.lives != life:
                # Another kill got the lock first and started a new life: killing that one
                # before it even started would only keep the fleet without an operator.
                return
            lived = self.operator.kill()
            record = {
                "at": iso(now_epoch()),
                "phase": self.phase,
                "why": why,
                "operator_life": self.operator.lives,
                "lived_s": round(lived, 1),
                **({"instance": instance} if instance else {}),
                **({"evidence": evidence} if evidence else {}),
            }
            self.kills.append(record)
            print(
                f"  kill -9 operator ({why}{' ' + instance if instance else ''}) after {lived:.1f}s",
                flush=True,
            )
            await asyncio.sleep(self.rng.uniform(0.3, 2.5))
            self.operator.start()

    async def random_killer(self) -> None:
        while True:
            await asyncio.sleep(self.rng.expovariate(1.0 / self.args.kill_every))
            if self.operator.up_for() >= self.args.min_life:
                await self.kill("random")

    def targeted_kills(self) -> None:
        """Kill where a crash hurts most, seen in flysim's state: a restart stopped but not
        started again; a machine destroyed while its volume is still there."""
        if self.phase not in ("chaos", "delete") or not self.operator.running:
            return
        if self.operator.up_for() < self.args.min_life:
            return  # the window was opened by an earlier life: killing this one tests nothing new
        machines = self.machines_by_uid()
        volumes = self.volumes_by_name()
        if self.restart_window_kills < self.args.restart_window_kills:
            for inst in self.instances.values():
                request = inst.restart
                if request is None or request.killed_in_window or inst.uid is None or inst.doomed_at:
                    continue
                stopped = [
                    m
                    for m in machines.get(inst.uid, [])
                    if m["state"] in ("stopping", "stopped") and m["updated_at"] > request.at
                ]
                if stopped:
                    request.killed_in_window = True
                    self.restart_window_kills += 1
                    evidence = {
                        "machine": stopped[0]["id"],
                        "state": stopped[0]["state"],
                        "requested": request.value,
                    }
                    self.spawn(self.kill("between_restart_stop_and_start", inst.key, evidence))
                    return
        budget = self.args.destroy_window_kills + (1 if self.phase == "delete" else 0)
        if self.destroy_window_kills < budget:
            for inst in self.instances.values():
                if inst.doomed_at is None or inst.uid is None:
                    continue
                destroyed = [m for m in machines.get(inst.uid, []) if m["state"] in GONE_MACHINE_STATES]
                left = [v for v in volumes.get(volume_name(inst.uid), []) if v["state"] in LIVE_VOLUME_STATES]
                if destroyed and left and not any(k.get("instance") == inst.key for k in self.kills):
                    self.destroy_window_kills += 1
                    evidence = {
                        "machine": destroyed[0]["id"],
                        "machine_state": destroyed[0]["state"],
                        "volume": left[0]["id"],
                        "volume_state": left[0]["state"],
                    }
                    self.spawn(self.kill("between_machine_destroy_and_volume_delete", inst.key, evidence))
                    return

    # -- the sampler: invariants at every moment -----------------------------------------------

    def machines_by_uid(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for machine in self.world["machines"]:
            uid = machine["metadata"].get(METADATA_UID_KEY)
            if uid:
                out[uid].append(machine)
        return out

    def volumes_by_name(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for volume in self.world["volumes"]:
            out[volume["name"]].append(volume)
        return out

    async def sampler(self) -> None:
        while True:
            try:
                self.world = await self.c.sim("GET", "/_sim/world")
            except aiohttp.ClientError as error:
                print(f"  (world: {error})", flush=True)
                await asyncio.sleep(self.args.sample_every)
                continue
            self.samples += 1
            try:
                self.check_moment()
                self.targeted_kills()
                self.record_moment()
            except Exception as error:  # a harness bug must be loud, never silence the checks
                print(f"  (sampler: {type(error).__name__}: {error})", flush=True)
                self.harness_errors.append(f"sampler: {type(error).__name__}: {error}")
            await asyncio.sleep(self.args.sample_every)

    def record_moment(self) -> None:
        """Every --series-every seconds: the fleet by phase and Ready (from the harness's watch),
        Fly's live machines and volumes (flysim's world), the operator's CPU seconds and RSS."""
        now = now_epoch()
        if self.t0 is None or now - self.last_moment < self.args.series_every:
            return
        self.last_moment = now
        by_phase: Counter[str] = Counter()
        ready = 0
        for obj in self.objects.values():
            by_phase[_fleet_key(obj)] += 1
            ready += _ready_true(obj)
        self.moments.append(
            {
                "at": now,
                "by_phase": by_phase,
                "ready": ready,
                "machines": sum(1 for m in self.world["machines"] if m["state"] not in GONE_MACHINE_STATES),
                "volumes": sum(1 for v in self.world["volumes"] if v["state"] in LIVE_VOLUME_STATES),
            }
        )
        process = self.operator.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError, ValueError, IndexError, KeyError):
                now_sample = sample(process.pid)
                self.process_samples.append(
                    (now, now_sample.cpu_seconds, now_sample.rss_mib, self.operator.lives)
                )

    def series(self) -> dict[str, Any]:
        """What the pictures need, times in seconds since the first create."""
        t0 = self.t0 or now_epoch()

        def since(epoch: float) -> float:
            return round(epoch - t0, 2)

        marks = [(name, at) for name, at in self.phase_marks if name != "done"]
        ends = [at for _, at in self.phase_marks[1:]] + [now_epoch()]
        phases = [[name, since(at), since(end)] for (name, at), end in zip(marks, ends, strict=False)]
        calls: dict[str, dict[str, float]] = {}
        stats = list(self.fly_stats_at.items())
        n = max(1, len(self.instances))
        for (phase, before), (_, after) in itertools.pairwise(stats):
            delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
            calls[phase] = {k: round(v / n, 3) for k, v in sorted(delta.items())}
        phase_names = sorted({p for m in self.moments for p in m["by_phase"]})
        process: list[list[float]] = []
        for life in sorted({s[3] for s in self.process_samples}):
            samples = [(at, cpu, rss) for at, cpu, rss, lived in self.process_samples if lived == life]
            process.extend(
                [since(t), round(c, 1), round(r, 1), life] for t, c, r in plots.cpu_percent(samples)
            )
        return {
            "n": len(self.instances),
            "phases": phases,
            "fleet": {
                "t": [since(m["at"]) for m in self.moments],
                "by_phase": {p: [m["by_phase"].get(p, 0) for m in self.moments] for p in phase_names},
                "ready": [m["ready"] for m in self.moments],
                "live_machines": [m["machines"] for m in self.moments],
                "live_volumes": [m["volumes"] for m in self.moments],
            },
            "faults": [[since(e["at"]), e["kind"]] for e in self.fault_log],
            "kills": [[since(_epoch(k["at"])), k["why"]] for k in self.kills],
            "violations": [[since(v.at), v.kind] for v in self.violations],
            "time_to_first_ready_s": sorted(
                round(self.first_ready[key] - inst.created_at, 2)
                for key, inst in self.instances.items()
                if key in self.first_ready and inst.created_at
            ),
            "time_to_first_status_s": self._latency(self.first_status),
            "time_to_first_phase_s": self._latency(self.first_phase),
            "fly_calls_by_phase": calls,
            "process": process,
        }

    def _latency(self, firsts: dict[str, float]) -> dict[str, float | None]:
        """Per instance: seconds from its create to the first watch event showing `firsts`'s
        thing (None: never, while it lived)."""
        return {
            key: (round(firsts[key] - inst.created_at, 2) if key in firsts else None)
            for key, inst in sorted(self.instances.items())
            if inst.created_at
        }

    def check_moment(self) -> None:
        machines = self.machines_by_uid()
        volumes = self.volumes_by_name()
        volumes_by_id = {v["id"]: v for v in self.world["volumes"]}
        live_machines = sum(1 for m in self.world["machines"] if m["state"] not in GONE_MACHINE_STATES)
        live_volumes = sum(1 for v in self.world["volumes"] if v["state"] in LIVE_VOLUME_STATES)
        self.max_live["machines"] = max(self.max_live["machines"], live_machines)
        self.max_live["volumes"] = max(self.max_live["volumes"], live_volumes)
        for uid, inst in self.by_uid.items():
            mine = machines.get(uid, [])
            live = [m for m in mine if m["state"] not in GONE_MACHINE_STATES]
            if len(live) > 1:
                ids = sorted(m["id"] for m in live)
                self.violate(
                    "duplicate_machine",
                    inst.key,
                    {
                        "machines": [
                            {"id": m["id"], "state": m["state"], "created_at": iso(m["created_at"])}
                            for m in live
                        ],
                        "faults_before": self.faults_near(
                            max(m["created_at"] for m in live), about="machines"
                        ),
                    },
                    dedupe=tuple(ids),
                )
            named = [v for v in volumes.get(volume_name(uid), []) if v["state"] in LIVE_VOLUME_STATES]
            if len(named) > 1:
                ids = sorted(v["id"] for v in named)
                self.violate(
                    "duplicate_volume",
                    inst.key,
                    {
                        "volumes": [
                            {
                                "id": v["id"],
                                "state": v["state"],
                                "created_at": iso(v["created_at"]),
                                "attached_machine_id": v["attached_machine_id"],
                            }
                            for v in named
                        ],
                        "faults_around_second_create": self.faults_near(
                            sorted(v["created_at"] for v in named)[1], about="volumes"
                        ),
                    },
                    dedupe=tuple(ids),
                )
            for machine in mine:
                volume_id = machine.get("volume_id")
                if volume_id and volume_id not in self.ever_mounted[uid]:
                    self.ever_mounted[uid][volume_id] = self.world["time"]
            mounted = {m["volume_id"] for m in live if m.get("volume_id")}
            if len(mounted) == 1:
                [now_mounted] = mounted
                before = self.current_mount.get(uid)
                if before is not None and before != now_mounted:
                    old = volumes_by_id.get(before)
                    self.violate(
                        "volume_replaced",
                        inst.key,
                        {
                            "from_volume": before,
                            "from_volume_state": old["state"] if old else "gone",
                            "to_volume": now_mounted,
                            "machines": [{"id": m["id"], "state": m["state"]} for m in live],
                            "faults_before": self.faults_near(self.world["time"], before=30),
                        },
                        dedupe=(before, now_mounted),
                    )
                self.current_mount[uid] = now_mounted
            if inst.doomed_at is None:
                for volume_id, first_seen in self.ever_mounted[uid].items():
                    volume = volumes_by_id.get(volume_id)
                    if volume is None or volume["state"] not in LIVE_VOLUME_STATES:
                        self.violate(
                            "mounted_volume_destroyed",
                            inst.key,
                            {
                                "volume": volume_id,
                                "state": volume["state"] if volume else "gone",
                                "mounted_since": iso(first_seen),
                                "deleted_at": iso(volume["deleted_at"])
                                if volume and volume["deleted_at"]
                                else None,
                                "faults_before": self.faults_near(
                                    volume["deleted_at"]
                                    if volume and volume["deleted_at"]
                                    else self.world["time"],
                                    before=30,
                                ),
                            },
                            dedupe=volume_id,
                        )

    # -- user actions --------------------------------------------------------------------------

    def ready(self, inst: Tracked) -> bool:
        obj = self.objects.get(inst.key)
        if obj is None:
            return False
        status = obj.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        return (conditions.get("Ready") or {}).get("status") == "True" and status.get(
            "observedGeneration"
        ) == obj["metadata"].get("generation")

    async def act(self) -> None:
        rng = self.rng
        kinds, weights = zip(*ACTION_WEIGHTS.items(), strict=True)
        while True:
            await asyncio.sleep(rng.expovariate(1.0 / self.args.action_every))
            kind = rng.choices(kinds, weights)[0]
            candidates = [i for i in self.instances.values() if not i.reserved and i.key in self.objects]
            if not candidates:
                continue
            inst = rng.choice(candidates)
            try:
                done = await self.do(kind, inst)
            except aiohttp.ClientError as error:
                print(f"  ({kind} {inst.key}: {error})", flush=True)
                continue
            if done:
                self.record(inst, kind)

    def record(self, inst: Tracked, kind: str) -> None:
        self.actions[kind] += 1
        inst.actions.append(f"{iso(now_epoch())} {kind}")
        if inst.paused and kind not in ("pause", "unpause"):
            inst.edits_while_paused.append(kind)

    async def do(self, kind: str, inst: Tracked) -> bool:
        match kind:
            case "image":
                image = f"{IMAGE}:v{len(inst.actions) + 1}"
                if not await self.patch(inst, {"spec": {"image": image}}):
                    return False
                inst.image = image
                return True
            case "volume_grow":
                if not await self.patch(inst, {"spec": {"volume": {"sizeGB": inst.size_gb + 1}}}):
                    return False
                inst.size_gb += 1
                return True
            case "restart":
                # Only a settled, running instance: the restart is then the one thing to happen.
                if inst.desired != "Running" or inst.paused or not self.ready(inst) or inst.uid is None:
                    return False
                live = [
                    m
                    for m in self.machines_by_uid().get(inst.uid, [])
                    if m["state"] not in GONE_MACHINE_STATES
                ]
                if len(live) != 1 or live[0]["state"] != "started":
                    return False
                value = iso(now_epoch())
                inst.restart = RestartRequest(
                    value=value, at=now_epoch(), machine_id=live[0]["id"], version=live[0]["instance_id"]
                )
                return await self.patch(inst, {"spec": {"restartedAt": value}})
            case "stop" | "start":
                wanted = "Stopped" if kind == "stop" else "Running"
                if inst.desired == wanted:
                    return False
                if not await self.patch(inst, {"spec": {"state": wanted}}):
                    return False
                inst.desired = wanted
                return True
            case "pause":
                inst.paused = True
                ok = await self.patch(inst, {"metadata": {"annotations": {PAUSED_ANNOTATION: "true"}}})
                self.spawn(self.unpause_later(inst, self.rng.uniform(4, 15)))
                if ok and self.rng.random() < 0.6:
                    # An edit while paused: nothing may be applied, so the status may not claim
                    # that generation either (issue 11, 5).
                    self.spawn(self.edit_later(inst, self.rng.choice(("image", "volume_grow")), 1.0))
                return ok
            case "delete_and_replace":
                await self.delete(inst)
                await self.create()
                return True
        return False

    async def edit_later(self, inst: Tracked, kind: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if inst.paused and not inst.reserved and await self.do(kind, inst):
            self.record(inst, kind)

    async def unpause_later(self, inst: Tracked, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.unpause(inst)

    async def unpause(self, inst: Tracked) -> None:
        # A deleted instance is unpaused too: a paused deletion waits, as the user meant it to.
        if not inst.paused or (inst.doomed_at is not None and inst.key not in self.objects):
            return
        code, obj = await self.c.kube("GET", f"{API}/namespaces/{inst.namespace}/{PLURAL}/{inst.name}")
        obj = obj if code == 200 and isinstance(obj, dict) else {}
        status = obj.get("status") or {}
        generation = (obj.get("metadata") or {}).get("generation")
        if (
            inst.edits_while_paused
            and inst.doomed_at is None
            and generation
            and status.get("observedGeneration") == generation
        ):
            self.violate(
                "paused_claims_current",
                inst.key,
                {
                    "edits_while_paused": inst.edits_while_paused,
                    "generation": generation,
                    "observedGeneration": status.get("observedGeneration"),
                    "ready": next(
                        (
                            f"{c.get('status')}/{c.get('reason')}"
                            for c in status.get("conditions") or []
                            if c.get("type") == "Ready"
                        ),
                        None,
                    ),
                },
                dedupe=generation,
            )
        inst.paused = False
        inst.edits_while_paused = []
        await self.patch(inst, {"metadata": {"annotations": {PAUSED_ANNOTATION: None}}})
        self.actions["unpause"] += 1

    # -- convergence ---------------------------------------------------------------------------

    def problems(self, inst: Tracked) -> list[str]:
        """What keeps this instance from having converged (empty: converged)."""
        assert inst.uid is not None
        obj = self.objects.get(inst.key)
        if obj is None:
            return ["object_missing"]
        status = obj.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        out: list[str] = []
        stalled = conditions.get("Stalled") or {}
        if stalled.get("status") == "True":
            out.append(f"stalled:{stalled.get('reason')}")
        ready = conditions.get("Ready") or {}
        if ready.get("status") != "True":
            out.append(f"not_ready:{ready.get('reason')}")
        if status.get("observedGeneration") != obj["metadata"].get("generation"):
            out.append("generation_not_observed")
        live = [m for m in self.machines_by_uid().get(inst.uid, []) if m["state"] not in GONE_MACHINE_STATES]
        named = [
            v
            for v in self.volumes_by_name().get(volume_name(inst.uid), [])
            if v["state"] in LIVE_VOLUME_STATES
        ]
        if not live and inst.desired == "Stopped" and not self.machines_by_uid().get(inst.uid):
            # Stopped before its first machine was made: the volume alone is the whole instance.
            if [v["id"] for v in named] != [status.get("volumeId")]:
                out.append("status_volume_mismatch")
            elif named[0]["size_gb"] < inst.size_gb:
                out.append(f"volume_not_grown:{named[0]['size_gb']}<{inst.size_gb}")
            return out
        if len(live) != 1:
            out.append(f"machines:{len(live)}")
            return out
        [machine] = live
        want = "started" if inst.desired == "Running" else "stopped"
        if machine["state"] != want:
            out.append(f"machine_state:{machine['state']}")
        if status.get("machineId") != machine["id"]:
            out.append("status_machine_mismatch")
        if status.get("volumeId") != machine.get("volume_id"):
            out.append("status_volume_mismatch")
        # A stopped machine takes a new image at its next start; a running one must run it.
        if inst.desired == "Running" and machine.get("image") != inst.image:
            out.append("image_not_applied")
        mounted = next((v for v in named if v["id"] == machine.get("volume_id")), None)
        if mounted is None:
            out.append("mounted_volume_not_ours")
        elif mounted["size_gb"] < inst.size_gb and not (
            # Issue 18: a grow while Stopped is applied, or reported; never a silent Ready=True.
            inst.desired == "Stopped" and ready.get("reason") == "Resizing"
        ):
            out.append(f"volume_not_grown:{mounted['size_gb']}<{inst.size_gb}")
        return out

    def status_brief(self, inst: Tracked) -> dict[str, Any]:
        obj = self.objects.get(inst.key) or {}
        status = obj.get("status") or {}
        return {
            "phase": status.get("phase"),
            "machineId": status.get("machineId"),
            "volumeId": status.get("volumeId"),
            "generation": (obj.get("metadata") or {}).get("generation"),
            "observedGeneration": status.get("observedGeneration"),
            "conditions": {
                c.get("type"): f"{c.get('status')}/{c.get('reason')}: {str(c.get('message'))[:120]}"
                for c in status.get("conditions") or []
                if c.get("type") in ("Ready", "Stalled", "StartFailed", "Restarting", "MountRepaired")
            },
            "fly_machines": [
                {k: m.get(k) for k in ("id", "state", "volume_id", "image")}
                for m in self.machines_by_uid().get(inst.uid or "", [])
                if m["state"] != "destroyed"
            ],
            "fly_volumes": [
                {k: v.get(k) for k in ("id", "state", "size_gb", "attached_machine_id")}
                for v in self.volumes_by_name().get(volume_name(inst.uid or ""), [])
            ],
            "harness_actions": inst.actions[-6:],
        }

    def fingerprint(self, keys: set[str]) -> Any:
        machines = self.machines_by_uid()
        return sorted(
            (
                key,
                (self.objects.get(key) or {}).get("metadata", {}).get("resourceVersion"),
                tuple(
                    sorted(
                        (m["id"], m["state"], m["instance_id"])
                        for m in machines.get(self.instances[key].uid or "", [])
                    )
                ),
            )
            for key in keys
        )

    async def converge(self) -> None:
        """Wait until every live instance converged, for `--converge-timeout` at most; stop
        earlier when nothing about the unconverged ones (object, machines) moved for `--quiet`
        seconds, or when they are all Stalled (which never lifts by itself)."""
        lifted = time.monotonic()
        pending = {i.key for i in self.instances.values() if i.doomed_at is None}
        last: dict[str, list[str]] = {}
        last_report = lifted
        print_state: Any = None
        quiet_since = lifted
        while pending and time.monotonic() - lifted < self.args.converge_timeout:
            await asyncio.sleep(1.0)
            for key in sorted(pending):
                problems = self.problems(self.instances[key])
                if problems:
                    last[key] = problems
                else:
                    pending.discard(key)
                    last.pop(key, None)
                    self.converge_times.append(time.monotonic() - lifted)
            state = self.fingerprint(pending)
            if state != print_state:
                print_state, quiet_since = state, time.monotonic()
            elif pending and time.monotonic() - quiet_since > self.args.quiet:
                print(f"  {len(pending)} unconverged, nothing moved for {self.args.quiet:.0f}s", flush=True)
                break
            if (
                pending
                and all(any(p.startswith("stalled:") for p in last.get(k, [])) for k in pending)
                and time.monotonic() - lifted > 20
            ):
                break
            if pending and time.monotonic() - last_report > 20:
                last_report = time.monotonic()
                print(f"  … {len(pending)} not converged after {time.monotonic() - lifted:.0f}s", flush=True)
        self.durations["converge_s"] = round(time.monotonic() - lifted, 1)
        self.unconverged = sorted(pending)
        for key in sorted(pending):
            inst = self.instances[key]
            problems = last.get(key) or self.problems(inst)
            evidence = {"problems": problems, "status": self.status_brief(inst)}
            stalled = any(p.startswith("stalled:") for p in problems)
            rest = sorted(
                (
                    p
                    for p in problems
                    if not p.startswith(("stalled:", "status_volume_mismatch"))
                    and not (stalled and p.startswith("not_ready:"))  # what the stall says
                ),
                key=lambda p: (
                    PROBLEM_ORDER.index(p.split(":")[0]) if p.split(":")[0] in PROBLEM_ORDER else 99
                ),
            )
            if stalled:
                self.violate("stalled_without_cause", key, evidence, dedupe="stalled")
            if "status_volume_mismatch" in problems:
                self.violate("status_volume_mismatch", key, evidence, dedupe="volume")
            if rest:
                self.violate("not_converged:" + rest[0].split(":")[0], key, evidence, dedupe="converge")

    async def check_restarts(self) -> None:
        """Each `restartedAt` ran exactly once, on flysim's timeline of the instance's machines:
        the running machine interrupted once (started -> stopping/replacing/...) and booted to
        `started` once. More new versions than one with a single restart is a repeated update
        (a Fly mutation done again after it succeeded), reported apart."""
        machines = self.machines_by_uid()
        for inst in self.instances.values():
            request = inst.restart
            if request is None or inst.uid is None or inst.doomed_at is not None:
                continue
            interruptions: list[str] = []
            boots: list[str] = []
            stops: list[str] = []
            versions: list[str] = []
            for machine in machines.get(inst.uid, []):
                timeline = await self.c.sim("GET", "/_sim/timeline", machine=machine["id"])
                seen = {request.version}
                previous = None
                for step in timeline:
                    state = step["state"]
                    if step["time"] > request.at:
                        moment = f"{machine['id']} {previous}->{state} at {step['at']}"
                        if previous == "started" and state != "started":
                            interruptions.append(moment)
                        if state == "started" and previous != "started":
                            boots.append(moment)
                        if state == "stopping":
                            stops.append(moment)
                        if step.get("instance_id") and step["instance_id"] not in seen:
                            seen.add(step["instance_id"])
                            versions.append(f"{machine['id']} version {step['instance_id']} at {step['at']}")
                    previous = state
            check = {
                "instance": inst.key,
                "requested": request.value,
                "interruptions": len(interruptions),
                "boots": len(boots),
                "stops": len(stops),
                "new_versions": len(versions),
                "killed_in_window": request.killed_in_window,
            }
            self.restart_checks.append(check)
            evidence = {
                **check,
                "interruption_steps": interruptions,
                "boot_steps": boots,
                "version_steps": versions,
                "faults_after_request": self.faults_near(request.at, before=0, after=40, about="machines"),
            }
            if len(interruptions) > 1 or len(boots) > 1:
                events = await self.events_of(inst)
                self.violate(
                    "restart_repeated", inst.key, {**evidence, "events": events}, dedupe=request.value
                )
            elif not interruptions:
                self.violate(
                    "restart_missing",
                    inst.key,
                    {**evidence, "status": self.status_brief(inst)},
                    dedupe=request.value,
                )
            elif len(versions) > 1:
                self.violate("restart_repeated_update", inst.key, evidence, dedupe=request.value)

    async def events_of(self, inst: Tracked) -> list[str]:
        status, body = await self.c.kube(
            "GET",
            f"/api/v1/namespaces/{inst.namespace}/events",
        )
        if status != 200:
            return []
        out = []
        for event in body.get("items", []):
            involved = event.get("involvedObject") or {}
            if involved.get("name") == inst.name:
                out.append(
                    f"{event.get('reason')} x{event.get('count', 1)}: {str(event.get('message'))[:100]}"
                )
        return out[-12:]

    async def all_events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for index in range(self.args.namespaces):
            status, body = await self.c.kube("GET", f"/api/v1/namespaces/chaos-{index}/events")
            if status == 200:
                out.extend(body.get("items", []))
        return out

    async def check_loss_warnings(self) -> None:
        """A `VolumeLost`/`MachineLost` Warning is false when what it calls lost is still on Fly
        (nothing here destroys anything behind the operator's back)."""
        alive = {m["id"] for m in self.world["machines"] if m["state"] not in GONE_MACHINE_STATES}
        alive |= {v["id"] for v in self.world["volumes"] if v["state"] in LIVE_VOLUME_STATES}
        for event in await self.all_events():
            if event.get("reason") not in LOSS_REASONS:
                continue
            involved = event.get("involvedObject") or {}
            key = f"{involved.get('namespace')}/{involved.get('name')}"
            message = str(event.get("message"))
            # The first id is what the Event calls lost (MachineLost goes on to name the volume).
            still_there = [i for i in FLY_ID.findall(message)[:1] if i in alive]
            if still_there:
                self.violate(
                    "false_loss_warning",
                    key,
                    {
                        "reason": event.get("reason"),
                        "count": event.get("count", 1),
                        "message": message[:300],
                        "still_on_fly": still_there,
                    },
                    dedupe=(event.get("reason"), message[:80]),
                    at=event_time(event),
                )

    async def check_destroyed_events(self) -> None:
        """One `Destroyed` Event per deletion (issue 18, 5)."""
        per_uid: Counter[str] = Counter()
        for event in await self.all_events():
            if event.get("reason") == "Destroyed":
                per_uid[(event.get("involvedObject") or {}).get("uid", "")] += int(event.get("count") or 1)
        for uid, count in per_uid.items():
            if count > 1:
                inst = self.by_uid.get(uid)
                self.violate(
                    "duplicate_destroyed_event",
                    inst.key if inst else uid,
                    {"destroyed_events": count},
                    dedupe=uid,
                )

    async def event_reasons(self) -> dict[str, int]:
        reasons: Counter[str] = Counter()
        for index in range(self.args.namespaces):
            status, body = await self.c.kube("GET", f"/api/v1/namespaces/chaos-{index}/events")
            if status == 200:
                for event in body.get("items", []):
                    reasons[str(event.get("reason"))] += int(event.get("count") or 1)
        return dict(sorted(reasons.items()))

    # -- delete all ----------------------------------------------------------------------------

    async def delete_all(self) -> None:
        started = time.monotonic()
        gate = asyncio.Semaphore(32)

        async def one(inst: Tracked) -> None:
            async with gate:
                await self.delete(inst)

        await asyncio.gather(*(one(i) for i in self.instances.values() if i.doomed_at is None))
        while time.monotonic() - started < self.args.delete_timeout:
            await asyncio.sleep(1.0)
            machines, volumes = self.live_leftovers()
            if not self.objects and not machines and not volumes:
                break
        self.durations["delete_s"] = round(time.monotonic() - started, 1)
        machines, volumes = self.live_leftovers()
        for machine in machines:
            uid = machine["metadata"].get(METADATA_UID_KEY, "")
            owner = self.by_uid.get(uid)
            self.violate(
                "leaked_machine",
                owner.key if owner else f"uid {uid}",
                {k: machine.get(k) for k in ("id", "app", "state", "volume_id")}
                | {"created_at": iso(machine["created_at"])}
                | self.owner_fate(owner)
                | {"faults_around_create": self.faults_near(machine["created_at"], about="machines")},
                dedupe=machine["id"],
            )
        owners = {volume_name(uid): inst for uid, inst in self.by_uid.items()}
        for volume in volumes:
            owner = owners.get(volume["name"])
            self.violate(
                "leaked_volume",
                owner.key if owner else volume["name"],
                {k: volume.get(k) for k in ("id", "app", "name", "state", "attached_machine_id")}
                | {"created_at": iso(volume["created_at"])}
                | self.owner_fate(owner)
                | {"faults_around_create": self.faults_near(volume["created_at"], about="volumes")},
                dedupe=volume["id"],
            )
        for key, obj in sorted(self.objects.items()):
            self.violate(
                "leaked_clawinstance",
                key,
                {
                    "status": self.status_brief(self.instances[key])
                    if key in self.instances
                    else obj.get("status")
                },
                dedupe=key,
            )

    def owner_fate(self, owner: Tracked | None) -> dict[str, Any]:
        if owner is None:
            return {"owner": "unknown"}
        return {
            "owner_deleted_at": iso(owner.doomed_at) if owner.doomed_at else None,
            "deleted_during_chaos": owner.doomed_at is not None and owner.doomed_at < self.delete_started,
            "harness_actions": owner.actions[-6:],
        }

    def live_leftovers(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        machines = [m for m in self.world["machines"] if m["state"] not in GONE_MACHINE_STATES]
        volumes = [v for v in self.world["volumes"] if v["state"] in LIVE_VOLUME_STATES]
        return machines, volumes

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        for index in range(self.args.namespaces):
            await self.c.kube("POST", "/api/v1/namespaces", {"metadata": {"name": f"chaos-{index}"}})
        tasks = [asyncio.create_task(self.watch()), asyncio.create_task(self.sampler())]
        try:
            return await self._run(tasks)
        finally:
            # Pending unpauses, capacity restores and operator restarts die with the run.
            for task in [*tasks, *self.background]:
                task.cancel()
            await asyncio.gather(*tasks, *self.background, return_exceptions=True)

    async def _run(self, tasks: list[asyncio.Task[Any]]) -> dict[str, Any]:
        args = self.args
        await asyncio.sleep(args.warmup)
        # ---- chaos: the fleet is created into it
        await self.enter("chaos")
        started = time.monotonic()
        for _ in range(2):
            await self.inject("silent_create_then_stale_list")
        gate = asyncio.Semaphore(32)

        async def create_one() -> None:
            async with gate:
                await self.create()

        await asyncio.gather(*(create_one() for _ in range(args.n)))
        print(f"  {args.n} ClawInstances created; chaos for {args.chaos:.0f}s", flush=True)
        kinds, weights = zip(*FAULT_WEIGHTS.items(), strict=True)

        async def injector() -> None:
            while True:
                kind = self.rng.choices(kinds, weights)[0]
                try:
                    await self.inject(kind)
                except aiohttp.ClientError as error:
                    print(f"  (inject {kind}: {error})", flush=True)
                await asyncio.sleep(self.rng.expovariate(1.0 / args.fault_every))

        chaos = [
            asyncio.create_task(injector()),
            asyncio.create_task(self.act()),
            asyncio.create_task(self.random_killer()),
        ]
        await asyncio.sleep(args.chaos)
        for task in chaos:
            if task.done() and not task.cancelled() and task.exception() is not None:
                self.harness_errors.append(f"chaos task: {task.exception()!r}")
            task.cancel()
        await asyncio.gather(*chaos, return_exceptions=True)
        self.durations["chaos_s"] = round(time.monotonic() - started, 1)

        # ---- faults lift; everyone unpaused; convergence
        await self.enter("converge")
        async with self.kill_lock:
            if not self.operator.running:
                self.operator.start()
        await self.lift_faults()
        for inst in list(self.instances.values()):
            await self.unpause(inst)
        print(f"  faults lifted ({sum(self.faults_injected.values())} injected); converging …", flush=True)
        await self.converge()
        await self.check_restarts()
        await self.check_loss_warnings()
        print(
            f"  converged {len(self.converge_times)}/"
            f"{sum(1 for i in self.instances.values() if i.doomed_at is None)} in "
            f"{self.durations['converge_s']}s; deleting all …",
            flush=True,
        )

        # ---- delete everything (one more kill between a destroy and a volume delete)
        await self.enter("delete")
        self.delete_started = now_epoch()
        await self.delete_all()
        await self.check_destroyed_events()
        await self.enter("done")
        return await self.result()

    async def result(self) -> dict[str, Any]:
        kinds = Counter(v.kind for v in self.violations)
        records = self.operator.records()
        for violation in self.violations:
            since, until = iso(violation.at - 90), iso(violation.at + 2)
            mine = [
                r
                for r in records
                if r.get("instance") == violation.instance
                and (r.get("level") in ("warning", "error") or r.get("action"))
                and since <= _log_time(r) <= until
            ]
            violation.evidence["operator_log"] = [
                f"life {r['life']} {r.get('time')} {r.get('level')} {r.get('message')}"
                + (f" ({r.get('error')})" if r.get("error") else "")
                for r in mine[-10:]
            ]
        return {
            "seed": self.seed,
            "instances": len(self.instances),
            "instances_deleted_during_chaos": sum(
                1 for i in self.instances.values() if i.doomed_at and i.doomed_at < self.delete_started
            ),
            "faults_injected": dict(sorted(self.faults_injected.items())),
            "faults_fired": dict(sorted(self.fault_fired.items())),
            "user_actions": dict(sorted(self.actions.items())),
            "kills": len(self.kills),
            "kills_by_why": dict(Counter(k["why"] for k in self.kills)),
            "kill_log": self.kills,
            "restart_checks": self.restart_checks,
            "samples": self.samples,
            "max_live": self.max_live,
            "durations_s": self.durations,
            "converge_s": {
                "p50": round(sorted(self.converge_times)[len(self.converge_times) // 2], 1)
                if self.converge_times
                else None,
                "max": round(max(self.converge_times), 1) if self.converge_times else None,
            },
            "operator_lives": self.operator.lives,
            "operator_log_warnings": sum(1 for r in records if r.get("level") in ("warning", "error")),
            "events_by_reason": await self.event_reasons(),
            "harness_errors": self.harness_errors,
            "violations_by_kind": dict(sorted(kinds.items())),
            "violations": [v.to_json() for v in self.violations],
            "series": self.series(),
        }


def _fleet_key(obj: dict[str, Any]) -> str:
    """The fleet panel's bin: status.phase; "None" when the operator wrote no status at all;
    "NoPhase:<Reconciling reason>" when it wrote one without a phase (nothing provisioned yet:
    the contract's phases start at Provisioned, a volume created)."""
    status = obj.get("status") or {}
    if status.get("phase"):
        return str(status["phase"])
    if not status:
        return "None"
    conditions = status.get("conditions") or []
    reason = next((c.get("reason") for c in conditions if c.get("type") == "Reconciling"), None)
    return f"NoPhase:{reason}"


def _ready_true(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def fly_counts(stats: dict[str, Any]) -> Counter[str]:
    """flysim's requests per endpoint so far, whatever their status."""
    counts: Counter[str] = Counter()
    for row in stats["requests"]:
        if row["route"].startswith("/v1/"):
            counts[f"{row['method']} {row['route']}"] += row["count"]
    return counts


def event_time(event: dict[str, Any]) -> float | None:
    for stamp in (
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        if stamp:
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    return None


def _log_time(record: dict[str, Any]) -> str:
    """The operator's JSON time (`…+00:00`) in the harness's form (`…Z`), to compare as text."""
    return str(record.get("time", "")).replace("+00:00", "Z")


# ------------------------------------------------------------------------------- processes


async def run_seed(args: argparse.Namespace, seed: int, workdir: Path) -> dict[str, Any]:
    flysim_args = ["--profile", "realistic", "--seed", str(seed), "--token", FLY_TOKEN]
    operator: Operator | None = None
    started = time.monotonic()
    async with simulators(workdir, flysim_args) as sims:
        kubeconfig, kube_url, fly_url = sims.kubeconfig, sims.kube_url, sims.fly_url
        try:
            operator = Operator(
                [
                    "run",
                    "--kubeconfig",
                    str(kubeconfig),
                    "--fly-api-url",
                    fly_url,
                    "--default-app",
                    "chaos",
                    "--metrics-port",
                    str(free_port()),
                    "--log-format",
                    "json",
                    "--poll-starting",
                    "2",
                    "--poll-running",
                    str(args.poll),
                    "--poll-destroying",
                    "2",
                    "--poll-idle",
                    str(args.poll * 2),
                    "--poll-jitter",
                    "1",
                    "--fly-wait-timeout",
                    "15",
                    "--starting-timeout",
                    "300",
                    "--stopped-threshold",
                    "3",
                ],
                workdir,
            )
            operator.start()
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=60)
            ) as session:
                run = ChaosRun(args, seed, Clients(kube_url, fly_url, session), operator)
                result = await run.run()
            result["duration_s"] = round(time.monotonic() - started, 1)
            return result
        finally:
            if operator is not None:
                operator.stop()


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def summary(report: dict[str, Any]) -> None:
    seeds = report["seeds"]
    print()
    print(f"chaos run {report['date']} commit {report['commit'][:12]}: {len(seeds)} seed(s)")
    columns = ("seed", 5), ("inst", 5), ("faults", 7), ("fired", 6), ("kills", 6), ("viol", 5), ("conv s", 7)
    print(" ".join(f"{name:>{width}}" for name, width in columns) + f" {'total s':>8}")
    for seed in seeds:
        print(
            f"{seed['seed']:>5} {seed['instances']:>5} {sum(seed['faults_injected'].values()):>7} "
            f"{sum(seed['faults_fired'].values()):>6} {seed['kills']:>6} {len(seed['violations']):>5} "
            f"{seed['durations_s'].get('converge_s', 0):>7} {seed['duration_s']:>8}"
        )
    totals = report["totals"]
    print(f"faults by kind (injected): {json.dumps(totals['faults_injected'])}")
    print(f"kills by moment: {json.dumps(totals['kills_by_why'])}")
    print(f"user actions: {json.dumps(totals['user_actions'])}")
    for seed in seeds:
        series = seed["series"]
        for what in ("status", "phase"):
            latency = series.get(f"time_to_first_{what}_s") or {}
            seen = sorted(v for v in latency.values() if v is not None)
            never = sum(1 for v in latency.values() if v is None)
            if seen:
                print(
                    f"seed {seed['seed']}: create -> first {what}: p50 {seen[len(seen) // 2]}s, "
                    f"max {seen[-1]}s over {len(seen)} instance(s); never: {never}"
                )
    for seed in seeds:
        for error in seed["harness_errors"]:
            print(f"HARNESS ERROR (seed {seed['seed']}): {error}")
    if not totals["violations_by_kind"]:
        print("violations: none")
        return
    print("violations by kind:")
    for kind, count in totals["violations_by_kind"].items():
        print(f"  {kind:40s} {count}")
    shown: Counter[str] = Counter()
    print("samples of evidence:")
    for seed in seeds:
        for violation in seed["violations"]:
            if shown[violation["kind"]] >= 1:
                continue
            shown[violation["kind"]] += 1
            evidence = {k: v for k, v in violation["evidence"].items() if k != "operator_log"}
            print(f"  [{violation['kind']}] seed {seed['seed']} {violation['instance']}: ")
            print(f"      {json.dumps(evidence, default=str)[:700]}")
            for line in violation["evidence"].get("operator_log", [])[-3:]:
                print(f"      log: {line[:200]}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds (runs), from --first-seed on")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=100, help="ClawInstances per seed")
    parser.add_argument("--apps", type=int, default=10, help="Fly apps the instances are spread over")
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument("--chaos", type=float, default=60.0, help="seconds of faults, edits and kills")
    parser.add_argument("--fault-every", type=float, default=0.6, help="mean seconds between two faults")
    parser.add_argument("--action-every", type=float, default=0.6, help="mean seconds between two user edits")
    parser.add_argument("--kill-every", type=float, default=20.0, help="mean seconds between random kills")
    parser.add_argument("--restart-window-kills", type=int, default=2, help="per seed, at most")
    parser.add_argument("--destroy-window-kills", type=int, default=2, help="per seed during the chaos")
    parser.add_argument(
        "--min-life",
        type=float,
        default=3.0,
        help="seconds an operator lives (from its first log line) before it may be killed",
    )
    parser.add_argument("--poll", type=float, default=5.0, help="the operator's --poll-running")
    parser.add_argument("--sample-every", type=float, default=0.5, help="seconds between invariant checks")
    parser.add_argument(
        "--series-every", type=float, default=1.0, help="seconds between two points of the pictures' series"
    )
    parser.add_argument("--converge-timeout", type=float, default=150.0, help="the bound after faults lift")
    parser.add_argument(
        "--quiet",
        type=float,
        default=45.0,
        help="stop waiting when the unconverged did not move for this long",
    )
    parser.add_argument("--delete-timeout", type=float, default=150.0)
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds the operator runs before the fleet"
    )
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/chaos.json)")
    parser.add_argument("--keep-logs", type=Path, help="copy each seed's process logs into DIR/seed-N/")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "commit": git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seeds": [],
    }
    started = time.monotonic()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        print(f"== seed {seed}: {args.n} instances, {args.chaos:.0f}s of chaos", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"chaos-{seed}-") as tmp:
            workdir = Path(tmp)
            try:
                report["seeds"].append(asyncio.run(run_seed(args, seed, workdir)))
            finally:
                if args.keep_logs:
                    target = args.keep_logs / f"seed-{seed}"
                    target.mkdir(parents=True, exist_ok=True)
                    for log in workdir.glob("*.log"):
                        (target / log.name).write_bytes(log.read_bytes())
    seeds = report["seeds"]

    def total(key: str) -> dict[str, int]:
        counter: Counter[str] = Counter()
        for seed in seeds:
            counter.update(seed[key])
        return dict(sorted(counter.items()))

    report["totals"] = {
        "instances": sum(s["instances"] for s in seeds),
        "faults_injected": total("faults_injected"),
        "faults_fired": total("faults_fired"),
        "user_actions": total("user_actions"),
        "kills": sum(s["kills"] for s in seeds),
        "kills_by_why": total("kills_by_why"),
        "violations": sum(len(s["violations"]) for s in seeds),
        "violations_by_kind": total("violations_by_kind"),
    }
    report["duration_s"] = round(time.monotonic() - started, 1)
    output = args.output or RESULTS / "chaos.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    summary(report)
    shown = output.relative_to(REPO) if output.is_relative_to(REPO) else output
    print(f"total {report['duration_s']}s; wrote {shown}")
    for seed in seeds:
        picture = output.with_name(f"{output.stem}-seed{seed['seed']}.png")
        picture = plots.draw_chaos(plots.chaos_title(report, seed), seed["series"], picture)
        print(f"drew {picture.relative_to(REPO) if picture.is_relative_to(REPO) else picture}")
    if any(seed["harness_errors"] for seed in seeds):
        return 2  # the checks themselves broke: the figures cannot be trusted
    return 1 if report["totals"]["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
