"""Seed-compatible entry points: the original library's names, signatures and conventions.

Thin adapters over ``lmbench.core.LevenbergMarquardt``; ``demping_coef`` keeps the seed's
spelling on purpose so existing scripts run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn

from lmbench.core.callbacks import CallbackSpec
from lmbench.core.distributed import AllReduce
from lmbench.core.settings import TrainerSettings

SeedHistory = tuple[list[float], list[float], list[float], list[float]]


def train_levenberg(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    val_loader: Iterable[Any] | None = None,
    snap_folder: str | Path | None = None,
    mu_init: float = 10,
    min_error: float = 1e-2,
    max_epochs: int = 10,
    inner_steps: int = 10,
    demping_coef: float = 10,
    device: str | torch.device | None = None,
    metrics_callbacks: CallbackSpec = None,
) -> SeedHistory:
    """Train ``model`` in memory with LM; returns (loss, val, mu, epoch_time) lists.

    As in the original library: the first entry of each list is the state before training,
    ``min_error`` is checked on ``val_loader`` when one is given, ``snap_folder`` receives a
    checkpoint per epoch, and the step is accepted when the loss does not increase
    (mu /= demping_coef), else undone (mu *= demping_coef), up to ``inner_steps`` times.
    ``device`` defaults to the model's device (the seed defaulted to "cuda:0").
    ``metrics_callbacks``: ``{name: fn(model) -> float}`` or callbacks of ``EpochInfo``.
    """
    settings = _seed_settings(mu_init, min_error, max_epochs, inner_steps, demping_coef)
    trainer = settings.build(model, loss_fn=loss_fn, callbacks=metrics_callbacks,
                             checkpoint_dir=snap_folder, device=device)
    return trainer.fit(x, y, val=val_loader).to_seed_tuple()


def _seed_settings(
    mu_init: float, min_error: float, max_epochs: int, inner_steps: int, demping_coef: float,
    **engine: Any,
) -> TrainerSettings:
    """The seed's arguments as engine settings (seed damping: mu /= or *= demping_coef)."""
    return TrainerSettings(
        damping="seed", mu_init=float(mu_init), damping_factor=float(demping_coef),
        max_epochs=max_epochs, min_error=min_error, inner_steps=inner_steps, **engine,
    )


def train_distributed_levenberg(
    model: nn.Module,
    x_loader: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    val_loader: Iterable[Any] | None = None,
    snap_folder: str | Path | None = None,
    mu_init: float = 10,
    min_error: float = 1e-2,
    max_epochs: int = 10,
    inner_steps: int = 10,
    demping_coef: float = 10,
    device: str | torch.device | None = None,
    temp_folder: str | Path = "./temp",
    metrics_callbacks: CallbackSpec = None,
    engine: Literal["auto", "streaming", "cache"] = "auto",
    memory_budget_bytes: int | None = None,
) -> SeedHistory:
    """LM on data streamed from ``x_loader`` (chunks of (x, y)); every row enters every step.

    engine: ``streaming`` accumulates J^T J chunk by chunk (memory O(P^2 + chunk*O*P), no
    Jacobian kept); ``cache`` writes Jacobian chunks to ``temp_folder`` once per epoch and
    solves by conjugate gradients (for P x P too large for memory); ``auto`` picks streaming
    when J^T J and its factor fit ``memory_budget_bytes`` (default: 3/4 of available memory).
    Under ``torchrun`` with an initialised process group, each rank passes the loader of its
    own shard and the system is all-reduced (data-parallel LM). Returns the seed's 4 lists.
    """
    if engine not in ("auto", "streaming", "cache"):
        raise ValueError(f"engine must be 'auto', 'streaming' or 'cache', got {engine!r}")
    settings = _seed_settings(
        mu_init, min_error, max_epochs, inner_steps, demping_coef, engine=engine,
        temp_folder=str(temp_folder), memory_budget_bytes=memory_budget_bytes,
    )
    reducer = AllReduce() if dist.is_available() and dist.is_initialized() else None
    trainer = settings.build(model, loss_fn=loss_fn, callbacks=metrics_callbacks,
                             checkpoint_dir=snap_folder, device=device, reducer=reducer)
    return trainer.fit_loader(x_loader, val=val_loader).to_seed_tuple()
