"""What a training run produced, epoch by epoch, and its I/O in the seed's pickle format.

Index 0 of every per-epoch list holds the state before the first step (the seed's convention:
loss_history[0] is the initial loss, mu_history[0] is mu_init, epoch_times[0] is 0.0).
"""

from __future__ import annotations

import math
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: What a weight penalty adds to the history (logged only when one was in force).
REGULARIZATION_SERIES = (
    "penalised_objective", "weight_decay", "alpha", "beta", "gamma", "weight_energy",
)
#: Per-epoch series of a history, in the order they are recorded.
SERIES = (
    "loss",
    "val_loss",
    "mu",
    "epoch_time",
    "trials",
    "accepted",
    "gradient_norm",
    "gain_ratio",
    "objective",
    *REGULARIZATION_SERIES,
    "time_jacobian",
    "time_system",
    "time_solve",
    "time_evaluate",
)


@dataclass
class TrainingHistory:
    """Per-epoch records of an LM run (Ceres-style summary) plus how and why it stopped.

    loss: training loss by the user's loss_fn; val_loss: validation loss (NaN without one);
    mu: damping after the epoch; epoch_time: seconds; trials: damping trials tried;
    accepted: whether the epoch moved the weights; gradient_norm: ||J^T r||_2 at the start of the
    epoch; gain_ratio: actual/predicted reduction of the accepted trial (NaN if none);
    objective: the data objective E (1/2 ||r||^2 for mse); penalised_objective: F = E + lambda
    E_W, what the damping trials minimise (``lmbench.core.regularization``); weight_decay:
    lambda; alpha, beta: F's Bayesian form beta E + alpha E_W (alpha = lambda, beta = 1 for a
    fixed weight decay); gamma: the effective number of parameters (Bayesian regularisation
    only, else NaN); weight_energy: E_W = 1/2 ||w||^2; time_*: the split of epoch_time between
    Jacobians, system assembly (J^T J accumulation, cache writes, all-reduce), solves and loss
    evaluations.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    mu: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    trials: list[int] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    gradient_norm: list[float] = field(default_factory=list)
    gain_ratio: list[float] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)
    penalised_objective: list[float] = field(default_factory=list)
    weight_decay: list[float] = field(default_factory=list)
    alpha: list[float] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)
    gamma: list[float] = field(default_factory=list)
    weight_energy: list[float] = field(default_factory=list)
    time_jacobian: list[float] = field(default_factory=list)
    time_system: list[float] = field(default_factory=list)
    time_solve: list[float] = field(default_factory=list)
    time_evaluate: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    stop_reason: str = "not_started"
    best_epoch: int | None = None
    form: str = ""
    jacobian_mode: str = ""
    n_params: int = 0  # P, the trained weights (what gamma is measured against)

    @property
    def epochs(self) -> int:
        """Number of completed epochs (entries after the initial one)."""
        return max(len(self.loss) - 1, 0)

    @property
    def regularized(self) -> bool:
        """Whether a weight penalty was in force (weight decay or Bayesian) in any epoch."""
        return any(v > 0 for v in self.weight_decay if not math.isnan(v))

    def regularization_series(self) -> dict[str, list[float]]:
        """The penalty's per-epoch series (``REGULARIZATION_SERIES``), empty for plain LM."""
        if not self.regularized:
            return {}
        return {name: [float(v) for v in getattr(self, name)] for name in REGULARIZATION_SERIES}

    @property
    def has_validation(self) -> bool:
        return any(not math.isnan(v) for v in self.val_loss)

    def record(self, **values: Any) -> None:
        """Append one epoch's values; series not given get NaN (or 0 for counts)."""
        for name in SERIES:
            default: Any = 0 if name in ("trials",) else (False if name == "accepted" else math.nan)
            getattr(self, name).append(values.pop(name, default))
        if values:
            raise TypeError(f"unknown history series: {sorted(values)}")

    def to_seed_tuple(self) -> tuple[list[float], list[float], list[float], list[float]]:
        """(loss_history, val_history, mu_history, epoch_times) as the seed returned them.

        val_history is empty when training had no validation set.
        """
        val = list(self.val_loss) if self.has_validation else []
        return list(self.loss), val, list(self.mu), list(self.epoch_time)

    def to_seed_dict(self) -> dict[str, list[float]]:
        """The seed's pickle payload: {"loss", "val", "mu", "time"}."""
        loss, val, mu, time = self.to_seed_tuple()
        return {"loss": loss, "val": val, "mu": mu, "time": time}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingHistory:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        epochs = len(known.get("loss", []))
        for name in SERIES:  # a series an older history lacks reads as NaN epoch by epoch
            if name not in known:
                known[name] = [math.nan] * epochs
        return cls(**known)

    def save_pickle(self, path: str | Path) -> Path:
        """Write the seed's pickle format, readable by ``plot_train_report``."""
        path = Path(path)
        with path.open("wb") as fh:
            pickle.dump(self.to_seed_dict(), fh)
        return path
