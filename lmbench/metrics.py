"""Shared evaluation metrics: one function every trainer (LM, XGBoost, CatBoost, Adam) is scored by.

Classification targets may be one-hot (the data contract: binary -> 2 columns) or integer labels;
predictions are class scores of shape ``(n, k)`` (probabilities from a softmax head or
``predict_proba``) or, for binary tasks, a 1-D positive-class probability. Regression targets and
predictions are ``(n,)`` or ``(n, 1)``; pass ``inverse_target`` to report metrics in original units.

``PRIMARY_METRIC`` is the single number model selection (tuning, validation stopping) and
the comparison table use. Its choice per task:

* ``binary -> roc_auc (max)``: threshold-free and insensitive to class imbalance, so it compares
  an MSE-trained network (uncalibrated outputs) fairly with calibrated GBDT probabilities.
* ``multiclass -> accuracy (max)``: the usual headline number on multiclass tabular benchmarks;
  macro OvR AUC is undefined as soon as a class is missing from a split.
* ``regression -> rmse (min)``: the square root of the objective every trainer minimises (MSE),
  reported in original target units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from sklearn import metrics as skm

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")

PRIMARY_METRIC: dict[str, tuple[str, Literal["max", "min"]]] = {
    "binary": ("roc_auc", "max"),
    "multiclass": ("accuracy", "max"),
    "regression": ("rmse", "min"),
}

CLASSIFICATION_METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "roc_auc",
    "log_loss",
)
REGRESSION_METRICS: tuple[str, ...] = ("rmse", "mae", "r2")

# Probabilities are clipped to [PROBA_EPS, 1] before log_loss so a network with a linear or
# MSE-trained head (outputs slightly negative or not summing to one) still gets a finite loss.
PROBA_EPS = 1e-15


def evaluate_predictions(
    task: str,
    y_true: np.ndarray,
    y_pred_or_proba: np.ndarray,
    *,
    inverse_target: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, float]:
    """Score predictions for ``task``; returns the metric names listed in this module's docstring.

    Classification: ``accuracy``, ``balanced_accuracy``, ``f1_macro`` (over the classes present in
    ``y_true`` or predicted), ``roc_auc`` (binary: AUC of the positive-class score; multiclass:
    one-vs-rest macro average, NaN when any class is absent from ``y_true``) and ``log_loss`` (on
    probabilities clipped to ``[1e-15, 1]`` and renormalised per row).
    Regression: ``rmse``, ``mae``, ``r2``, computed after ``inverse_target`` (applied to ``(n, 1)``
    arrays of both targets and predictions) when given.

    Predictions containing NaN or inf (a diverged network) score NaN on every metric, so model
    selection never picks them and the caller does not crash.
    """
    _check_task(task)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred_or_proba, dtype=np.float64)
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"y_true has {y_true.shape[0]} rows but predictions have {y_pred.shape[0]}"
        )
    if task == "regression":
        return _regression_metrics(y_true, y_pred, inverse_target)
    return _classification_metrics(task, y_true, y_pred)


def primary_score(task: str, metrics: dict[str, float]) -> float:
    """The value of ``PRIMARY_METRIC[task]`` in a dict returned by ``evaluate_predictions``."""
    _check_task(task)
    return metrics[PRIMARY_METRIC[task][0]]


def is_better(task: str, candidate: float, incumbent: float) -> bool:
    """Whether ``candidate`` strictly beats ``incumbent`` on the task's primary metric.

    NaN never beats anything; anything finite beats NaN. Ties keep the incumbent, so a tuning
    keeps the first of equally good trials (the default configuration before sampled ones).
    """
    _check_task(task)
    if math.isnan(candidate):
        return False
    if math.isnan(incumbent):
        return True
    direction = PRIMARY_METRIC[task][1]
    return candidate > incumbent if direction == "max" else candidate < incumbent


def to_labels(y: np.ndarray) -> np.ndarray:
    """Integer class labels from one-hot ``(n, k>1)`` rows or from labels ``(n,)`` / ``(n, 1)``."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1).astype(np.int64)
    return y.reshape(-1).astype(np.int64)


