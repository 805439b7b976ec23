"""When LM stops: the rules users know from MATLAB's trainlm plus the seed's ``min_error``, the
stop reasons, and the best-validation weights kept for ``patience``."""

from __future__ import annotations

import math
import numbers
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
    min_epochs: epochs trained before ``min_error`` is checked (the seed functions use 1: the
    original always trains one epoch, even from a start already below ``min_error``).
    """

    max_epochs: int = 10
    min_error: float | None = 1e-2
    min_gradient: float = 0.0
    mu_max: float = 1e10
    patience: int | None = None
    min_epochs: int = 0

    def __post_init__(self) -> None:
        for name in ("max_epochs", "min_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(
                    f"{name} must be a whole number >= 0 (epochs of LM steps), got {value!r}; "
                    f"pass e.g. {name}={_whole(value)}"
                )
        if self.min_error is not None and not (self.min_error >= 0):  # also refuses NaN
            raise ValueError(
                f"min_error must be a loss >= 0 to stop at (or None to disable), got "
                f"{self.min_error!r}"
            )
        if not self.mu_max > 0:
            raise ValueError(f"mu_max must be > 0 (use math.inf for no limit), got {self.mu_max}")
        if math.isnan(self.min_gradient) or self.min_gradient < 0:
            raise ValueError(f"min_gradient must be >= 0 (0 disables), got {self.min_gradient}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")

    def reached_min_error(self, loss: float, val_loss: float, epoch: int | None = None) -> bool:
        """The seed's goal: the validation loss when there is one, else the training loss
        (never before ``min_epochs`` epochs, when ``epoch`` is given)."""
        if self.min_error is None or (epoch is not None and epoch < self.min_epochs):
            return False
        watched = val_loss if not math.isnan(val_loss) else loss
        return watched <= self.min_error

    def mu_exhausted(self, mu: float) -> bool:
        """mu has grown past ``mu_max``: no damped step can make progress."""
        return mu > self.mu_max

    def stop_reason(
        self, loss: float, val_loss: float, gradient_norm: float, mu: float, bad_epochs: int,
        epoch: int | None = None,
    ) -> str | None:
        """Why training stops after this epoch, or None to go on (first matching rule)."""
        if self.reached_min_error(loss, val_loss, epoch):
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


def _whole(value: object) -> int:
    try:
        return max(int(value), 0)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 10
