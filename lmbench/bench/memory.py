"""The one memory meter: peak memory while a block runs, sampled in a daemon thread.

One sampling core (``PeakSampler``: read a number every ``interval`` seconds, keep the start and
the maximum) with three readings:

* ``PeakMemoryInUse``: memory in use above the start, the CUDA allocator on GPUs and the C heap
  on CPUs. On the CPU, torch tensors are plain malloc'ed blocks, so glibc's ``mallinfo2`` (bytes
  in use in the heap arenas plus mmapped blocks) counts them exactly, unlike RSS, which keeps
  memory that was freed but not yet returned to the system. It is sampled every half
  millisecond (torch releases the GIL inside kernels, so the sampler runs during them). Where
  ``mallinfo2`` is unavailable (not glibc) the RSS is sampled instead, which over-reports.
* ``PeakMemory``: the process's RSS (what the harness records per job: ``ru_maxrss`` is per
  process, and a sweep worker runs many jobs, so it cannot tell one job's peak).
* ``AnonRssPeak``: ``RssAnon`` from /proc/self/status (KiB), which leaves out file-backed pages,
  so memory-mapped data does not count.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from typing import Self

import psutil
import torch


class PeakSampler:
    """``with PeakSampler(read) as s: ...`` then ``s.start`` and ``s.peak`` (max of ``read()``)."""

    def __init__(self, read: Callable[[], int], interval: float) -> None:
        self.read = read
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.read())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Self:
        self.start = self.peak = self.read()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.read())


# ------------------------------------------------------------------------------ the readings
def status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``RssAnon``, ...), 0 if absent."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]


def heap_reader() -> tuple[Callable[[], int], str]:
    """Bytes in use in the C heap (``mallinfo2``) and ``"heap"``, else the RSS and ``"rss"``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        process = psutil.Process()
        return (lambda: process.memory_info().rss), "rss"
    mallinfo2.restype = _MallInfo2

    def in_use() -> int:
        info = mallinfo2()
        return int(info.uordblks + info.hblkhd)

    return in_use, "heap"


# ------------------------------------------------------------------------------ the meters
class PeakMemory(PeakSampler):
    """This process's RSS every ``interval`` seconds; ``peak_bytes`` is the max."""

    def __init__(self, interval: float = 0.05) -> None:
        process = psutil.Process()
        super().__init__(lambda: int(process.memory_info().rss), interval)

    @property
    def peak_bytes(self) -> int:
        return self.peak


class AnonRssPeak(PeakSampler):
    """Peak of RssAnon (KiB) while the block runs, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(lambda: status_kib("RssAnon"), interval)

    @property
    def start_kib(self) -> int:
        return self.start

    @property
    def peak_kib(self) -> int:
        return self.peak


class PeakMemoryInUse:
    """``with PeakMemoryInUse(device) as peak: ...`` then ``peak.bytes``: the peak above start."""

    def __init__(self, device: torch.device | str = "cpu", interval: float = 5e-4) -> None:
        self.device = torch.device(device)
        self.bytes = 0
        read, method = heap_reader()
        self.method = "cuda_allocator" if self.device.type == "cuda" else method
        self._sampler = PeakSampler(read, interval)
        self._base = 0

    def __enter__(self) -> PeakMemoryInUse:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        self._sampler.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        self._sampler.__exit__(*exc)
        self.bytes = self._sampler.peak - self._sampler.start
