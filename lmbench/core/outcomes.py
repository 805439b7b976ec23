"""What one LM step's damping trials produced, and what an epoch's steps add up to."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lmbench.core.system import GaussNewtonSystem


@dataclass
class DampedStep:
    """The outcome of one LM step's damping trials (weights unchanged when none was kept);
    ``converged``: the convergence test (``converged_ftol``, ``converged_xtol``) it met."""

    theta: torch.Tensor
    objective: float
    loss: float
    trials: int
    accepted: bool
    gain_ratio: float = math.nan
    converged: str | None = None


@dataclass
class EpochTally:
    """What an epoch's LM steps add up to in the history (one step full-batch, one per batch
    in mini-batch LM)."""

    form: str = ""
    trials: int = 0
    accepted: int = 0
    gradient_norm: float = 0.0
    gain_ratio: float = math.nan
    converged: str | None = None

    def add(self, system: GaussNewtonSystem, step: DampedStep) -> None:
        self.form = system.form
        self.gradient_norm = max(self.gradient_norm, system.gradient_norm)
        self.trials += step.trials
        self.converged = step.converged or self.converged
        if step.accepted:
            self.accepted += 1
            self.gain_ratio = step.gain_ratio
