"""lmbench.metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lmbench.metrics import (
    CLASSIFICATION_METRICS,
    PRIMARY_METRIC,
    REGRESSION_METRICS,
    evaluate_predictions,
    is_better,
    primary_score,
)

# Binary: truth [0, 0, 0, 1, 1], positive-class probability below -> predicted [0, 1, 0, 0, 1].
BINARY_LABELS = np.array([0, 0, 0, 1, 1])
BINARY_POSITIVE = np.array([0.1, 0.6, 0.2, 0.35, 0.8])
BINARY_EXPECTED = {
    "accuracy": 3 / 5,
    # recall: class 0 -> 2/3, class 1 -> 1/2
    "balanced_accuracy": (2 / 3 + 1 / 2) / 2,
    # class 0: tp 2, fp 1, fn 1 -> 4/6; class 1: tp 1, fp 1, fn 1 -> 2/4
    "f1_macro": (4 / 6 + 2 / 4) / 2,
    # positives {0.35, 0.8} vs negatives {0.1, 0.6, 0.2}: 2 + 3 of 6 pairs ranked right
    "roc_auc": 5 / 6,
    "log_loss": -(math.log(0.9) + math.log(0.4) + math.log(0.8) + math.log(0.35) + math.log(0.8))
    / 5,
}

# Multiclass: truth [0, 1, 2, 2] -> predicted [0, 1, 1, 2].
MULTI_LABELS = np.array([0, 1, 2, 2])
MULTI_PROBA = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
MULTI_EXPECTED = {
    "accuracy": 3 / 4,
    "balanced_accuracy": (1 + 1 + 1 / 2) / 3,
    # class 0: 1; class 1: tp 1, fp 1 -> 2/3; class 2: tp 1, fn 1 -> 2/3
    "f1_macro": (1 + 2 / 3 + 2 / 3) / 3,
    # OvR: class 0 -> 1; class 1: 0.5 vs {0.2, 0.6, 0.2} -> 2/3;
    # class 2: {0.3, 0.6} vs {0.1, 0.3} -> (1 + 0.5 + 2) / 4 (a tie counts half)
    "roc_auc": (1 + 2 / 3 + 3.5 / 4) / 3,
    "log_loss": -(math.log(0.7) + math.log(0.5) + math.log(0.3) + math.log(0.6)) / 4,
}


def _assert_metrics(got: dict[str, float], expected: dict[str, float]) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-6), name  # float32 inputs


def test_binary_metrics_match_hand_computed_values_for_one_hot_targets() -> None:
    one_hot = np.eye(2, dtype=np.float32)[BINARY_LABELS]
    proba = np.column_stack([1 - BINARY_POSITIVE, BINARY_POSITIVE]).astype(np.float32)
    got = evaluate_predictions("binary", one_hot, proba)
    _assert_metrics(got, BINARY_EXPECTED)
    assert tuple(got) == CLASSIFICATION_METRICS


def test_binary_metrics_accept_labels_and_positive_class_vector() -> None:
    got = evaluate_predictions("binary", BINARY_LABELS, BINARY_POSITIVE)
    _assert_metrics(got, BINARY_EXPECTED)


def test_multiclass_metrics_match_hand_computed_values() -> None:
    got = evaluate_predictions("multiclass", np.eye(3)[MULTI_LABELS], MULTI_PROBA)
    _assert_metrics(got, MULTI_EXPECTED)
    reference = roc_auc_score(MULTI_LABELS, MULTI_PROBA, multi_class="ovr", average="macro")
    assert got["roc_auc"] == pytest.approx(reference)


def test_binary_auc_is_nan_when_a_class_is_absent_and_nothing_crashes() -> None:
    got = evaluate_predictions("binary", np.zeros(4, dtype=int), [0.1, 0.7, 0.2, 0.3])
    assert math.isnan(got["roc_auc"])
    assert got["accuracy"] == pytest.approx(3 / 4)
    assert math.isfinite(got["log_loss"])


def test_multiclass_auc_is_nan_when_a_class_is_absent_but_log_loss_is_defined() -> None:
    labels = np.array([0, 1, 1, 0])  # class 2 never occurs
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]])
    got = evaluate_predictions("multiclass", np.eye(3)[labels], proba)
    assert math.isnan(got["roc_auc"])
    expected_log_loss = -(math.log(0.8) + math.log(0.8) + math.log(0.3) + math.log(0.6)) / 4
    assert got["log_loss"] == pytest.approx(expected_log_loss)
    assert got["accuracy"] == pytest.approx(3 / 4)


def test_unnormalised_scores_from_an_mse_head_get_finite_metrics() -> None:
    scores = np.array([[1.1, -0.1], [0.2, 0.9], [0.6, 0.5], [-0.2, 1.3]])
    got = evaluate_predictions("binary", np.array([0, 1, 1, 1]), scores)
    assert all(math.isfinite(v) for v in got.values())
    assert got["accuracy"] == pytest.approx(3 / 4)
    # clipped to [1e-15, 1] and renormalised: row 0 -> [1, 1e-15], so p(true) = 1.
    assert got["log_loss"] > 0


def test_regression_metrics_match_hand_computed_values() -> None:
    truth = np.array([[1.0], [2.0], [3.0], [4.0]], dtype=np.float32)
    pred = np.array([1.5, 2.0, 2.0, 5.0])  # errors 0.5, 0, -1, 1
    got = evaluate_predictions("regression", truth, pred)
    assert tuple(got) == REGRESSION_METRICS
    assert got["rmse"] == pytest.approx(math.sqrt(2.25 / 4))
    assert got["mae"] == pytest.approx(2.5 / 4)
    assert got["r2"] == pytest.approx(1 - 2.25 / 5.0)


def test_regression_metrics_are_reported_in_original_units() -> None:
    truth = np.array([[1.0], [2.0], [3.0], [4.0]])
    pred = np.array([[1.5], [2.0], [2.0], [5.0]])
    got = evaluate_predictions("regression", truth, pred, inverse_target=lambda a: a * 10 + 3)
    assert got["rmse"] == pytest.approx(10 * math.sqrt(2.25 / 4))
    assert got["mae"] == pytest.approx(10 * 2.5 / 4)
    assert got["r2"] == pytest.approx(1 - 2.25 / 5.0)


@pytest.mark.parametrize(
    ("task", "y_true", "pred"),
    [
        ("binary", np.array([0, 1]), np.array([[0.5, 0.5], [np.nan, np.nan]])),
        ("multiclass", np.array([0, 1, 2]), np.full((3, 3), np.inf)),
        ("regression", np.array([1.0, 2.0]), np.array([1.0, np.nan])),
    ],
)
def test_diverged_predictions_score_nan_everywhere(task, y_true, pred) -> None:
    got = evaluate_predictions(task, y_true, pred)
    assert got and all(math.isnan(v) for v in got.values())


def test_primary_metric_and_selection_direction() -> None:
    assert PRIMARY_METRIC == {
        "binary": ("roc_auc", "max"),
        "multiclass": ("accuracy", "max"),
        "regression": ("rmse", "min"),
    }
    assert primary_score("regression", {"rmse": 2.0, "mae": 1.0, "r2": 0.5}) == 2.0
    assert is_better("binary", 0.9, 0.8) and not is_better("binary", 0.8, 0.9)
    assert is_better("regression", 1.0, 2.0) and not is_better("regression", 2.0, 1.0)
    assert not is_better("multiclass", 0.5, 0.5)  # ties keep the incumbent
    assert not is_better("binary", math.nan, 0.1)
    assert is_better("regression", 5.0, math.nan)


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="task must be one of"):
        evaluate_predictions("ranking", np.array([0]), np.array([0.0]))
    with pytest.raises(ValueError, match="rows"):
        evaluate_predictions("binary", np.array([0, 1]), np.array([0.5]))
    with pytest.raises(ValueError, match="one column"):
        evaluate_predictions("regression", np.zeros((2, 1)), np.zeros((2, 2)))
