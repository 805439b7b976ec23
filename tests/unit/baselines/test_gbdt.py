"""XGBoost / CatBoost specifics: early stopping, pinned threads and seeds, model-size counts."""


from __future__ import annotations

import numpy as np
import pytest

from lmbench.baselines import TuningSettings, search_catboost, search_xgboost
from lmbench.baselines.gbdt import gbdt_threads

#: The default configuration only: these tests pin library specifics, not the sampling.
ONE_TRIAL = TuningSettings(n_samples=0)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_xgboost_model_size_matches_the_text_dump(task, splits, quick_cfg) -> None:
    split = splits[task]
    result = search_xgboost(
        **split.train_val(), task=task, cfg=quick_cfg("xgboost"), seed=3, tuning=ONE_TRIAL
    )
    model = result.model
    rounds = model.best_iteration + 1
    best = result.trials[result.selected_trial]
    assert best.best_iteration == rounds
    # independent count: the text dump of the rounds used for prediction
    dump = model.get_booster()[:rounds].get_dump()
    leaves = sum(tree.count("leaf=") for tree in dump)
    splits_ = sum(tree.count("yes=") for tree in dump)
    trees_per_round = split.y_train.shape[1] if task == "multiclass" else 1
    assert result.model_size == {
        "n_trees": rounds * trees_per_round,
        "n_leaves": leaves,
        "n_internal_nodes": splits_,
        "n_nodes": leaves + splits_,
        "n_leaf_values": leaves,
    }
    # early stopping really stopped before the upper bound, and the extra rounds are not counted
    assert rounds < model.get_booster().num_boosted_rounds() <= 200


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_catboost_model_size_matches_tree_depths(task, splits, quick_cfg) -> None:
    split = splits[task]
    result = search_catboost(
        **split.train_val(), task=task, cfg=quick_cfg("catboost"), seed=3, tuning=ONE_TRIAL
    )
    model = result.model
    depths = [len(model._get_tree_splits(i, None)) for i in range(model.tree_count_)]
    n_leaves = sum(2**d for d in depths)
    n_outputs = split.y_train.shape[1] if task == "multiclass" else 1
    assert result.model_size == {
        "n_trees": model.tree_count_,
        "n_leaves": n_leaves,
        "n_internal_nodes": n_leaves - len(depths),
        "n_nodes": 2 * n_leaves - len(depths),
        "n_leaf_values": n_leaves * n_outputs,
        "n_split_conditions": sum(depths),
    }
    assert max(depths) <= result.best_params["depth"]
    assert model.tree_count_ < 200  # use_best_model trimmed the ensemble


def test_threads_and_seed_are_pinned(splits, quick_cfg, monkeypatch) -> None:
    # `auto` (the shipped setting) is the cores this process may use, split among launcher
    # workers through OMP_NUM_THREADS, as joblib's loky workers get it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    split = splits["binary"]
    xgb_cfg = quick_cfg("xgboost", threads=None)  # the shipped thread setting
    xgb_cfg["params"]["random_state"] = 123  # the run seed must win over the config
    xgb_result = search_xgboost(
        **split.train_val(), task="binary", cfg=xgb_cfg, seed=7, tuning=ONE_TRIAL
    )
    assert xgb_result.model.get_params()["n_jobs"] == 1
    assert xgb_result.model.get_params()["random_state"] == 7

    cb_result = search_catboost(
        **split.train_val(), task="binary", cfg=quick_cfg("catboost", threads=None), seed=7,
        tuning=ONE_TRIAL,
    )
    params = cb_result.model.get_params()
    assert params["thread_count"] == 1 and params["random_seed"] == 7


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "two"])
def test_bad_gbdt_thread_settings_name_the_knob(bad) -> None:
    with pytest.raises(ValueError, match="n_jobs / thread_count"):
        gbdt_threads(bad)


@pytest.mark.parametrize("search", [search_xgboost, search_catboost])
def test_search_is_deterministic_for_a_seed(search, splits, quick_cfg) -> None:
    split = splits["multiclass"]
    name = "xgboost" if search is search_xgboost else "catboost"
    runs = [
        search(
            **split.train_val(), task="multiclass", cfg=quick_cfg(name), seed=1,
            tuning=TuningSettings(n_samples=1),
        )
        for _ in range(2)
    ]
    assert [(p.params, p.val_metrics) for p in runs[0].trials] == [
        (p.params, p.val_metrics) for p in runs[1].trials
    ]
    np.testing.assert_array_equal(runs[0].predict(split.x_test), runs[1].predict(split.x_test))


def test_regression_rejects_multi_column_targets(splits, quick_cfg) -> None:
    split = splits["regression"]
    arrays = split.train_val() | {"y_train": np.hstack([split.y_train, split.y_train])}
    with pytest.raises(ValueError, match="one column"):
        search_xgboost(**arrays, task="regression", cfg=quick_cfg("xgboost"), seed=0,
                       tuning=ONE_TRIAL)
