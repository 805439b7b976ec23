"""Peak memory in use while a block runs: the CUDA allocator on GPUs, the C heap on CPUs.

On the CPU, torch tensors are plain malloc'ed blocks, so glibc's ``mallinfo2`` (bytes in use
in the heap arenas plus mmapped blocks) counts them exactly, unlike RSS, which keeps memory that
was freed but not yet returned to the system. A daemon thread samples it every half
millisecond (torch releases the GIL inside kernels, so the sampler runs during them). Where
``mallinfo2`` is unavailable (not glibc) the RSS is sampled instead, which over-reports.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable

import psutil
import torch


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]


def _heap_reader() -> tuple[Callable[[], int], str]:
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


class PeakMemoryInUse:
    """``with PeakMemoryInUse(device) as peak: ...`` then ``peak.bytes``: the peak above start."""

    def __init__(self, device: torch.device | str = "cpu", interval: float = 5e-4) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.bytes = 0
        self.method = "cuda_allocator" if self.device.type == "cuda" else ""
        self._read, method = _heap_reader()
        if not self.method:
            self.method = method
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemoryInUse:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        self._base = self._peak = self._read()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._read())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.bytes = max(self._peak, self._read()) - self._base
