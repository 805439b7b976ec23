"""Data-parallel LM over ``torch.distributed``: each rank streams its own shard of the rows.

LM is full-batch, so data parallelism is exact: J^T J, J^T r and the loss sums are additive over
rows. Every rank builds its partial system, the partials are all-reduced (summed), and every
rank then solves the same system and takes the same step. Works with gloo on CPU and NCCL on
GPU; launch with ``torchrun --nproc-per-node K script.py`` (see the README).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.distributed as dist


class Reducer(Protocol):
    """Sums tensors across workers in place (identity on one process)."""

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor: ...

    @property
    def is_primary(self) -> bool: ...


class LocalReducer:
    """The single-process case: nothing to reduce."""

    is_primary = True

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor


class AllReduce:
    """Sums over the default process group; rank 0 writes checkpoints and runs callbacks."""

    def __init__(self, group: dist.ProcessGroup | None = None) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "data-parallel LM needs torch.distributed initialised: launch with torchrun "
                "and call torch.distributed.init_process_group('gloo' or 'nccl') first."
            )
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)

    @property
    def is_primary(self) -> bool:
        return self.rank == 0

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        return tensor


def shard_indices(n_rows: int, rank: int, world_size: int) -> range:
    """Contiguous, balanced slice of ``range(n_rows)`` owned by ``rank``."""
    base, extra = divmod(n_rows, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))
