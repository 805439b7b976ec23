"""XGBoost and CatBoost: tuned (``lmbench.baselines.tuning``) with early stopping on validation.

Protocol, the same for both libraries:

* every trial is fitted on the train split with ``n_estimators`` / ``iterations`` as an upper
  bound and early stopping on the validation split's loss (log-loss, multi-class log-loss or
  RMSE: the library's training objective);
* the per-trial time limit is checked after every boosting round (XGBoost
  ``TrainingCallback.after_iteration`` returning True, CatBoost ``after_iteration`` returning
  False); a stopped ensemble keeps its best validation iteration, as under early stopping;
* trials are compared on the validation split by ``PRIMARY_METRIC``;
* refit rule: none. The early-stopped model of the best trial is kept as it is; there is no
  refit on train+val, so the validation score reported is the score of the returned model and the
  test split is touched exactly once, by the caller, after the search;
* threads are pinned (``n_jobs`` / ``thread_count``; ``auto``, the default, is every core this
  process may use divided among parallel launcher workers, as ``thread_cap``) for fair timing,
  and the seed is the run seed (``random_state`` / ``random_seed``), overriding the config.

Model size (``BaselineResult.model_size``), read from the final (early-stopped) ensemble:

* ``n_trees``: trees kept (XGBoost multiclass grows one tree per class per round);
* ``n_leaves`` and ``n_internal_nodes`` (split nodes, each storing a feature index and a
  threshold); ``n_nodes = n_leaves + n_internal_nodes``;
* ``n_leaf_values``: the fitted numbers stored in leaves, the figure closest to a network's
  parameter count (equals ``n_leaves`` except for CatBoost multiclass, where each leaf holds one
  value per class).

XGBoost counts come from ``Booster.trees_to_dataframe()`` of the booster sliced to the best
iteration (the booster itself also holds the ``early_stopping_rounds`` rounds grown after it).
CatBoost grows symmetric (oblivious) trees: a tree of depth ``d`` has ``2**d`` leaves, ``d``
distinct split conditions (reported as ``n_split_conditions``) and ``2**d - 1`` internal nodes when
drawn as a binary tree. CatBoost may stop a tree short of the configured depth, so
``tree_count * 2**depth`` overestimates; the counts are read from the model
(``get_tree_leaf_counts()``, ``get_leaf_values()``) instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lmbench.baselines.common import (
    STOP_MAX_EPOCHS,
    STOP_PATIENCE,
    BaselineResult,
    Deadline,
    FitOutcome,
    InverseTarget,
    check_split,
)
from lmbench.baselines.torch_utils import thread_cap
from lmbench.baselines.tuning import TuningSettings, run_tuning
from lmbench.metrics import n_classes_of, to_labels

DEFAULT_THREADS = "auto"
DEFAULT_EARLY_STOPPING_ROUNDS = 50
#: XGBoost's own ``n_estimators`` when a config leaves it out.
XGBOOST_DEFAULT_ROUNDS = 100


def gbdt_threads(value: Any) -> int:
    """A GBDT thread setting: a positive int as given, or ``auto`` = :func:`thread_cap` (so two
    joblib launcher workers on 2 cores get one thread each instead of oversubscribing)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return thread_cap()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"GBDT threads (n_jobs / thread_count) must be a positive int or auto, got {value!r}"
        )
    return value


