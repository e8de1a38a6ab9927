"""Shared test helpers: repository paths and the committed CRD."""

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CRD_PATH = REPO / "crds" / "clawinstances.yaml"
EXAMPLES = REPO / "examples"


def load_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return crd


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    return load_crd()


@pytest.fixture(scope="session")
def crd_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow(seconds): the test takes about this long on its own (measured, serial); a parallel run "
        "starts it first on its own worker (pytest_collection_modifyitems). Never a reason to skip it.",
    )


def _worksteal_chunks(total: int, workers: int) -> list[int]:
    """How many tests each worker gets first under `--dist worksteal`: pytest-xdist splits the
    collection, in order, into consecutive chunks of `pending // workers_left` (3.x)."""
    sizes = []
    for left in range(workers, 0, -1):
        sizes.append(total // left)
        total -= sizes[-1]
    return sizes


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `pytest -n N --dist worksteal` (what `make test` runs), spread the tests marked
    `slow` over the workers (longest first, each onto the least loaded worker) and put them at
    the head of each worker's chunk: they start at once, and work stealing, which takes from the
    tail of a queue, balances the rest. Collected in file order, the four shard_replicas tests
    (~6 min together) would land in one worker's chunk, one after the other, and end the run.

    Only the order changes (each worker computes the same one): which tests run, and what they
    check, does not. A serial run keeps the file order."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if workers <= 1:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if not slow:
        return
    rest = [item for item in items if not item.get_closest_marker("slow")]
    sizes = _worksteal_chunks(len(items), workers)
    bins: list[list[pytest.Item]] = [[] for _ in sizes]
    load = [0.0 for _ in sizes]

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.args[0]) if marker and marker.args else 0.0

    for item in sorted(slow, key=seconds, reverse=True):  # stable: ties keep file order
        fits = [j for j in range(len(sizes)) if len(bins[j]) < sizes[j]]
        target = min(fits, key=lambda j: load[j])
        bins[target].append(item)
        load[target] += seconds(item)
    ordered: list[pytest.Item] = []
    remaining = iter(rest)
    for size, chunk in zip(sizes, bins, strict=True):
        ordered += chunk
        ordered += [next(remaining) for _ in range(size - len(chunk))]
    assert len(ordered) == len(items) and set(map(id, ordered)) == set(map(id, items))
    items[:] = ordered
