"""pytest fixtures: a kubesim server on a free port, its kubeconfig in `tmp_path`, and the
project's CRDs (`crds/`) applied. Register them in a conftest.py with

    from claw_operator.sim.kubesim.testing import kubesim, kubesim_thread  # noqa: F401

`kubesim` runs in the test's event loop (async tests); `kubesim_thread` runs on its own loop in a
background thread, for tests that drive blocking clients (kubectl, the `kubernetes` client) or
run kopf on another loop.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from .sim import KubeSim, KubeSimThread

# operator/claw_operator/sim/kubesim/testing.py -> the repository root
REPOSITORY_ROOT = Path(__file__).resolve().parents[4]


def crds_directory() -> Path | None:
    """`$KUBESIM_CRDS`, or the repository's `crds/` when running from a checkout."""
    configured = os.environ.get("KUBESIM_CRDS")
    if configured:
        return Path(configured)
    candidate = REPOSITORY_ROOT / "crds"
    return candidate if candidate.is_dir() else None


def fast_kubesim() -> KubeSim:
    """A KubeSim with short intervals, so tests see bookmarks and garbage collection quickly."""
    return KubeSim(bookmark_interval=1.0, gc_interval=0.2)


@pytest.fixture
async def kubesim(tmp_path: Path) -> AsyncIterator[KubeSim]:
    """A started `KubeSim` in the test's loop; `.kubeconfig` is tmp_path/"kubeconfig"."""
    sim = fast_kubesim()
    await sim.start()
    crds = crds_directory()
    if crds is not None:
        await sim.apply_crds(crds)
    sim.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
def kubesim_thread(tmp_path: Path) -> Iterator[KubeSimThread]:
    """A started `KubeSimThread`; `.kubeconfig` is tmp_path/"kubeconfig", `.base_url` the server."""
    runner = KubeSimThread(
        fast_kubesim(),
        crds=crds_directory(),
        kubeconfig=tmp_path / "kubeconfig",
    )
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
