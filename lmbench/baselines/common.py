"""What every tuned method returns, and the pieces its fit functions share.

A trainer config (``conf/trainer/<name>.yaml``) has four parts:

* ``params``: fixed settings plus the method's default configuration (trial 0 of the tuning);
* ``space``: the search space, one entry per tuned setting (``lmbench.baselines.tuning``);
* ``budgets``: per-budget overrides of ``params`` (``quick`` makes tests and smoke runs cheap,
  ``full`` is the benchmark and usually overrides nothing);
* ``budget``: which of them applies (``full`` by default).

How many configurations are tried is not a method's business: the top-level ``tuning`` node of
``conf/config.yaml`` gives every method the default plus the same number K of sampled ones.
Selection is on the validation split by ``lmbench.metrics.PRIMARY_METRIC``; the tuning functions
take train and validation arrays only, so the test split cannot influence it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lmbench.core.stopping import TIME_LIMIT
from lmbench.metrics import PRIMARY_METRIC, evaluate_predictions

BUDGETS: tuple[str, ...] = ("full", "quick")
DEFAULT_BUDGET = "full"

InverseTarget = Callable[[np.ndarray], np.ndarray]
Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TrialScore:
    """One tuning trial: its settings, where they came from, validation scores and cost."""

    number: int
    """0 is the default configuration, 1..K the sampled ones, in sampling order."""
    params: dict[str, Any]
    origin: str
    """``default`` (trial 0) or ``sampled``."""
    val_score: float
    """Primary metric on the validation split."""
    val_metrics: dict[str, float]
    fit_time_s: float
    best_iteration: int
    """Boosting rounds kept after early stopping (GBDT) or best epoch (neural methods)."""
    timed_out: bool
    """The fit reached ``tuning.trial_time_limit_s`` and was stopped; the model trained until
    then was scored like any other."""
    epochs: int = 0
    """Epochs run (boosting rounds grown for GBDT; LM's epoch 0, the initial evaluation, not
    counted), the best one included and the ones after it until the stop."""
    stop_reason: str = ""
    """Why the fit stopped (``STOP_REASONS``, or the LM engine's own reason); ``time_limit``
    whenever ``timed_out``."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BaselineResult:
    """The outcome of one method's tuning, the same shape for every method.

    ``predict(x)`` returns class probabilities ``(n, k)`` for classification and ``(n, 1)``
    values for regression, in the units of the targets it was trained on (standardised for
    regression: pass ``inverse_target`` to ``evaluate`` for original units). Two models are kept:
    the selected one (``predict``/``evaluate``) and the default configuration's
    (``default_predict``/``default_evaluate``), so its test score can be reported beside the
    tuned one.
    """

    name: str
    task: str
    primary_metric: str
    best_params: dict[str, Any]
    best_val_score: float
    best_val_metrics: dict[str, float]
    trials: list[TrialScore]
    selected_trial: int
    """``TrialScore.number`` of the selected trial (the first of equal scores)."""
    search_time_s: float
    """Wall time of the whole tuning: every trial's fit and validation scoring."""
    best_fit_time_s: float
    """Wall time of fitting the selected trial alone."""
    model_size: dict[str, int]
    model: Any
    predictor: Predictor = field(repr=False)
    default_predictor: Predictor = field(repr=False)
    history: dict[str, list[float]] = field(default_factory=dict)
    """Per-epoch curves of the selected run (neural methods); empty for GBDTs."""

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    @property
    def n_timed_out(self) -> int:
        return sum(trial.timed_out for trial in self.trials)

    @property
    def default_trial(self) -> TrialScore:
        return self.trials[0]

    @property
    def default_val_score(self) -> float:
        return self.trials[0].val_score

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, k)`` (classification) or values ``(n, 1)`` (regression)."""
        return self.predictor(np.asarray(x, dtype=np.float32))

    def evaluate(
        self, x: np.ndarray, y: np.ndarray, *, inverse_target: InverseTarget | None = None
    ) -> dict[str, float]:
        """``evaluate_predictions`` on ``predict(x)``: how the harness scores the test split."""
        return evaluate_predictions(self.task, y, self.predict(x), inverse_target=inverse_target)

    def default_evaluate(
        self, x: np.ndarray, y: np.ndarray, *, inverse_target: InverseTarget | None = None
    ) -> dict[str, float]:
        """``evaluate`` for the default configuration's model (trial 0)."""
        predictions = self.default_predictor(np.asarray(x, dtype=np.float32))
        return evaluate_predictions(self.task, y, predictions, inverse_target=inverse_target)


