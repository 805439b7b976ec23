"""Seed-compatible entry points: the original library's names, signatures and conventions.

Thin adapters over ``lmbench.core.LevenbergMarquardt``; ``demping_coef`` keeps the seed's
spelling on purpose so existing scripts run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmbench.core.callbacks import CallbackSpec
from lmbench.core.damping import SeedDamping
from lmbench.core.trainer import LevenbergMarquardt, StoppingRules

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
    trainer = LevenbergMarquardt(
        model,
        loss_fn=loss_fn,
        damping=SeedDamping(mu_init=float(mu_init), factor=float(demping_coef)),
        stopping=StoppingRules(max_epochs=max_epochs, min_error=min_error),
        inner_steps=inner_steps,
        callbacks=metrics_callbacks,
        checkpoint_dir=snap_folder,
        device=device,
    )
    return trainer.fit(x, y, val=val_loader).to_seed_tuple()
