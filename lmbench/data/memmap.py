"""Rows of ``x.npy``/``y.npy`` served from memory-mapped files, one whole chunk per call.

``MemmapRows`` is indexed by a ``slice`` and ``ChunkSampler`` yields slices in order, so a
``DataLoader`` built by ``chunk_loader`` hands out chunks without collating single rows and
without reading the whole arrays into memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

#: Rows per chunk unless told otherwise.
CHUNK_ROWS = 4096


class MemmapRows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The first ``rows`` rows of ``x.npy``/``y.npy`` in ``workdir``, memory-mapped.

    Indexed by a ``slice``: one call returns the whole chunk as two float32 tensors (a copy of
    just those rows), so the loader never collates single rows.
    """

    def __init__(self, workdir: Path, rows: int | None = None) -> None:
        self.x = np.load(workdir / "x.npy", mmap_mode="r")
        self.y = np.load(workdir / "y.npy", mmap_mode="r")
        total = self.x.shape[0]
        self.rows = total if rows is None else min(rows, total)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: slice) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        start, stop, _ = index.indices(self.rows)
        x = torch.from_numpy(np.array(self.x[start:stop], dtype=np.float32))
        y = torch.from_numpy(np.array(self.y[start:stop], dtype=np.float32))
        return x, y

    @property
    def nbytes(self) -> int:
        """Bytes of the rows served (inputs and targets)."""
        return self.rows * (self.x.shape[1] + self.y.shape[1]) * self.x.itemsize


class ChunkSampler(Sampler[slice]):
    """Yields ``slice(start, start + chunk)`` over ``rows`` rows, in order."""

    def __init__(self, rows: int, chunk: int) -> None:
        self.rows = rows
        self.chunk = chunk

    def __iter__(self) -> Iterator[slice]:
        for start in range(0, self.rows, self.chunk):
            yield slice(start, min(start + self.chunk, self.rows))

    def __len__(self) -> int:
        return -(-self.rows // self.chunk)


def chunk_loader(dataset: MemmapRows, chunk: int = CHUNK_ROWS) -> DataLoader[Any]:
    """A DataLoader that hands out whole chunks (``batch_size=None``: no collation)."""
    return DataLoader(dataset, sampler=ChunkSampler(len(dataset), chunk), batch_size=None)
