"""Run by the data-parallel mini-batch test (under torchrun, or alone as the reference).

Every rank cuts its shard of the same seeded rows into loader batches of ``--batch`` rows;
batch k of the run is the union of every rank's batch k. Alone, the script builds those union
batches itself (``--ranks``) and takes the same steps in one process.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch import nn

from lmbench.core import TrainerSettings
from lmbench.core.distributed import AllReduce, shard_indices


def shard_batches(x, y, rank, ranks, batch, extra):
    rows = shard_indices(len(x), rank, ranks)
    xs, ys = x[rows.start : rows.stop], y[rows.start : rows.stop]
    batches = [(xs[i : i + batch], ys[i : i + batch]) for i in range(0, len(xs), batch)]
    return batches + ([batches[0]] if extra else [])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--extra-on-last-rank", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(240, 3, generator=generator, dtype=torch.float64)
    y = torch.sin(x[:, :1]) * x[:, 1:2] + x[:, 2:]
    if distributed:
        rank, ranks = dist.get_rank(), dist.get_world_size()
        extra = args.extra_on_last_rank and rank == ranks - 1
        batches = shard_batches(x, y, rank, ranks, args.batch, extra)
    else:
        rank, per_rank = 0, [shard_batches(x, y, r, args.ranks, args.batch, False)
                             for r in range(args.ranks)]
        batches = [(torch.cat([b[k][0] for b in per_rank]), torch.cat([b[k][1] for b in per_rank]))
                   for k in range(len(per_rank[0]))]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    settings = TrainerSettings(max_epochs=3, min_error=None, form="primal", mu_init=1.0)
    trainer = settings.build(model, reducer=AllReduce() if distributed else None,
                             loader_batches=True)
    history = trainer.fit_loader(batches)
    if rank == 0:
        torch.save({"loss": history.loss, "mu": history.mu, "state": model.state_dict()},
                   args.out)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
