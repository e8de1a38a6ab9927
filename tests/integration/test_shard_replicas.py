"""Three `claw-operator run --shards auto` processes share the instances (issue 14's acceptance,
scaled down): kubesim and flysim serve from threads of this process, the operators are real
processes with short lease timings (lease 3 s, renew deadline 2 s, retry 0.5 s).

Checked: every instance owned by exactly one replica; `kill -9` of one replica and the survivors
take its instances over (a restart requested during the outage is honoured, no duplicate
machine, no double restart); a replica partitioned from the apiserver stops mutating Fly before
its Lease expires and rejoins; deletions complete with three replicas holding the finalizer.
Durations are printed, never asserted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from claw_operator.api import GROUP, PLURAL, VERSION
from claw_operator.api.timefmt import parse_rfc3339
from claw_operator.lifecycle.shards import owner
from claw_operator.sim.flysim import FlySimThread
from claw_operator.sim.kubesim import KubeSimThread
from tests.fixtures.kubesim import crds_directory, fast_kubesim

N = 60
APPS = 12
REPLICAS = ("r0", "r1", "r2")
LEASE = 3.0
RETRY = 0.5
FLY_MUTATIONS = {
    "create_machine",
    "update_machine",
    "destroy_machine",
    "start_machine",
    "stop_machine",
    "create_volume",
    "delete_volume",
    "extend_volume",
}

pytestmark = pytest.mark.timeout(600)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], timeout: float = 120, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met in {timeout}s: {condition}")
        time.sleep(interval)


class Replica:
    def __init__(self, name: str, kubesim: KubeSimThread, fly_url: str, workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        kubeconfig = kubesim.write_kubeconfig(workdir / f"kubeconfig-{name}", token=name)
        self.log = (workdir / f"{name}.log").open("w")
        args = [
            sys.executable,
            "-c",
            "import sys; from claw_operator.cli import main; sys.exit(main())",
            "run",
            "--kubeconfig", str(kubeconfig),
            "--fly-api-url", fly_url,
            "--metrics-port", str(self.port),
            "--shards", "auto",
            "--shard-identity", name,
            "--shard-namespace", "default",
            "--shard-lease-duration", str(int(LEASE)),
            "--shard-renew-deadline", "2",
            "--shard-retry-period", str(RETRY),
            "--poll-starting", "0.5",
            "--poll-running", "2",
            "--poll-destroying", "0.5",
            "--poll-idle", "3",
            "--poll-jitter", "0.2",
            "--fly-wait-timeout", "2",
            "--starting-timeout", "60",
        ]  # fmt: skip
        env = {**os.environ, "FLY_API_TOKEN": "fo1_shards-test-token"}
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def metrics(self) -> dict[str, float]:
        """Samples by `name{label=value,...}` (labels sorted); {} when it does not answer."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def value(self, key: str) -> float | None:
        return self.metrics().get(key)

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def fly_mutations(self) -> float:
        return sum(
            value
            for key, value in self.metrics().items()
            if key.startswith("claw_fly_requests_total{")
            and any(f"operation={op}," in key or f"operation={op}}}" in key for op in FLY_MUTATIONS)
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[KubeSimThread, FlySimThread]]:
    kubesim = KubeSimThread(fast_kubesim(), crds=crds_directory(), kubeconfig=tmp_path / "kubeconfig")
    flysim = FlySimThread(profile="fast")
    kubesim.start()
    flysim.start()
    try:
        yield kubesim, flysim
    finally:
        kubesim.sim.api.partitions.remove()
        flysim.stop()
        kubesim.stop()


@pytest.fixture
def replicas(world: tuple[KubeSimThread, FlySimThread], tmp_path: Path) -> Iterator[dict[str, Replica]]:
    kubesim, flysim = world
    started = {name: Replica(name, kubesim, flysim.base_url, tmp_path) for name in REPLICAS}
    try:
        yield started
    finally:
        for replica in started.values():
            replica.stop()
        for name in REPLICAS:
            print(f"--- {name} log (tail)")
            print("".join((tmp_path / f"{name}.log").read_text().splitlines(True)[-15:]))


def owned(replicas: dict[str, Replica]) -> dict[str, float | None]:
    return {name: r.value("claw_shard_instances_owned{}") for name, r in replicas.items()}


