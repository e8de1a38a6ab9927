"""Returning a burst's freed memory to the OS (`kube/memtrim.py`), on a fake clock (looptime)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from claw_operator.kube import memtrim


@pytest.mark.looptime
async def test_trims_once_after_passes_ran_and_none_runs() -> None:
    counters = {"started": 0, "running": 0}
    trims: list[float] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def trimmer() -> bool:
        trims.append(round(loop.time() - t0, 3))
        return True

    task = asyncio.create_task(
        memtrim.trim_after_bursts(
            lambda: counters["started"], lambda: counters["running"], interval=5.0, trimmer=trimmer
        )
    )
    await asyncio.sleep(12)  # no pass at all: nothing to trim
    assert trims == []
    counters.update(started=50, running=3)
    await asyncio.sleep(5)  # t=17: passes run: not now
    assert trims == []
    counters.update(running=0)
    await asyncio.sleep(5)  # t=22: the burst is over
    assert trims == [20.0]
    await asyncio.sleep(20)  # no pass since: no further trim
    assert trims == [20.0]
    counters.update(started=51)
    await asyncio.sleep(5)
    assert trims == [20.0, 45.0]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_trim_is_available_on_linux_glibc_and_a_no_op_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform.startswith("linux") and memtrim.libc() is not None:
        assert isinstance(memtrim.trim(), bool)
    memtrim.libc.cache_clear()
    monkeypatch.setattr(memtrim.sys, "platform", "darwin")
    try:
        assert memtrim.libc() is None
        assert memtrim.trim() is False
    finally:
        memtrim.libc.cache_clear()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, memtrim.DEFAULT_INTERVAL), ("", memtrim.DEFAULT_INTERVAL), ("30", 30.0), ("0", 0.0), ("x", 5.0)],
)
def test_the_interval_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float
) -> None:
    if value is None:
        monkeypatch.delenv(memtrim.ENV, raising=False)
    else:
        monkeypatch.setenv(memtrim.ENV, value)
    assert memtrim.trim_interval() == expected
