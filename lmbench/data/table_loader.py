"""``TableLoader``: the original library's tiny Dataset over in-memory (x, y) tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


class TableLoader(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Rows of ``x`` and ``y`` as float32 tensors on ``device`` (converted once, here).

    Drop-in for the original helper: ``DataLoader(TableLoader(x, y), batch_size=5000,
    shuffle=False)`` works and yields ``(x_batch, y_batch)``. That path still calls
    ``__getitem__`` once per row and stacks the rows (PyTorch's default collate needs a list of
    samples, so a ``__getitems__`` returning whole batches would break it). ``loader()``
    is the fast path: one indexing operation per batch, and a contiguous run of rows (the
    unshuffled case) is a zero-copy view.
    """

    def __init__(
        self,
        x: np.ndarray | torch.Tensor | Any,
        y: np.ndarray | torch.Tensor | Any,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.x = _to_tensor(x, "x", dtype, device)
        self.y = _to_tensor(y, "y", dtype, device)
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"TableLoader: x has {self.x.shape[0]} rows but y has {self.y.shape[0]}; "
                "inputs and targets must have the same number of rows"
            )

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """One row (int) or a batch (slice, sequence of ints, integer tensor or array)."""
        if isinstance(index, torch.Tensor | np.ndarray) and index.ndim == 0:
            index = int(index)
        if isinstance(index, int | np.integer | slice):
            return self.x[index], self.y[index]
        rows = _as_slice_if_contiguous(index)
        if isinstance(rows, slice):
            return self.x[rows], self.y[rows]
        rows = rows.to(self.x.device)
        return self.x[rows], self.y[rows]

    def loader(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
    ) -> DataLoader:
        """A DataLoader that fetches each batch with one indexing call (no per-row collate)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        sampler = RandomSampler(self, generator=generator) if shuffle else SequentialSampler(self)
        batches = BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last)
        return DataLoader(self, batch_size=None, sampler=batches)


def _to_tensor(
    value: Any, name: str, dtype: torch.dtype, device: str | torch.device
) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to(device=device, dtype=dtype)
    else:
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(f"TableLoader: {name} has dtype object; pass numeric arrays")
        if not array.flags.writeable:
            array = array.copy()
        tensor = torch.as_tensor(array, dtype=dtype, device=device)
    if tensor.ndim == 0:
        raise ValueError(f"TableLoader: {name} must have at least one dimension (rows)")
    return tensor


def _as_slice_if_contiguous(
    index: Sequence[int] | np.ndarray | torch.Tensor,
) -> slice | torch.Tensor:
    """A slice when the indices are consecutive and increasing, else an int64 index tensor."""
    if isinstance(index, torch.Tensor):
        rows = index.to(torch.int64).reshape(-1)
    else:
        rows = torch.from_numpy(np.asarray(index, dtype=np.int64).reshape(-1))
    n = rows.numel()
    if n == 0:
        return rows
    start = int(rows[0])
    if start >= 0 and int(rows[-1]) == start + n - 1 and (n == 1 or bool((rows.diff() == 1).all())):
        return slice(start, start + n)
    return rows
