"""Every tuned method on every task, through run_baseline, with the shipped quick budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmbench.baselines import BaselineResult, run_baseline
from lmbench.metrics import CLASSIFICATION_METRICS, PRIMARY_METRIC, REGRESSION_METRICS, is_better

# Thresholds a working learner clears easily on these datasets and a broken one does not:
# majority class gives AUC 0.5 / wine accuracy ~0.4; predicting the mean gives r2 ~0.
THRESHOLDS = {
    "binary": ("roc_auc", 0.95),
    "multiclass": ("accuracy", 0.85),
    "regression": ("r2", 0.2),
}


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", ["xgboost", "catboost", "adam", "tlm"])
def test_baseline_end_to_end(name, task, splits, quick_cfg, quick_tuning) -> None:
    split = splits[task]
    result = run_baseline(
        name,
        quick_cfg(name),
        **split.train_val(),
        task=task,
        seed=0,
        tuning=quick_tuning,
        inverse_target=split.inverse_target,
    )
    assert isinstance(result, BaselineResult)
    metrics = result.evaluate(split.x_test, split.y_test, inverse_target=split.inverse_target)

    expected = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    assert tuple(metrics) == expected
    metric, threshold = THRESHOLDS[task]
    assert metrics[metric] > threshold, metrics

    prediction = result.predict(split.x_test)
    assert prediction.shape == split.y_test.shape
    if task == "regression":
        # reported in original units: diabetes targets have std ~77, a standardised rmse is ~0.8
        assert metrics["rmse"] > 10
    else:
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-5)

    # the tuning record: the default trial, then the sampled one
    assert result.primary_metric == PRIMARY_METRIC[task][0]
    assert result.n_trials == len(result.trials) == 2
    assert [t.origin for t in result.trials] == ["default", "sampled"]
    assert result.best_params == result.trials[result.selected_trial].params
    val_scores = [p.val_score for p in result.trials]
    assert not any(is_better(task, s, result.best_val_score) for s in val_scores)
    assert result.best_val_score == result.best_val_metrics[result.primary_metric]
    assert 0 < result.best_fit_time_s <= result.search_time_s
    assert all(p.best_iteration >= 1 for p in result.trials)
    assert result.default_val_score == result.trials[0].val_score
    assert all(isinstance(v, int) and v > 0 for v in result.model_size.values())
    assert not math.isnan(result.best_val_score)
    if name in ("adam", "tlm"):
        curves = {"train_loss", "val_loss", "epoch_time_s"}
        curves |= {"damping"} if name == "tlm" else set()
        assert set(result.history) == curves
        assert len({len(v) for v in result.history.values()}) == 1
    else:
        assert result.history == {}
