"""The shipped trainer configs, grid expansion and the run_baseline dispatcher."""

from __future__ import annotations

import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from lmbench.baselines import BASELINES, BUDGETS, AdamSettings, grid_points, run_baseline

FULL_GRID_SIZES = {"xgboost": 24, "catboost": 18, "adam": 3}


@pytest.mark.parametrize("name", BASELINES)
def test_shipped_config_has_both_budgets_and_full_is_the_default(name, conf_dir) -> None:
    cfg = OmegaConf.load(conf_dir / f"{name}.yaml")  # as Hydra will hand it over
    assert cfg.name == name and cfg.budget == "full"
    assert set(cfg.grid) == set(BUDGETS)
    full = grid_points(cfg)
    quick = grid_points(OmegaConf.merge(cfg, {"budget": "quick"}))
    assert len(full) == FULL_GRID_SIZES[name]
    assert 1 < len(quick) < len(full)
    if name == "adam":  # every point is a valid typed setting (e.g. YAML floats, not strings)
        settings = [AdamSettings.from_mapping(p) for p in full]
        assert [s.lr for s in settings] == [0.001, 0.003, 0.01]


def test_grid_points_expand_in_config_order_and_override_params() -> None:
    cfg = {
        "budget": "quick",
        "params": {"a": 0, "b": 0, "c": 9},
        "grid": {"full": {"a": [7]}, "quick": {"a": [1, 2], "b": [3, 4]}},
    }
    assert grid_points(cfg) == [
        {"a": 1, "b": 3, "c": 9},
        {"a": 1, "b": 4, "c": 9},
        {"a": 2, "b": 3, "c": 9},
        {"a": 2, "b": 4, "c": 9},
    ]
    assert grid_points({"params": {"c": 9}, "grid": {"full": {"a": [7]}}}) == [{"a": 7, "c": 9}]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"budget": "medium", "grid": {"full": {}, "quick": {}}}, "trainer.budget='medium'"),
        ({"grid": {"full": {"lr": 0.1}}}, "trainer.grid.full.lr must be a non-empty list"),
        ({"grid": {"full": {"lr": []}}}, "trainer.grid.full.lr must be a non-empty list"),
    ],
)
def test_bad_grids_name_the_knob(cfg, message) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        grid_points(cfg)


def test_run_baseline_rejects_unknown_names_and_adam_without_a_model(splits, quick_cfg) -> None:
    arrays = splits["binary"].train_val()
    with pytest.raises(ValueError, match="unknown baseline 'lightgbm'"):
        run_baseline("lightgbm", {}, **arrays, task="binary", seed=0)
    with pytest.raises(ValueError, match="needs model_factory"):
        run_baseline("adam", quick_cfg("adam"), **arrays, task="binary", seed=0)
    with pytest.raises(ValueError, match="x_val has 3 rows but y_val has"):
        run_baseline(
            "xgboost",
            quick_cfg("xgboost"),
            **(arrays | {"x_val": arrays["x_val"][:3]}),
            task="binary",
            seed=0,
        )


def test_regression_val_scores_follow_inverse_target_but_selection_does_not(
    splits, quick_cfg
) -> None:
    split = splits["regression"]
    cfg = quick_cfg("xgboost")
    standardised = run_baseline("xgboost", cfg, **split.train_val(), task="regression", seed=0)
    original = run_baseline(
        "xgboost",
        cfg,
        **split.train_val(),
        task="regression",
        seed=0,
        inverse_target=split.inverse_target,
    )
    assert standardised.best_params == original.best_params
    inverse = split.inverse_target
    scale = float(inverse(np.ones((1, 1)))[0, 0] - inverse(np.zeros((1, 1)))[0, 0])
    for a, b in zip(standardised.grid_scores, original.grid_scores, strict=True):
        assert b.val_score == pytest.approx(a.val_score * scale, rel=1e-5)
        assert not math.isnan(a.val_score)