class Deadline:
    """A cooperative per-trial time limit: fit loops ask ``expired()`` after each epoch or
    boosting round and stop when it says so; ``hit`` records that they did."""

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self.started = time.perf_counter()
        self.hit = False

    def remaining_s(self) -> float | None:
        """Seconds left (at least a millisecond), or None without a limit."""
        if self.limit_s is None:
            return None
        return max(self.limit_s - (time.perf_counter() - self.started), 1e-3)

    def expired(self) -> bool:
        """True once ``limit_s`` seconds have passed since construction (marks ``hit``)."""
        if self.limit_s is None:
            return False
        if time.perf_counter() - self.started >= self.limit_s:
            self.hit = True
        return self.hit


@dataclass(frozen=True)
class FitOutcome:
    """What fitting one trial yields, before it is scored."""

    model: Any
    predictor: Predictor
    best_iteration: int
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    """Epochs (boosting rounds) run; see ``TrialScore.epochs``."""
    stop_reason: str = ""
    """Why the fit stopped; see ``TrialScore.stop_reason``."""


#: Why a trial's fit stopped, in every method's words (the LM engine adds its own: min_error,
#: min_gradient, mu_max; ``lmbench.core.stopping``): its epoch (boosting-round) cap, patience
#: on the validation loss (GBDT early stopping included), a non-finite validation loss, the
#: reference library's damping ceiling, or the trial's time limit.
STOP_MAX_EPOCHS = "max_epochs"
STOP_PATIENCE = "validation_patience"
STOP_DIVERGED = "diverged"
STOP_DAMPING_MAX = "damping_max"
STOP_TIME_LIMIT = TIME_LIMIT  # the LM engine's own time limit stops with the same reason
STOP_REASONS: tuple[str, ...] = (
    STOP_MAX_EPOCHS, STOP_PATIENCE, STOP_DIVERGED, STOP_DAMPING_MAX, STOP_TIME_LIMIT,
)


def epoch_stop_reason(epochs: int, max_epochs: int, last_val_loss: float | None) -> str:
    """Why an epoch loop with validation patience stopped after ``epochs`` epochs (a time limit
    is recorded by the tuning, which knows whether the deadline was hit): a non-finite last
    validation loss, the cap, else patience."""
    if last_val_loss is not None and not math.isfinite(last_val_loss):
        return STOP_DIVERGED
    return STOP_MAX_EPOCHS if epochs >= max_epochs else STOP_PATIENCE


FitTrial = Callable[[dict[str, Any], Deadline], FitOutcome]


def plain(value: Any) -> Any:
    """A config (dict, OmegaConf DictConfig/ListConfig) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


def budget_params(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` overlaid by ``budgets[budget]``: the fixed settings and the default
    configuration under the selected budget (``budget`` defaults to ``full``)."""
    config = plain(cfg)
    budget = config.get("budget", DEFAULT_BUDGET)
    budgets = config.get("budgets") or {}
    if budget not in budgets:
        raise ValueError(
            f"trainer.budget={budget!r} is not defined; trainer.budgets defines {sorted(budgets)}"
        )
    overrides = budgets[budget] or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"trainer.budgets.{budget} must be a mapping of setting -> value")
    return {**dict(config.get("params") or {}), **overrides}


def check_network_settings(
    cfg: Mapping[str, Any], fixed_network: bool, network_keys: Sequence[str]
) -> None:
    """A caller's ``model_factory`` fixes the network, so the trainer config must then not set
    or search ``network_keys`` (Adam's and LM's network settings); the error names them."""
    named = sorted((set(budget_params(cfg)) | set(cfg.get("space") or {})) & set(network_keys))
    if fixed_network and named:
        raise ValueError(
            f"model_factory fixes the network, so trainer.params / trainer.space must not set "
            f"{named}; drop them, or pass model_factory=None to build (and tune) the MLP "
            "from the config"
        )


def check_split(
    task: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray
) -> None:
    """Fail early, naming the array, on shape mismatches between features and targets."""
    if task not in PRIMARY_METRIC:
        raise ValueError(f"task must be one of {tuple(PRIMARY_METRIC)}, got {task!r}")
    for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
        if np.ndim(x) != 2:
            raise ValueError(f"x_{split} must be 2-D (n, features), got shape {np.shape(x)}")
        if np.shape(x)[0] != np.shape(y)[0]:
            raise ValueError(
                f"x_{split} has {np.shape(x)[0]} rows but y_{split} has {np.shape(y)[0]}"
            )
    if np.shape(x_train)[1] != np.shape(x_val)[1]:
        raise ValueError("x_train and x_val have different numbers of features")
