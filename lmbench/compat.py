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
import torch.nn.functional as F
from torch import nn

from lmbench.core.callbacks import CallbackSpec
from lmbench.core.distributed import AllReduce
from lmbench.core.losses import loss_from_module
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

    What LM minimises follows ``loss_fn``: ``nn.MSELoss`` (squared error, the seed's objective),
    ``nn.CrossEntropyLoss`` (logits; class-index or one-hot targets), ``nn.BCEWithLogitsLoss``
    and ``nn.HuberLoss`` are minimised exactly (generalised Gauss-Newton), with the module's
    ``reduction`` ('mean' or 'sum') in the reported loss. Any other ``loss_fn`` is refused with an
    error (never a silent squared-error fit): to minimise one loss and report another, use
    ``LevenbergMarquardt(model, loss=..., loss_fn=...)``.
    """
    settings = _seed_settings(mu_init, min_error, max_epochs, inner_steps, demping_coef,
                              **_objective(loss_fn))
    trainer = settings.build(model, loss_fn=loss_fn, callbacks=metrics_callbacks,
                             checkpoint_dir=snap_folder, device=device)
    return trainer.fit(x, y, val=val_loader).to_seed_tuple()


def _objective(loss_fn: object) -> dict[str, Any]:
    """The loss LM minimises: the one behind the seed's ``loss_fn``."""
    if loss_fn is F.mse_loss:
        return {"loss": "mse"}
    loss = loss_from_module(loss_fn)
    return {"loss": loss.name, "huber_delta": loss.huber_delta}


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
    ``loss_fn`` chooses what LM minimises, as in ``train_levenberg``.
    """
    if engine not in ("auto", "streaming", "cache"):
        raise ValueError(f"engine must be 'auto', 'streaming' or 'cache', got {engine!r}")
    settings = _seed_settings(
        mu_init, min_error, max_epochs, inner_steps, demping_coef, engine=engine,
        temp_folder=str(temp_folder), memory_budget_bytes=memory_budget_bytes,
        **_objective(loss_fn),
    )
    reducer = AllReduce() if dist.is_available() and dist.is_initialized() else None
    trainer = settings.build(model, loss_fn=loss_fn, callbacks=metrics_callbacks,
                             checkpoint_dir=snap_folder, device=device, reducer=reducer)
    return trainer.fit_loader(x_loader, val=val_loader).to_seed_tuple()
