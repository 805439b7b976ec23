"""What every baseline returns, and the grid-search loop they share.

A trainer config (``conf/trainer/<name>.yaml``) has three parts:

* ``params``: fixed settings used at every grid point;
* ``grid``: one grid per budget, each a mapping ``setting -> list of values``; the search runs the
  Cartesian product in config order, and a grid entry overrides the same key in ``params``;
* ``budget``: which grid to use, ``full`` (the benchmark) or ``quick`` (tests, CI, smoke runs).

Selection is on the validation split by ``lmbench.metrics.PRIMARY_METRIC``; the search functions
take train and validation arrays only, so the test split cannot influence it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lmbench.metrics import PRIMARY_METRIC, evaluate_predictions, is_better, primary_score

BUDGETS: tuple[str, ...] = ("full", "quick")
DEFAULT_BUDGET = "full"

InverseTarget = Callable[[np.ndarray], np.ndarray]
Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GridPointScore:
    """One grid point: its settings, validation scores and cost."""

    params: dict[str, Any]
    val_score: float
    """Primary metric on the validation split."""
    val_metrics: dict[str, float]
    fit_time_s: float
    best_iteration: int
    """Boosting rounds kept after early stopping (GBDT) or best epoch, 1-based (Adam)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BaselineResult:
    """The outcome of one baseline's grid search, the same shape for every baseline.

    ``predict(x)`` returns class probabilities ``(n, k)`` for classification and ``(n, 1)``
    values for regression, in the units of the targets it was trained on (standardised for
    regression: pass ``inverse_target`` to ``evaluate`` for original units).
    """

    name: str
    task: str
    primary_metric: str
    best_params: dict[str, Any]
    best_val_score: float
    best_val_metrics: dict[str, float]
    grid_scores: list[GridPointScore]
    grid_size: int
    search_time_s: float
    """Wall time of the whole search: every grid point's fit and validation scoring."""
    best_fit_time_s: float
    """Wall time of fitting the selected grid point alone."""
    model_size: dict[str, int]
    model: Any
    predictor: Predictor = field(repr=False)
    history: dict[str, list[float]] = field(default_factory=dict)
    """Per-epoch curves of the selected run (Adam); empty for GBDTs."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, k)`` (classification) or values ``(n, 1)`` (regression)."""
        return self.predictor(np.asarray(x, dtype=np.float32))

    def evaluate(
        self, x: np.ndarray, y: np.ndarray, *, inverse_target: InverseTarget | None = None
    ) -> dict[str, float]:
        """``evaluate_predictions`` on ``predict(x)``: how the harness scores the test split."""
        return evaluate_predictions(self.task, y, self.predict(x), inverse_target=inverse_target)


@dataclass(frozen=True)
class FitOutcome:
    """What fitting one grid point yields, before it is scored."""

    model: Any
    predictor: Predictor
    best_iteration: int
    history: dict[str, list[float]] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """A config (dict, OmegaConf DictConfig/ListConfig) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


def grid_points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The settings of every grid point: ``params`` overlaid by each combination of the grid.

    The grid is ``cfg["grid"][cfg["budget"]]`` (budget defaults to ``full``).
    """
    config = plain(cfg)
    budget = config.get("budget", DEFAULT_BUDGET)
    grids = config.get("grid") or {}
    if budget not in grids:
        raise ValueError(
            f"trainer.budget={budget!r} has no grid; trainer.grid defines {sorted(grids)}"
        )
    grid = grids[budget] or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"trainer.grid.{budget}.{key} must be a non-empty list")
    fixed = dict(config.get("params") or {})
    keys = list(grid)
    combos = itertools.product(*(grid[k] for k in keys))
    return [{**fixed, **dict(zip(keys, combo, strict=True))} for combo in combos]


def run_grid_search(
    name: str,
    task: str,
    points: list[dict[str, Any]],
    fit_point: Callable[[dict[str, Any]], FitOutcome],
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    inverse_target: InverseTarget | None,
    model_size: Callable[[FitOutcome], dict[str, int]],
) -> BaselineResult:
    """Fit every grid point, score it on validation, keep the best (first one on ties).

    Only the best point's model is kept in memory. No refit happens afterwards: the kept model is
    exactly the one that was scored on validation.
    """
    if not points:
        raise ValueError(f"{name}: the grid is empty")
    metric_name = PRIMARY_METRIC[task][0]
    scores: list[GridPointScore] = []
    best: tuple[GridPointScore, FitOutcome] | None = None
    start = time.perf_counter()
    for point in points:
        fit_start = time.perf_counter()
        outcome = fit_point(dict(point))
        fit_time = time.perf_counter() - fit_start
        metrics = evaluate_predictions(
            task, y_val, outcome.predictor(x_val), inverse_target=inverse_target
        )
        score = GridPointScore(
            params=dict(point),
            val_score=primary_score(task, metrics),
            val_metrics=metrics,
            fit_time_s=fit_time,
            best_iteration=outcome.best_iteration,
        )
        scores.append(score)
        if best is None or is_better(task, score.val_score, best[0].val_score):
            best = (score, outcome)
    search_time = time.perf_counter() - start
    assert best is not None
    best_score, best_outcome = best
    return BaselineResult(
        name=name,
        task=task,
        primary_metric=metric_name,
        best_params=dict(best_score.params),
        best_val_score=best_score.val_score,
        best_val_metrics=dict(best_score.val_metrics),
        grid_scores=scores,
        grid_size=len(points),
        search_time_s=search_time,
        best_fit_time_s=best_score.fit_time_s,
        model_size=model_size(best_outcome),
        model=best_outcome.model,
        predictor=best_outcome.predictor,
        history=best_outcome.history,
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