def full_shares(replicas: dict[str, Replica]) -> dict[str, float | None] | None:
    """The replicas' shares once they add up to every instance (each owned exactly once)."""
    shares = owned(replicas)
    return shares if sum(v or 0 for v in shares.values()) == N else None


@pytest.mark.slow(127)
def test_three_replicas_share_take_over_and_fence(
    world: tuple[KubeSimThread, FlySimThread], replicas: dict[str, Replica], tmp_path: Path
) -> None:
    kubesim, flysim = world
    assert kubesim.kubeconfig is not None
    api = client.ApiClient(config.new_client_from_config(str(kubesim.kubeconfig)).configuration)
    custom = client.CustomObjectsApi(api)

    # The ring forms: every replica ready, each sees the three.
    wait_for(lambda: all(r.ready() for r in replicas.values()), timeout=90)
    wait_for(lambda: all(r.value("claw_shard_members{}") == 3 for r in replicas.values()))
    # Past the newcomers' fence and the born-under-watch margin: new instances need no listing.
    time.sleep(max(LEASE, 10.5))

    names = [f"claw-{i:03d}" for i in range(N)]
    for i, name in enumerate(names):
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ClawInstance",
                "metadata": {"name": name},
                "spec": {"region": "iad", "image": "registry.fly.io/claw:1", "app": f"shard-app-{i % APPS}"},
            },
        )

    def phases() -> dict[str, str | None]:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"]
        return {i["metadata"]["name"]: (i.get("status") or {}).get("phase") for i in items}

    started = time.monotonic()
    wait_for(lambda: set(phases().values()) == {"Running"}, timeout=240, interval=0.5)
    print(f"{N} instances Running in {time.monotonic() - started:.1f}s")

    # Each instance is owned by exactly one replica, and every replica has a share.
    shares = wait_for(lambda: full_shares(replicas))
    print(f"shares: {shares}")
    assert all((share or 0) > 0 for share in shares.values())

    def live_machines() -> int:
        stats = httpx.get(f"{flysim.base_url}/_sim/stats", timeout=5).json()
        return sum(n for state, n in stats["machines"].items() if state != "destroyed")

    assert live_machines() == N

    # Steady state: each instance is polled by its owner only (no double polling).
    def fly_reads() -> float:
        return sum(
            value
            for r in replicas.values()
            for key, value in r.metrics().items()
            if key.startswith("claw_fly_requests_total{") and "operation=get_machine" in key
        )

    time.sleep(3)
    before, window_start = fly_reads(), time.monotonic()
    time.sleep(10)
    reads, window = fly_reads() - before, time.monotonic() - window_start
    per_interval = reads / (N * window / 2.1)  # --poll-running 2 plus half the 0.2 s jitter
    print(
        f"steady state: {reads:.0f} machine GETs in {window:.1f}s = "
        f"{per_interval:.2f} per instance per interval"
    )
    assert per_interval < 1.5  # two replicas polling one instance would make it about 2

    # kill -9 of r2; a restart requested on one of its instances during the outage.
    victim = replicas["r2"]
    victim_owned = victim.value("claw_shard_instances_owned{}")
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(10)
    killed_at = time.monotonic()
    lease = kubesim.get("coordination.k8s.io/v1", "Lease", "claw-operator-r2", "default")
    assert lease is not None
    items = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"]
    survivors = {k: v for k, v in replicas.items() if k != "r2"}
    requested = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # An instance of r2's (the ring's assignment, as every replica computes it).
    target = next(i["metadata"]["name"] for i in items if owner(i["metadata"]["uid"], REPLICAS) == "r2")
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, target, {"spec": {"restartedAt": requested}}
    )
    wait_for(lambda: all(r.value("claw_shard_members{}") == 2 for r in survivors.values()), timeout=60)
    wait_for(lambda: sum(v or 0 for v in owned(survivors).values()) == N, timeout=30)
    wait_for(
        lambda: sum(r.value("claw_shard_instances_acting{}") or 0 for r in survivors.values()) == N,
        timeout=30,
        interval=0.05,
    )
    taken_over = time.monotonic() - killed_at
    print(
        f"r2 owned {victim_owned}; survivors act on all {N} {taken_over:.1f}s after kill -9 (lease {LEASE}s)"
    )
    handled = wait_for(
        lambda: (
            custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, target)
            .get("status", {})
            .get("handledRestartedAt")
            == requested
        ),
        timeout=60,
    )
    assert handled
    restarts = sum(
        value
        for r in survivors.values()
        for key, value in r.metrics().items()
        if key.startswith("claw_restarts_total{")
    )
    assert restarts == 1  # exactly one restart, by exactly one replica
    assert live_machines() == N  # no duplicate machine

    # r1 is partitioned from the apiserver: it stops mutating Fly before its Lease expires.
    cut = replicas["r1"]
    httpx.post(
        f"{kubesim.base_url}/_kubesim/partitions", json={"token": "r1", "mode": "hang"}, timeout=5
    ).raise_for_status()
    wait_for(lambda: cut.value("claw_shard_can_mutate{}") == 0, timeout=30, interval=0.05)
    stopped_at = datetime.now(UTC)
    mutations_when_stopped = cut.fly_mutations()
    lease = kubesim.get("coordination.k8s.io/v1", "Lease", "claw-operator-r1", "default")
    assert lease is not None
    renewed = parse_rfc3339(lease["spec"]["renewTime"])
    assert renewed is not None
    expires = renewed.timestamp() + lease["spec"]["leaseDurationSeconds"]
    print(f"r1 stopped {expires - stopped_at.timestamp():.2f}s before its Lease expired")
    assert stopped_at.timestamp() < expires
    assert not cut.ready()  # /readyz fails while it holds no renewed Lease
    r0 = replicas["r0"]
    wait_for(lambda: r0.value("claw_shard_members{}") == 1 and r0.value("claw_shard_instances_owned{}") == N)
    # Restarts of r1's instances while r1 is cut off: r0 serves them.
    requested2 = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    of_r1 = [i for i in items if owner(i["metadata"]["uid"], REPLICAS) == "r1"][:3]
    for item in of_r1:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, item["metadata"]["name"], {"spec": {"restartedAt": requested2}}
        )
    wait_for(
        lambda: all(
            custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, i["metadata"]["name"])
            .get("status", {})
            .get("handledRestartedAt")
            == requested2
            for i in of_r1
        ),
        timeout=60,
    )
    assert cut.fly_mutations() == mutations_when_stopped  # nothing from r1 while cut off

    # Healed: r1 acquires its Lease anew and takes its share back after the fence.
    httpx.delete(f"{kubesim.base_url}/_kubesim/partitions", timeout=5).raise_for_status()
    wait_for(lambda: cut.value("claw_shard_can_mutate{}") == 1, timeout=60)
    wait_for(lambda: all(r.value("claw_shard_members{}") == 2 for r in survivors.values()), timeout=30)
    shares = wait_for(lambda: full_shares(survivors))
    assert all((share or 0) > 0 for share in shares.values())
    assert live_machines() == N

    # Deletions complete with the finalizer held by a ring of replicas.
    for name in names[:6]:
        custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
    wait_for(lambda: len(phases()) == N - 6, timeout=120, interval=0.5)
    wait_for(lambda: live_machines() == N - 6, timeout=60)


