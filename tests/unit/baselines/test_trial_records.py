"""Every method's trials record epochs, best epoch and why they stopped (cap, patience, time
limit), the same vocabulary for all (``lmbench.baselines.common.STOP_REASONS``)."""

from __future__ import annotations

import pytest

from lmbench.baselines import TuningSettings, run_baseline
from lmbench.baselines.common import (
    STOP_MAX_EPOCHS,
    STOP_PATIENCE,
    STOP_TIME_LIMIT,
    epoch_stop_reason,
)

DEFAULT_ONLY = TuningSettings(n_samples=0)

#: Per method: a config whose cap binds after 3 epochs / rounds (no patience can end it first).
CAPPED = {
    "adam": {"max_epochs": 3, "patience": 50, "n_threads": 1, "hidden": [4]},
    "tlm": {"max_epochs": 3, "patience": 50, "n_threads": 1, "hidden": [4]},
    "lm": {"max_epochs": 3, "patience": 50, "n_threads": 1, "hidden": [4], "min_error": None},
    "xgboost": {"n_estimators": 3, "early_stopping_rounds": 50, "n_jobs": 1},
    "catboost": {"iterations": 3, "early_stopping_rounds": 50, "thread_count": 1},
}


def _cfg(params: dict) -> dict:
    return {"budget": "full", "params": params, "space": {}, "budgets": {"full": {}}}


@pytest.mark.parametrize("method", sorted(CAPPED))
def test_a_capped_trial_records_its_epochs_and_the_cap(method, splits) -> None:
    split = splits["regression"]
    result = run_baseline(method, _cfg(CAPPED[method]), **split.train_val(),
                          task="regression", seed=0, tuning=DEFAULT_ONLY)
    trial = result.trials[0]
    assert (trial.epochs, trial.stop_reason, trial.timed_out) == (3, STOP_MAX_EPOCHS, False)
    assert 0 <= trial.best_iteration <= 3


def test_patience_and_time_limit_are_recorded(splits) -> None:
    split = splits["multiclass"]
    patient = run_baseline("xgboost", _cfg({"n_estimators": 2000, "early_stopping_rounds": 3,
                                            "learning_rate": 0.9, "n_jobs": 1}),
                           **split.train_val(), task="multiclass", seed=0, tuning=DEFAULT_ONLY)
    trial = patient.trials[0]
    assert trial.stop_reason == STOP_PATIENCE and trial.epochs == trial.best_iteration + 3
    limited = run_baseline(
        "adam", _cfg({"max_epochs": 10_000, "patience": 10_000, "n_threads": 1, "hidden": [4]}),
        **split.train_val(), task="multiclass", seed=0,
        tuning=TuningSettings(n_samples=0, trial_time_limit_s=0.2))
    trial = limited.trials[0]
    assert trial.timed_out and trial.stop_reason == STOP_TIME_LIMIT and trial.epochs >= 1


def test_epoch_stop_reason_by_hand() -> None:
    assert epoch_stop_reason(500, 500, 0.1) == STOP_MAX_EPOCHS
    assert epoch_stop_reason(40, 500, 0.1) == STOP_PATIENCE
    assert epoch_stop_reason(3, 500, float("nan")) == "diverged"
