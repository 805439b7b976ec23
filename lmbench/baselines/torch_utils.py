"""Torch helpers shared by the network baselines (Adam, LM grid): thread pinning and the
chunked, eval-mode predictor every ``BaselineResult`` of a network uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

#: Rows per forward pass when predicting (bounds memory on large splits).
PREDICT_CHUNK_ROWS = 65_536


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