@pytest.mark.slow(45)
def test_rolling_restart_hands_over_one_replica_at_a_time(
    world: tuple[KubeSimThread, FlySimThread], replicas: dict[str, Replica], tmp_path: Path
) -> None:
    """Each replica in turn: a replacement joins (maxSurge 1), a restart is requested on every
    instance, the old one gets SIGTERM (it releases its Lease). Every restart happens exactly
    once (flysim counts the machine updates), and the longest time the replicas together acted
    on fewer than all instances is printed."""
    kubesim, flysim = world
    assert kubesim.kubeconfig is not None
    custom = client.CustomObjectsApi(config.new_client_from_config(str(kubesim.kubeconfig)))
    count = 30
    wait_for(lambda: all(r.ready() for r in replicas.values()), timeout=90)
    wait_for(lambda: all(r.value("claw_shard_members{}") == 3 for r in replicas.values()))
    time.sleep(max(LEASE, 10.5))
    for i in range(count):
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ClawInstance",
                "metadata": {"name": f"roll-{i:03d}"},
                "spec": {"region": "iad", "image": "registry.fly.io/claw:1", "app": f"roll-app-{i % 10}"},
            },
        )

    def statuses() -> list[dict[str, Any]]:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"]
        return [i.get("status") or {} for i in items]

    wait_for(lambda: [s.get("phase") for s in statuses()] == ["Running"] * count, timeout=240, interval=0.5)

    def machine_updates() -> int:
        stats = httpx.get(f"{flysim.base_url}/_sim/stats", timeout=5).json()
        return sum(
            r["count"]
            for r in stats["requests"]
            if r["method"] == "POST" and r["route"] == "/v1/apps/{app}/machines/{id}"
        )

    updates_before = machine_updates()
    live = dict(replicas)
    gaps: list[tuple[str, float]] = []
    overlaps: list[tuple[str, float]] = []  # (phase, instances acted on by two replicas at once)
    phase = "start"
    sampling = threading.Event()

    skipped = 0
    pool = ThreadPoolExecutor(max_workers=8)

    def timed(replica: Replica) -> tuple[float, float, float]:
        started = time.monotonic()
        value = replica.value("claw_shard_instances_acting{}") or 0
        return started, time.monotonic(), value

    def sampler() -> None:
        """Every 0.1 s, all replicas at once: do they together act on every instance (gaps,
        from every sample), and on none twice? An overlap counts only when every replica
        answered within a quarter of the handover margin (the retry period): a slower sample
        could straddle a handover."""
        nonlocal skipped
        gap_started: float | None = None
        while not sampling.is_set():
            answers = list(pool.map(timed, list(live.values())))
            window = max(a[1] for a in answers) - min(a[0] for a in answers)
            acting = sum(a[2] for a in answers)
            now = time.monotonic()
            if acting > count:
                if window <= RETRY / 4:
                    overlaps.append((phase, acting - count))
                else:
                    skipped += 1
            if acting < count and gap_started is None:
                gap_started = now
            elif acting >= count and gap_started is not None:
                gaps.append((phase, round(now - gap_started, 1)))
                gap_started = None
            time.sleep(0.1)
        if gap_started is not None:
            gaps.append((phase, round(time.monotonic() - gap_started, 1)))

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    wait_sampling = wait_for
    for round_, old in enumerate(REPLICAS):
        new = f"{old}-b"
        phase = f"{new} joins"
        live[new] = replicas[new] = Replica(new, kubesim, flysim.base_url, tmp_path)
        wait_sampling(lambda: all(r.value("claw_shard_members{}") == 4 for r in live.values()), timeout=90)
        requested = datetime.now(UTC).strftime(f"%Y-%m-%dT%H:%M:{round_:02d}Z")
        for i in range(count):
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, "default", PLURAL, f"roll-{i:03d}", {"spec": {"restartedAt": requested}}
            )
        phase = f"{old} leaves"
        leaving = live.pop(old)
        leaving.stop()  # SIGTERM: handlers stop, then the Lease is released
        wait_sampling(lambda: all(r.value("claw_shard_members{}") == 3 for r in live.values()), timeout=60)
        wait_sampling(
            lambda requested=requested: (
                all(s.get("handledRestartedAt") == requested for s in statuses())
                and sum(r.value("claw_shard_instances_acting{}") or 0 for r in live.values()) == count
            ),
            timeout=120,
        )
    sampling.set()
    watcher.join(10)
    pool.shutdown()
    print(f"rolling restart: gaps where some instance had no acting replica (s): {gaps}")
    print(f"rolling restart: {skipped} samples over the total not counted (replicas answered too far apart)")
    # Never two replicas acting on one instance at once (their acting sets sum to at most all).
    assert not overlaps, overlaps
    # The new owners announced what they took over: HandedOver Events, naming the replicas.
    handed = [
        e
        for e in kubesim.events(namespace="default")
        if e.get("reason") == "HandedOver" and str(e["involvedObject"]["name"]).startswith("roll-")
    ]
    assert handed and all("handed over from" in e["message"] for e in handed)
    print(f"rolling restart: {len(handed)} HandedOver Events on {count} instances")
    # Exactly one restart per instance per round: nobody restarted an instance twice.
    assert machine_updates() - updates_before == 3 * count
    assert [s.get("phase") for s in statuses()] == ["Running"] * count


