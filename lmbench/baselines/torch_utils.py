"""Torch helpers shared by the network baselines (Adam, tuned LM): thread pinning (with the
``auto`` thread rule) and the chunked, eval-mode predictor every ``BaselineResult`` of a network
uses."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

#: Rows per forward pass when predicting (bounds memory on large splits).
PREDICT_CHUNK_ROWS = 65_536
#: ``n_threads: auto`` uses one thread below this much work per job, estimated as train rows x
#: weights^2 (an LM epoch forms J^T J: rows x outputs x P^2). Measured on the 2-core dev VM
#: (LM, 1 vs 2 threads): 1,000 rows x 161 weights (2.6e7) 0.04 s vs 0.08 s; 1,000 x 1,537
#: (2.4e9) 0.45 s vs 1.1 s; 5,000 x 1,537 (1.2e10) 2.8 s vs 5.5 s; 10,000 x 1,537 (2.4e10)
#: 2.6 s vs 1.4 s; 20,000 x 1,537 (4.7e10) 9.3 s vs 7.6 s; 5,000 x 6,017 (1.8e11) 25 s vs 15 s.
#: Adam agrees: equal below 1e10, 2 threads 14-30% faster from 1e12.
AUTO_THREADS_MIN_WORK = 2e10


def thread_cap() -> int:
    """The most intra-op threads a job should use: the cores this process may run on, divided
    among parallel launcher workers (joblib/loky workers get ``OMP_NUM_THREADS`` = cores /
    workers; a value set by hand caps it the same way)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        omp = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        omp = 0
    return max(1, min(cores, omp) if omp > 0 else cores)


def parse_threads(value: Any) -> int | str:
    """A ``n_threads`` setting: a positive int or ``"auto"``; anything else names the knob."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        threads = int(value)
    except (TypeError, ValueError):
        threads = 0
    if threads <= 0:
        raise ValueError(
            f"trainer.params.n_threads must be a positive int or auto, got {value!r}"
        )
    return threads


def resolve_threads(setting: int | str, rows: int, n_weights: int) -> int:
    """Threads for a job of ``rows`` training rows and ``n_weights`` weights: an int is used as
    given; ``auto`` is 1 below :data:`AUTO_THREADS_MIN_WORK` (rows x weights^2, where thread
    start-up and syncing cost more than they save on 2 shared cores), else :func:`thread_cap`."""
    if setting != "auto":
        return int(setting)
    if float(rows) * float(n_weights) ** 2 < AUTO_THREADS_MIN_WORK:
        return 1
    return thread_cap()


@contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """Pin torch's intra-op threads for fair timing; restore the previous value afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_predictor(
    model: nn.Module,
    n_threads: int,
    output: Callable[[torch.Tensor], torch.Tensor] | None = None,
):
    """``predict(x)``: the network output (softmax probabilities / values) as float64 ``(n, k)``;
    ``output`` maps raw outputs first (e.g. logits to probabilities)."""
    dtype = next(model.parameters()).dtype

    def predict(x: np.ndarray) -> np.ndarray:
        model.eval()
        inputs = torch.as_tensor(np.asarray(x)).to(dtype)
        with torch_threads(n_threads), torch.no_grad():
            chunks = [
                model(inputs[i : i + PREDICT_CHUNK_ROWS])
                for i in range(0, inputs.shape[0], PREDICT_CHUNK_ROWS)
            ]
        joined = torch.cat(chunks) if chunks else None
        if joined is not None and output is not None:
            joined = output(joined)
        out = joined.double().numpy() if joined is not None else np.empty((0, 0))
        return out.reshape(-1, 1) if out.ndim == 1 else out

    return predict
