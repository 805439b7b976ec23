"""When LM stops: the convergence tests of MINPACK and Ceres, the rules users know from MATLAB's
trainlm plus the seed's ``min_error``, the stop reasons, and the best-validation weights kept for
``patience``.

Scales, stated once: the step minimises the objective F = E + lambda E_W, a SUM over the rows
(E = 1/2 sum r^2 for mse; ``TrainingHistory.objective`` and ``penalised_objective``); the
convergence tests are relative to F, so they read the same on any number of rows. ``min_error``
compares the reported loss (the user's ``loss_fn``, a MEAN over rows: ``TrainingHistory.loss``,
or ``val_loss`` when there is validation data); ``min_gradient`` compares ||grad F||_2 of the
sum, the history's ``gradient_norm``.

Stop reasons: ``converged_ftol``, ``converged_xtol``, ``converged_gtol`` (converged: the
answer is a local minimum to the stated tolerance), ``min_error``, ``min_gradient``,
``mu_max`` (no damped step makes progress), ``validation_patience``, ``time_limit``,
``callback``, ``max_epochs`` and ``interrupted``.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from lmbench.core.sources import RowSource


@dataclass(frozen=True)
class StoppingRules:
    """When to stop (MATLAB trainlm's rules plus the seed's ``min_error``).

    min_error: stop when the loss falls to this value, measured on the validation set when one is
    given (as the seed does), else on the training set; None disables.
    max_epochs: epochs of LM steps (epoch 0 is the initial evaluation).
    min_gradient: stop when ||grad F||_2 = ||J^T r + lambda w||_2 of the summed objective falls
        below it (0 disables).
    mu_max: stop when mu grows beyond it (no step can make progress).
    patience: stop after this many epochs without a new best validation loss, and restore the
    best-validation weights (None disables; needs validation data).
    min_epochs: epochs trained before ``min_error`` is checked (the seed functions use 1: the
    original always trains one epoch, even from a start already below ``min_error``).
    ftol: converged when an accepted step's actual and predicted reductions of F are both at
        most ``ftol * F`` and the gain ratio is at most 2 (MINPACK's ``ftol``; scipy's default).
    xtol: converged when every weight's step is at most ``xtol * (|theta_j| + xtol)`` (GSL's
        ``xtol`` test, component by component, so that a weight a million times smaller than
        another still has to settle). As in MINPACK the test follows the trial: the tiny step is
        evaluated and kept if the damping rule accepts it, then the run stops.
    gtol: converged when the scaled gradient, the largest cosine between the residuals and a
        column of J (max_j |g_j| / (||J_j|| ||r||), MINPACK's ``gtol``), is at most ``gtol``.
    Each of the three is 0 to disable. They test full-batch steps only: mini-batch LM, whose
    steps each see one batch, never stops on them. ftol and xtol skip a trial that the damping
    holds back (``GaussNewtonSystem.held_back``) while the model agrees (gain ratio > 1/2) or
    while an undamped step could still gain more than ``ftol * F`` (``judges_trial``): its
    step is short because of mu, not because the problem is solved.
    time_limit_s: stop once the fit has run this many seconds (wall clock; MATLAB trainlm's
        ``time``, Ceres' ``max_solver_time_in_seconds``); None disables. It is checked after
        each epoch and, in one process, inside it too: between the Jacobian chunks that build
        the system and between damping trials, so that one epoch of a large network cannot
        overrun it by minutes. An epoch cut short is dropped: the weights stay where the last
        finished epoch left them. Data-parallel workers check it at an epoch's end only, all
        together.
    """

    max_epochs: int = 10
    min_error: float | None = 1e-2
    min_gradient: float = 0.0
    mu_max: float = 1e10
    patience: int | None = None
    min_epochs: int = 0
    ftol: float = 1e-8
    xtol: float = 1e-8
    gtol: float = 1e-8
    time_limit_s: float | None = None

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
        for name in CONVERGENCE_TOLERANCES:
            value = getattr(self, name)
            if not (0.0 <= value < 1.0):  # also refuses NaN
                raise ValueError(
                    f"{name} must be a relative tolerance in [0, 1) (0 disables; 1e-8 is the "
                    f"default, as in scipy.optimize.least_squares), got {value!r}"
                )
        if self.time_limit_s is not None and not self.time_limit_s > 0:  # also refuses NaN
            raise ValueError(
                f"time_limit_s must be > 0 seconds (or None for no limit), got "
                f"{self.time_limit_s!r}"
            )

    def reduction_converged(self, actual: float, predicted: float, objective: float) -> bool:
        """MINPACK's ftol test on an accepted step from a point where F = ``objective``."""
        if self.ftol <= 0 or not objective > 0:
            return False
        bound = self.ftol * objective
        return abs(actual) <= bound and predicted <= bound and actual <= 2.0 * predicted

    def judges_trial(self, gain_ratio: float, held_back: bool, undamped_reduction: float,
                     objective: float) -> bool:
        """Whether ftol and xtol may read a trial from a point where F = ``objective``. A step
        the damping holds back (``GaussNewtonSystem.held_back``) is short because of mu, so it
        is read only where the model disagrees (gain ratio <= 1/2, as at a minimum where
        rounding rejects every trial) and even an undamped step would gain at most ftol * F
        (by ``undamped_reduction``): a plateau is not a minimum."""
        if not held_back:
            return True
        return not gain_ratio > 0.5 and undamped_reduction <= self.ftol * objective

    def step_converged(self, step: torch.Tensor, theta: torch.Tensor) -> bool:
        """The xtol test: every weight's step is negligible beside that weight."""
        if self.xtol <= 0:
            return False
        bound = self.xtol * (theta.abs() + self.xtol)
        return bool((step.to(theta.dtype).abs() <= bound).all())

    def trial_converged(self, step: torch.Tensor, theta: torch.Tensor, actual: float,
                        predicted: float, objective: float) -> str | None:
        """The convergence test an evaluated damping trial from ``theta`` meets, kept or not:
        ``converged_xtol`` when its step is negligible (as MINPACK, after the trial: the tiny
        step is still tried, and kept when it gains), else ``converged_ftol`` when neither the
        actual nor the predicted reduction of F exceeds ``ftol * F`` (MINPACK tests every
        trial so); None otherwise."""
        if not math.isfinite(actual):
            return None
        if self.step_converged(step, theta):
            return CONVERGED_XTOL
        return CONVERGED_FTOL if self.reduction_converged(actual, predicted, objective) else None

    def gradient_converged(self, scaled_gradient: float) -> bool:
        """The gtol test on max_j |g_j| / (||J_j|| ||r||) (0 at an exact zero residual)."""
        return scaled_gradient <= self.gtol

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
        epoch: int | None = None, converged: str | None = None,
    ) -> str | None:
        """Why training stops after this epoch, or None to go on (first matching rule);
        ``converged`` is the convergence test the epoch's step met, if any."""
        if converged is not None:
            return converged
        if self.reached_min_error(loss, val_loss, epoch):
            return "min_error"
        if gradient_norm < self.min_gradient:
            return "min_gradient"
        if self.mu_exhausted(mu):
            return "mu_max"
        if self.patience is not None and bad_epochs >= self.patience:
            return "validation_patience"
        return None


#: The stop reason of ``StoppingRules.time_limit_s`` (the tuning's trials use the same name).
TIME_LIMIT = "time_limit"


class TimeLimitReached(Exception):
    """Raised inside an epoch once ``StoppingRules.time_limit_s`` has run out; the trainer
    drops that epoch and stops with ``time_limit``."""


@dataclass
class FitClock:
    """One fit's wall clock against ``StoppingRules.time_limit_s``, started with the fit.
    ``inside_epochs`` is False under data parallelism, where every worker must stop at the same
    epoch's end."""

    limit_s: float | None = None
    inside_epochs: bool = True
    started: float = field(default_factory=time.perf_counter)

    def expired(self) -> bool:
        """True once the limit has passed (never without one)."""
        return self.limit_s is not None and time.perf_counter() - self.started >= self.limit_s

    def check(self) -> None:
        """Inside an epoch: raise ``TimeLimitReached`` once the limit has passed."""
        if self.inside_epochs and self.expired():
            raise TimeLimitReached

    def timed_chunks(self, source: RowSource) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``source``'s chunks, checked against the limit before each one."""
        for chunk in source.chunks():
            self.check()
            yield chunk


def scaled_gradient(gradient: torch.Tensor, column_norms: torch.Tensor,
                    residual_norm: float) -> float:
    """MINPACK's gtol measure max_j |g_j| / (||J_j|| ||r||): the largest cosine between the
    residuals and a column of J, over the columns that are not zero (as MINPACK); 0 at a zero
    residual or when every column is zero."""
    used = column_norms > 0
    if residual_norm == 0.0 or not bool(used.any()):
        return 0.0
    return float((gradient[used].abs() / column_norms[used]).max()) / residual_norm


def frozen_weights(theta: torch.Tensor, column_norms: torch.Tensor,
                   residual_norm: float) -> torch.Tensor:
    """The weights frozen below rounding: changing one by its own size (|theta_j| ||J_j||)
    would move the residuals by less than ``theta``'s rounding of ||r|| (an exponential
    saturated far out): no local test, MINPACK's included, can see a direction there."""
    eps = torch.finfo(theta.dtype).eps
    return theta.abs().to(column_norms.dtype) * column_norms <= eps * residual_norm


#: The convergence tests' tolerances and the stop reason each one gives.
CONVERGENCE_TOLERANCES = ("ftol", "xtol", "gtol")
CONVERGED_FTOL, CONVERGED_XTOL, CONVERGED_GTOL = (f"converged_{n}" for n in CONVERGENCE_TOLERANCES)


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