def search_xgboost(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    task: str,
    cfg: Mapping[str, Any],
    seed: int,
    tuning: TuningSettings | None = None,
    inverse_target: InverseTarget | None = None,
) -> BaselineResult:
    """Tune XGBoost (``XGBClassifier`` / ``XGBRegressor``) on train, select on val.

    ``cfg`` is ``conf/trainer/xgboost.yaml``: ``params`` (under the budget) are the estimator's
    arguments in the default trial, ``space`` what the sampled trials change.
    ``early_stopping_rounds`` defaults to 50 and ``n_jobs`` to 2. See the module docstring for
    the refit rule and model size.
    """
    import xgboost as xgb

    check_split(task, x_train, y_train, x_val, y_val)
    n_classes = _n_classes(task, y_train, y_val)
    y_fit, y_stop = _fit_targets(task, y_train), _fit_targets(task, y_val)
    eval_metric = {"binary": "logloss", "multiclass": "mlogloss", "regression": "rmse"}[task]

    class StopAtDeadline(xgb.callback.TrainingCallback):
        def __init__(self, deadline: Deadline) -> None:
            super().__init__()
            self.deadline = deadline

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            return self.deadline.expired()

    def fit_point(params: dict[str, Any], deadline: Deadline) -> FitOutcome:
        params["n_jobs"] = gbdt_threads(params.get("n_jobs", DEFAULT_THREADS))
        params.setdefault("early_stopping_rounds", DEFAULT_EARLY_STOPPING_ROUNDS)
        params.setdefault("eval_metric", eval_metric)
        params["random_state"] = seed
        params["callbacks"] = [StopAtDeadline(deadline)]
        estimator_cls = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
        model = estimator_cls(**params)
        model.fit(x_train, y_fit, eval_set=[(x_val, y_stop)], verbose=False)
        rounds = int(model.get_booster().num_boosted_rounds())
        return FitOutcome(
            model=model,
            predictor=_sklearn_predictor(model, task, n_classes),
            best_iteration=_xgboost_rounds_kept(model),
            epochs=rounds,
            stop_reason=_rounds_stop(rounds, model.get_params().get("n_estimators")
                                    or XGBOOST_DEFAULT_ROUNDS),
        )

    return run_tuning(
        "xgboost",
        task,
        cfg,
        fit_point,
        x_val,
        y_val,
        tuning=tuning or TuningSettings(),
        seed=seed,
        inverse_target=inverse_target,
        model_size=lambda outcome: xgboost_model_size(outcome.model),
    )


def search_catboost(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    task: str,
    cfg: Mapping[str, Any],
    seed: int,
    tuning: TuningSettings | None = None,
    inverse_target: InverseTarget | None = None,
) -> BaselineResult:
    """Tune CatBoost (``CatBoostClassifier`` / ``CatBoostRegressor``) on train, select on val.

    ``cfg`` is ``conf/trainer/catboost.yaml``, used like XGBoost's. ``use_best_model=True`` trims
    the ensemble to the best validation iteration; ``early_stopping_rounds`` defaults to 50 and
    ``thread_count`` to 2; CatBoost writes no ``catboost_info/`` folder.
    """
    import catboost as cb

    check_split(task, x_train, y_train, x_val, y_val)
    n_classes = _n_classes(task, y_train, y_val)
    y_fit, y_stop = _fit_targets(task, y_train), _fit_targets(task, y_val)

    class StopAtDeadline:
        def __init__(self, deadline: Deadline) -> None:
            self.deadline = deadline

        def after_iteration(self, info: Any) -> bool:
            return not self.deadline.expired()  # CatBoost: False stops training

    def fit_point(params: dict[str, Any], deadline: Deadline) -> FitOutcome:
        params["thread_count"] = gbdt_threads(params.get("thread_count", DEFAULT_THREADS))
        params.setdefault("early_stopping_rounds", DEFAULT_EARLY_STOPPING_ROUNDS)
        params["random_seed"] = seed
        params["use_best_model"] = True
        params["allow_writing_files"] = False
        params["verbose"] = False
        if task == "regression":
            params.setdefault("loss_function", "RMSE")
            model = cb.CatBoostRegressor(**params)
        else:
            params.setdefault("loss_function", "Logloss" if task == "binary" else "MultiClass")
            params.setdefault("class_names", list(range(n_classes)))
            model = cb.CatBoostClassifier(**params)
        model.fit(x_train, y_fit, eval_set=(x_val, y_stop), callbacks=[StopAtDeadline(deadline)])
        rounds = _catboost_rounds_grown(model)
        return FitOutcome(
            model=model,
            predictor=_sklearn_predictor(model, task, n_classes),
            best_iteration=int(model.tree_count_),
            epochs=rounds,
            stop_reason=_rounds_stop(rounds, model.get_all_params()["iterations"]),
        )

    return run_tuning(
        "catboost",
        task,
        cfg,
        fit_point,
        x_val,
        y_val,
        tuning=tuning or TuningSettings(),
        seed=seed,
        inverse_target=inverse_target,
        model_size=lambda outcome: catboost_model_size(outcome.model),
    )


