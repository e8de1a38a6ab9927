"""The benchmark's memory diagnostic (`kube/memtrace.py`): off unless asked, and its dump says
who allocated what and who holds it."""

from __future__ import annotations

import signal
import tracemalloc
from pathlib import Path

import pytest

from claw_operator.kube import memtrace


class Held:
    def __init__(self) -> None:
        self.payload = {"metadata": {"name": "x"}, "spec": {}}


def test_nothing_is_installed_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memtrace.ENV, raising=False)
    before = signal.getsignal(signal.SIGUSR2)
    assert memtrace.install_from_env() is False
    assert signal.getsignal(signal.SIGUSR2) is before
    assert not tracemalloc.is_tracing()


def test_a_dump_has_the_allocations_the_types_and_the_holders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(memtrace.HOLDERS_ENV, "type:Held")
    tracemalloc.start(4)
    try:
        keep = [Held() for _ in range(3)]
        memtrace.write(tmp_path / "dump")
    finally:
        tracemalloc.stop()
    text = (tmp_path / "dump.txt").read_text()
    assert text.startswith("traced: ")
    assert "by traceback:" in text
    assert "live objects by type" in text
    assert "3 live objects (type:Held)" in text
    assert " <- " in text  # each sample's chain of referrers
    assert (tmp_path / "dump.snapshot").stat().st_size > 0
    snapshot = tracemalloc.Snapshot.load(str(tmp_path / "dump.snapshot"))
    assert any("test_memtrace.py" in stat.traceback[0].filename for stat in snapshot.statistics("traceback"))
    assert len(keep) == 3


def test_a_later_dump_leaves_out_what_the_earlier_dumps_allocated(tmp_path: Path) -> None:
    """Formatting the first dump's tracebacks fills `linecache`: not the operator's memory."""
    import linecache

    linecache.clearcache()
    tracemalloc.start(12)
    try:
        memtrace.write(tmp_path / "first")
        assert linecache.cache  # the first dump loaded source lines
        memtrace.write(tmp_path / "second")
    finally:
        tracemalloc.stop()
    snapshot = tracemalloc.Snapshot.load(str(tmp_path / "second.snapshot"))
    for trace in snapshot.traces:
        files = [frame.filename for frame in trace.traceback]
        assert not any(f.endswith(("/kube/memtrace.py", "/tracemalloc.py")) for f in files), files
