"""Every baseline on every task, through run_baseline, with the shipped quick grids."""

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
@pytest.mark.parametrize("name", ["xgboost", "catboost", "adam"])
def test_baseline_end_to_end(name, task, splits, quick_cfg, factory_for) -> None:
    split = splits[task]
    result = run_baseline(
        name,
        quick_cfg(name),
        **split.train_val(),
        task=task,
        seed=0,
        model_factory=factory_for(split),
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

    # the search record
    assert result.primary_metric == PRIMARY_METRIC[task][0]
    assert result.grid_size == len(result.grid_scores) == 2
    assert result.best_params in [p.params for p in result.grid_scores]
    val_scores = [p.val_score for p in result.grid_scores]
    assert not any(is_better(task, s, result.best_val_score) for s in val_scores)
    assert result.best_val_score == result.best_val_metrics[result.primary_metric]
    assert 0 < result.best_fit_time_s <= result.search_time_s
    assert all(p.best_iteration >= 1 for p in result.grid_scores)
    assert all(isinstance(v, int) and v > 0 for v in result.model_size.values())
    assert not math.isnan(result.best_val_score)
    if name == "adam":
        assert set(result.history) == {"train_loss", "val_loss", "epoch_time_s"}
        assert len({len(v) for v in result.history.values()}) == 1
    else:
        assert result.history == {}
