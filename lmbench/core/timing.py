"""Wall time of the phases of an epoch; synchronises CUDA so GPU work lands in the right phase."""

from __future__ import annotations

import time

import torch

#: The phases an epoch's time is split into (the history's ``time_*`` series).
PHASES = ("time_jacobian", "time_system", "time_solve", "time_evaluate")


class PhaseTimer:
    """Accumulates seconds per phase: ``with timer("time_solve"): ...``."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.totals: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self._phase = ""
        self._start = 0.0

    def __call__(self, phase: str) -> PhaseTimer:
        self._phase = phase
        return self

    def __enter__(self) -> PhaseTimer:
        if self.cuda:
            torch.cuda.synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - self._start
        self.totals[self._phase] = self.totals.get(self._phase, 0.0) + elapsed
