"""Seeds and deterministic kernels: the same config gives bit-identical metrics on a rerun."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed python, numpy and torch; deterministic algorithms; pin torch's thread count.

    The thread count matters for reproducibility too: reductions split over a different number
    of threads can round differently.
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries that still read the global RNG
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
