"""Timing helpers: device sync, one timed call, best of repeats, and other processes' load."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tick(device: torch.device) -> float:
    """``perf_counter`` after the device finished its queued work."""
    sync(device)
    return time.perf_counter()


def timed(fn: Callable[..., object], *args: object) -> float:
    """Wall seconds of one call ``fn(*args)``."""
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Minimum over ``repeats`` calls (noise only adds time), after one untimed warm-up call."""
    fn()  # warm-up: caches, lazy imports, allocator
    return min(timed(fn) for _ in range(max(repeats, 1)))


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_seconds() -> float | None:
    """CPU seconds all processes spent busy so far (first line of /proc/stat), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / CLOCK_TICKS


class OtherLoad:
    """How many cores *other* processes kept busy while the block ran (NaN if unknown).

    Busy CPU time of the whole machine (/proc/stat) minus this process's own (``os.times``),
    over the wall time. A shared 2-core machine makes timings 2-10x slower whenever another job
    runs; a sample taken while others used more than a fraction of a core is not kept.
    """

    def __enter__(self) -> OtherLoad:
        self._busy = _busy_seconds()
        own = os.times()
        self._own = own.user + own.system
        self._wall = time.perf_counter()
        self.cores = math.nan
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        busy = _busy_seconds()
        own = os.times()
        if busy is None or self._busy is None or wall <= 0:
            return
        others = (busy - self._busy) - (own.user + own.system - self._own)
        self.cores = max(others, 0.0) / wall
