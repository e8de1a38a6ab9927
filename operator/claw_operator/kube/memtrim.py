"""Give the memory a burst freed back to the OS (issue 13's memory goal).

glibc's allocator keeps the pages freed by a burst of passes (thousands of decoded objects and
responses, freed once the fleet is Ready) in its arenas: the process's RSS stays at the burst's
high-water mark although Python no longer uses them. `malloc_trim(0)` returns the free pages
of every arena to the OS. `trim_after_bursts` calls it once the scheduler has had no pass
running for a moment after passes ran, at most every `interval` seconds (`CLAW_OPERATOR_MALLOC_TRIM`,
5 by default, 0: off; docs/operations.md). Linux with glibc only; elsewhere (`libc()` None) it
does nothing. What the operator does never depends on it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import sys
import time
from collections.abc import Callable
from functools import cache

logger = logging.getLogger("claw_operator.memtrim")

ENV = "CLAW_OPERATOR_MALLOC_TRIM"  # seconds between two looks; 0 turns trimming off
DEFAULT_INTERVAL = 5.0


def trim_interval() -> float:
    """`CLAW_OPERATOR_MALLOC_TRIM` seconds (5 by default; 0 or less: never trim)."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return DEFAULT_INTERVAL
    try:
        return float(value)
    except ValueError:
        logger.warning(f"{ENV}={value!r} is not a number of seconds; using {DEFAULT_INTERVAL}")
        return DEFAULT_INTERVAL


@cache
def libc() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None (not Linux, or a libc without it: musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = lib.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def trim() -> bool:
    """Return free heap pages to the OS; True when some were (False also: not available)."""
    function = libc()
    return bool(function(0)) if function is not None else False


async def trim_after_bursts(
    passes_started: Callable[[], int],
    running: Callable[[], int],
    *,
    interval: float,
    trimmer: Callable[[], bool] = trim,
) -> None:
    """Every `interval` seconds: when passes started since the last trim and none runs now,
    trim. Runs until cancelled."""
    last = passes_started()
    while True:
        await asyncio.sleep(interval)
        started = passes_started()
        if started == last or running():
            continue
        last = started
        began = time.perf_counter()
        released = trimmer()
        logger.debug(
            "malloc_trim",
            extra={
                "action": "malloc_trim",
                "released": released,
                "seconds": round(time.perf_counter() - began, 4),
            },
        )