def xgboost_model_size(model: Any) -> dict[str, int]:
    """Tree, leaf and node counts of a fitted XGBoost estimator, up to its best iteration."""
    booster = model.get_booster()[: _xgboost_rounds_kept(model)]
    frame = booster.trees_to_dataframe()
    n_leaves = int((frame["Feature"] == "Leaf").sum())
    n_internal = int(len(frame) - n_leaves)
    return {
        "n_trees": int(frame["Tree"].nunique()),
        "n_leaves": n_leaves,
        "n_internal_nodes": n_internal,
        "n_nodes": n_leaves + n_internal,
        "n_leaf_values": n_leaves,
    }


def catboost_model_size(model: Any) -> dict[str, int]:
    """Tree, leaf and node counts of a fitted CatBoost model, read from the model itself."""
    leaf_counts = [int(c) for c in model.get_tree_leaf_counts()]
    n_leaves = sum(leaf_counts)
    n_internal = sum(c - 1 for c in leaf_counts)
    symmetric = model.get_all_params().get("grow_policy", "SymmetricTree") == "SymmetricTree"
    n_split_conditions = (
        sum(int(round(math.log2(c))) for c in leaf_counts) if symmetric else n_internal
    )
    return {
        "n_trees": int(model.tree_count_),
        "n_leaves": n_leaves,
        "n_internal_nodes": n_internal,
        "n_nodes": n_leaves + n_internal,
        "n_leaf_values": int(len(model.get_leaf_values())),
        "n_split_conditions": n_split_conditions,
    }


def _xgboost_rounds_kept(model: Any) -> int:
    """Boosting rounds used for prediction: up to the best iteration when early stopping ran."""
    try:
        return int(model.best_iteration) + 1
    except AttributeError:  # early_stopping_rounds: null -> no best_iteration, all rounds used
        return int(model.get_booster().num_boosted_rounds())


def _rounds_stop(rounds: int, cap: Any) -> str:
    """Why boosting stopped: the round cap, else early stopping (patience on validation)."""
    return STOP_MAX_EPOCHS if rounds >= int(cap) else STOP_PATIENCE


def _catboost_rounds_grown(model: Any) -> int:
    """Boosting rounds CatBoost grew before it stopped (``use_best_model`` trims the ensemble
    to the best one afterwards): the length of its validation curve."""
    curves = model.get_evals_result().get("validation") or {}
    return max((len(values) for values in curves.values()), default=int(model.tree_count_))


def _n_classes(task: str, y_train: np.ndarray, y_val: np.ndarray) -> int:
    if task == "regression":
        return 1
    return max(n_classes_of(task, y_train), n_classes_of(task, y_val))


def _fit_targets(task: str, y: np.ndarray) -> np.ndarray:
    """Labels for classifiers (one-hot accepted), a flat float vector for regressors."""
    if task == "regression":
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2 and y.shape[1] != 1:
            raise ValueError(f"regression targets must have one column, got shape {y.shape}")
        return y.reshape(-1)
    return to_labels(y)


def _sklearn_predictor(model: Any, task: str, n_classes: int):
    """``predict`` with the BaselineResult convention: probas ``(n, k)`` or values ``(n, 1)``."""

    def predict(x: np.ndarray) -> np.ndarray:
        if task == "regression":
            return np.asarray(model.predict(x), dtype=np.float64).reshape(-1, 1)
        proba = np.asarray(model.predict_proba(x), dtype=np.float64)
        if proba.shape[1] != n_classes:
            raise ValueError(
                f"model predicts {proba.shape[1]} classes but the targets have {n_classes}; "
                "is a class missing from the train split?"
            )
        return proba

    return predict