@pytest.mark.slow(93)
@pytest.mark.parametrize("server_side", [True, False], ids=["shardSelector", "client-side"])
def test_each_replica_watches_its_share_and_lists_what_it_gains(
    world: tuple[KubeSimThread, FlySimThread], tmp_path: Path, server_side: bool
) -> None:
    """With a 1.36 apiserver (KEP-5866) each replica's list and watch carry its share as a
    `shardSelector`: kubesim sends a replica only the instances it owns, and when r2 is killed
    the survivors list anew and see r2's instances without anyone modifying them. Without the
    feature (kubesim answering as 1.28-1.35) every replica receives every instance and filters
    client-side; each replica logs and exports which mode it detected."""
    kubesim, flysim = world
    kubesim.sim.api.shard_selectors = server_side
    assert kubesim.kubeconfig is not None
    custom = client.CustomObjectsApi(config.new_client_from_config(str(kubesim.kubeconfig)))
    replicas = {name: Replica(name, kubesim, flysim.base_url, tmp_path) for name in REPLICAS}
    count = 30
    try:
        wait_for(lambda: all(r.ready() for r in replicas.values()), timeout=90)
        wait_for(lambda: all(r.value("claw_shard_members{}") == 3 for r in replicas.values()))
        expected_mode = 1 if server_side else 0
        assert all(r.value("claw_shard_server_side{}") == expected_mode for r in replicas.values())
        for i in range(count):
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                "default",
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ClawInstance",
                    "metadata": {"name": f"w-{i:03d}"},
                    "spec": {"region": "iad", "image": "registry.fly.io/claw:1", "app": f"w-app-{i % 6}"},
                },
            )

        def items() -> list[dict[str, Any]]:
            return list(custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"])

        wait_for(
            lambda: [(i.get("status") or {}).get("phase") for i in items()] == ["Running"] * count,
            timeout=240,
            interval=0.5,
        )
        uids = {i["metadata"]["uid"]: i["metadata"]["name"] for i in items()}
        api = kubesim.sim.api

        async def reset() -> None:
            api.reset_counts()

        # Every instance modified once: who is sent what.
        kubesim.call(reset())
        for name in uids.values():
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, "default", PLURAL, name, {"metadata": {"annotations": {"touched": "1"}}}
            )

        def sent(name: str) -> set[str]:
            return set(api.watched_uids.get(name, set())) & set(uids)

        if server_side:
            wait_for(lambda: set().union(*(sent(r) for r in REPLICAS)) == set(uids), timeout=30)
            time.sleep(1)
            for name in REPLICAS:
                mine = {u for u in uids if owner(u, REPLICAS) == name}
                print(f"{name}: sent {len(sent(name))} of {count} instances, owns {len(mine)}")
                assert sent(name) <= mine, name
        else:
            wait_for(lambda: all(sent(r) == set(uids) for r in REPLICAS), timeout=30)
            print(f"client-side filtering: every replica was sent all {count} instances")

        # kill -9 of r2: the survivors take its instances over, unmodified.
        victim = replicas["r2"]
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)
        survivors = {k: v for k, v in replicas.items() if k != "r2"}
        versions = {i["metadata"]["uid"]: i["metadata"]["resourceVersion"] for i in items()}
        kubesim.call(reset())
        of_r2 = {u for u in uids if owner(u, REPLICAS) == "r2"}
        wait_for(
            lambda: sum(r.value("claw_shard_instances_acting{}") or 0 for r in survivors.values()) == count,
            timeout=60,
            interval=0.1,
        )
        relists = {name: r.value("claw_shard_relists_total{}") for name, r in survivors.items()}
        print(f"relists after r2 left: {relists}")
        if server_side:
            # Seen through a new listing (not an edit): each of r2's instances was listed to its
            # new owner, and none was modified between the kill and the takeover.
            for uid in of_r2:
                new_owner = owner(uid, ["r0", "r1"])
                assert new_owner is not None
                assert uid in api.listed_uids.get(new_owner, set()), uids[uid]
            assert all((v or 0) >= 1 for v in relists.values())
        else:
            assert all(v == 0 for v in relists.values())
        unmodified = [u for u in of_r2 if versions[u] == kubesim.get(
            f"{GROUP}/{VERSION}", "ClawInstance", uids[u], "default"
        )["metadata"]["resourceVersion"]]  # fmt: skip
        print(f"{len(unmodified)} of r2's {len(of_r2)} instances taken over while unmodified")
    finally:
        for replica in replicas.values():
            replica.stop()
        for name in REPLICAS:
            print(f"--- {name} log (shard lines)")
            lines = (tmp_path / f"{name}.log").read_text().splitlines(True)
            print("".join(line for line in lines if "shard" in line or "lease" in line)[-3000:])
