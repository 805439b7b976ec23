"""Data-parallel LM with torch.distributed: every rank streams its own shard of the rows.

Launch (CPU, gloo):   torchrun --standalone --nproc-per-node 2 -m lmbench.examples.data_parallel
GPU (NCCL):           torchrun --standalone --nproc-per-node 4 -m lmbench.examples.data_parallel
                      --device cuda
Without torchrun it runs on one process over all rows (the reference the ranks must match).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from lmbench.core import TrainerSettings
from lmbench.core.distributed import AllReduce, shard_indices
from lmbench.core.losses import LOSS_NAMES, takes_logits


def synthetic_rows(rows: int, features: int, dtype: torch.dtype, loss: str = "mse"):
    """The same rows on every rank (seeded), so each rank can cut its own shard: two regression
    targets, or for a classification loss the class of the larger one (one-hot)."""
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(rows, features, generator=gen, dtype=dtype)
    y = torch.stack([torch.sin(x[:, 0]) * x[:, 1], x[:, 2:].pow(2).mean(dim=1)], dim=1)
    if takes_logits(loss):
        y = torch.nn.functional.one_hot(y.argmax(dim=1), 2).to(dtype)
    return x, y


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--loss", choices=LOSS_NAMES, default="mse")
    parser.add_argument("--engine", choices=["in_memory", "matrix_free"], default="in_memory",
                        help="matrix_free: CG on all-reduced Jacobian-vector products")
    parser.add_argument("--weight-decay", type=float, default=0.0,
                        help="lambda of the (lambda/2)||w||^2 penalty, added once to the sum")
    parser.add_argument("--regularization", choices=["none", "bayesian"], default="none")
    parser.add_argument("--out", type=Path, default=None, help="save rank 0's weights here")
    args = parser.parse_args(argv)

    distributed = "RANK" in os.environ
    device = torch.device(args.device)
    if distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    dtype = getattr(torch, args.dtype)
    x, y = synthetic_rows(args.rows, args.features, dtype, args.loss)
    rows = shard_indices(args.rows, rank, world)
    x, y = x[rows.start : rows.stop].to(device), y[rows.start : rows.stop].to(device)

    torch.manual_seed(0)  # identical initial weights on every rank
    model = nn.Sequential(
        nn.Linear(args.features, args.hidden), nn.Tanh(), nn.Linear(args.hidden, 2)
    ).to(device, dtype)
    settings = TrainerSettings(max_epochs=args.epochs, min_error=None, form="primal",
                               loss=args.loss, engine=args.engine,
                               weight_decay=args.weight_decay,
                               regularization=args.regularization)
    trainer = settings.build(model, reducer=AllReduce() if distributed else None)
    started = time.perf_counter()
    history = trainer.fit(x, y)
    elapsed = time.perf_counter() - started
    if rank == 0:
        per_epoch = sum(history.epoch_time[1:]) / max(history.epochs, 1)
        print(f"world={world} epochs={history.epochs} loss={history.loss[-1]:.6g} "
              f"time={elapsed:.3f}s epoch_time={per_epoch:.4f}s")
        if args.out is not None:
            torch.save({"state": model.state_dict(), "loss": history.loss,
                        "epoch_time": history.epoch_time, "alpha": history.alpha,
                        "beta": history.beta, "gamma": history.gamma}, args.out)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
