"""``run_baseline``: one entry point so the harness treats XGBoost, CatBoost, Adam and the LM grid
search alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lmbench.baselines.adam import ModelFactory, search_adam
from lmbench.baselines.common import BaselineResult, InverseTarget
from lmbench.baselines.gbdt import search_catboost, search_xgboost
from lmbench.baselines.lm import search_lm

#: The comparators LM is measured against (each has ``conf/trainer/<name>.yaml``).
BASELINES: tuple[str, ...] = ("xgboost", "catboost", "adam")
#: Every name ``run_baseline`` accepts: the baselines plus LM itself under the same grid-search
#: rules (its config is ``conf/trainer/lm_grid.yaml``; ``lm.yaml`` is the single-run trainer).
SEARCHES: tuple[str, ...] = (*BASELINES, "lm")


def run_baseline(
    name: str,
    cfg: Mapping[str, Any],
    *,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    task: str,
    seed: int,
    model_factory: ModelFactory | None = None,
    inverse_target: InverseTarget | None = None,
) -> BaselineResult:
    """Run the grid search ``name`` (``xgboost``, ``catboost``, ``adam`` or ``lm``) with its
    trainer config (``lm`` reads ``conf/trainer/lm_grid.yaml``).

    Takes the train and validation splits only: score the test split afterwards, once, with
    ``result.evaluate(x_test, y_test, inverse_target=...)``. ``model_factory`` is required for
    ``adam`` (the same MLP builder the LM run uses), optional for ``lm`` (it then replaces the
    config's network, which must not set hidden/activation/dtype; None lets LM search its widths)
    and ignored for the GBDTs. ``inverse_target`` only changes the units of the reported
    validation scores, never the selection.
    """
    arrays = {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}
    common = {"task": task, "cfg": cfg, "seed": seed, "inverse_target": inverse_target}
    if name == "xgboost":
        return search_xgboost(**arrays, **common)
    if name == "catboost":
        return search_catboost(**arrays, **common)
    if name == "adam":
        if model_factory is None:
            raise ValueError("run_baseline('adam', ...) needs model_factory (the MLP builder)")
        return search_adam(**arrays, **common, model_factory=model_factory)
    if name == "lm":
        return search_lm(**arrays, **common, model_factory=model_factory)
    raise ValueError(f"unknown baseline {name!r}; known: {SEARCHES}")
