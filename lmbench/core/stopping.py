"""When LM stops: the rules users know from MATLAB's trainlm plus the seed's ``min_error``, the
stop reasons, and the best-validation weights kept for ``patience``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StoppingRules:
    """When to stop (MATLAB trainlm's rules plus the seed's ``min_error``).

    min_error: stop when the loss falls to this value, measured on the validation set when one is
    given (as the seed does), else on the training set; None disables.
    max_epochs: epochs of LM steps (epoch 0 is the initial evaluation).
    min_gradient: stop when ||J^T r||_2 falls below it (0 disables).
    mu_max: stop when mu grows beyond it (no step can make progress).
    patience: stop after this many epochs without a new best validation loss, and restore the
    best-validation weights (None disables; needs validation data).
    """

    max_epochs: int = 10
    min_error: float | None = 1e-2
    min_gradient: float = 0.0
    mu_max: float = 1e10
    patience: int | None = None

    def __post_init__(self) -> None:
        if self.max_epochs < 0:
            raise ValueError(f"max_epochs must be >= 0, got {self.max_epochs}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")

    def reached_min_error(self, loss: float, val_loss: float) -> bool:
        """The seed's goal: the validation loss when there is one, else the training loss."""
        if self.min_error is None:
            return False
        watched = val_loss if not math.isnan(val_loss) else loss
        return watched <= self.min_error

    def mu_exhausted(self, mu: float) -> bool:
        """mu has grown past ``mu_max``: no damped step can make progress."""
        return mu > self.mu_max

    def stop_reason(
        self, loss: float, val_loss: float, gradient_norm: float, mu: float, bad_epochs: int
    ) -> str | None:
        """Why training stops after this epoch, or None to go on (first matching rule)."""
        if self.reached_min_error(loss, val_loss):
            return "min_error"
        if gradient_norm < self.min_gradient:
            return "min_gradient"
        if self.mu_exhausted(mu):
            return "mu_max"
        if self.patience is not None and bad_epochs >= self.patience:
            return "validation_patience"
        return None


@dataclass
class BestWeights:
    """The best-validation weights seen so far and the epochs since (only with patience)."""

    enabled: bool
    best_val: float = math.inf
    theta: torch.Tensor | None = None
    epoch: int | None = None
    bad_epochs: int = 0

    def update(self, val_loss: float, theta: torch.Tensor, epoch: int) -> bool:
        """Record this epoch's validation loss; True when it is a new best."""
        if not self.enabled or math.isnan(val_loss):
            return False
        if val_loss < self.best_val:
            self.best_val, self.theta, self.epoch, self.bad_epochs = (
                val_loss, theta.clone(), epoch, 0
            )
            return True
        self.bad_epochs += 1
        return False