def n_classes_of(task: str, y: np.ndarray) -> int:
    """Number of classes implied by a target array (one-hot width, else max label + 1)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return int(y.shape[1])
    if task == "binary":
        return 2
    return int(to_labels(y).max()) + 1


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _nan_metrics(names: tuple[str, ...]) -> dict[str, float]:
    return {name: float("nan") for name in names}


def _as_class_scores(task: str, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Predictions as an ``(n, k)`` score matrix (a 1-D binary input is the positive class)."""
    if y_pred.ndim == 1 or (y_pred.ndim == 2 and y_pred.shape[1] == 1):
        if task != "binary":
            raise ValueError("multiclass predictions must be (n, n_classes) scores")
        positive = y_pred.reshape(-1)
        return np.column_stack([1.0 - positive, positive])
    if y_pred.shape[1] != n_classes:
        raise ValueError(
            f"predictions have {y_pred.shape[1]} columns but targets imply {n_classes} classes"
        )
    return y_pred


def _classification_metrics(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    n_classes = max(n_classes_of(task, y_true), y_pred.shape[1] if y_pred.ndim == 2 else 2)
    if task == "binary" and n_classes != 2:
        raise ValueError(f"binary task but targets/predictions imply {n_classes} classes")
    labels = to_labels(y_true)
    if not np.all(np.isfinite(y_pred)):
        return _nan_metrics(CLASSIFICATION_METRICS)
    scores = _as_class_scores(task, y_pred, n_classes)
    predicted = np.argmax(scores, axis=1)
    all_classes = np.arange(n_classes)

    proba = np.clip(scores, PROBA_EPS, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return {
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "balanced_accuracy": _balanced_accuracy(labels, predicted),
        "f1_macro": float(skm.f1_score(labels, predicted, average="macro", zero_division=0)),
        "roc_auc": _roc_auc(labels, scores, n_classes),
        "log_loss": float(skm.log_loss(labels, proba, labels=all_classes)),
    }


def _balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels`` (sklearn's definition).

    Computed here rather than with ``balanced_accuracy_score`` because sklearn warns whenever a
    prediction names a class absent from ``labels``, which is routine on small validation splits.
    """
    recalls = [float(np.mean(predicted[labels == c] == c)) for c in np.unique(labels)]
    return float(np.mean(recalls))


def _roc_auc(labels: np.ndarray, scores: np.ndarray, n_classes: int) -> float:
    """Binary AUC of the positive-class score, or one-vs-rest macro AUC; NaN when undefined.

    The OvR average is computed class by class (equal to sklearn's ``multi_class="ovr"`` on
    probabilities) so that score rows need not sum to one, as with an MSE-trained linear head.
    """
    present = np.unique(labels)
    if n_classes == 2:
        if present.size < 2:
            return float("nan")
        return float(skm.roc_auc_score(labels, scores[:, 1]))
    if present.size < n_classes:
        return float("nan")
    per_class = [skm.roc_auc_score(labels == c, scores[:, c]) for c in range(n_classes)]
    return float(np.mean(per_class))


def _regression_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    inverse_target: Callable[[np.ndarray], np.ndarray] | None,
) -> dict[str, float]:
    for name, arr in (("y_true", y_true), ("predictions", y_pred)):
        if arr.ndim == 2 and arr.shape[1] != 1:
            raise ValueError(f"regression {name} must have one column, got shape {arr.shape}")
    truth = y_true.astype(np.float64).reshape(-1, 1)
    pred = y_pred.reshape(-1, 1)
    if not np.all(np.isfinite(pred)):
        return _nan_metrics(REGRESSION_METRICS)
    if inverse_target is not None:
        truth = np.asarray(inverse_target(truth), dtype=np.float64)
        pred = np.asarray(inverse_target(pred), dtype=np.float64)
    truth, pred = truth.reshape(-1), pred.reshape(-1)
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(truth, pred))),
        "mae": float(skm.mean_absolute_error(truth, pred)),
        "r2": float(skm.r2_score(truth, pred)),
    }
