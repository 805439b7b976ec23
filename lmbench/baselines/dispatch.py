"""``run_baseline``: one entry point so the harness tunes XGBoost, CatBoost, Adam, LM and the
reference LM library alike (``lmbench.baselines.tuning``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lmbench.baselines.adam import ModelFactory, search_adam
from lmbench.baselines.common import BaselineResult, InverseTarget
from lmbench.baselines.gbdt import search_catboost, search_xgboost
from lmbench.baselines.lm import search_lm
from lmbench.baselines.tlm import search_tlm
from lmbench.baselines.tuning import TuningSettings

#: The comparators LM is measured against (each has ``conf/trainer/<name>.yaml``).
BASELINES: tuple[str, ...] = ("xgboost", "catboost", "adam", "tlm")
#: Every name ``run_baseline`` accepts: the baselines plus LM itself under the same tuning rules
#: (its config is ``conf/trainer/lm_tuned.yaml``; ``lm.yaml`` is the single-run trainer).
SEARCHES: tuple[str, ...] = (*BASELINES, "lm")
#: The methods that train an MLP: they tune the same ``hidden`` choices from the same default.
NEURAL: tuple[str, ...] = ("adam", "tlm", "lm")


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
    tuning: Mapping[str, Any] | TuningSettings | None = None,
    model_factory: ModelFactory | None = None,
    inverse_target: InverseTarget | None = None,
) -> BaselineResult:
    """Tune ``name`` (``xgboost``, ``catboost``, ``adam``, ``tlm`` or ``lm``) with its trainer
    config (``lm`` reads ``conf/trainer/lm_tuned.yaml``) under ``tuning`` (the top-level
    ``tuning`` node: default configuration + ``n_samples`` sampled ones, the same for all).

    Takes the train and validation splits only: score the test split afterwards, once, with
    ``result.evaluate(x_test, y_test, inverse_target=...)`` (and ``result.default_evaluate`` for
    the default configuration's model). ``model_factory`` optionally fixes the network of
    ``adam`` and ``lm`` (the config must then not set hidden/activation; None builds and tunes
    the MLP from the config); the GBDTs and ``tlm`` ignore it. ``inverse_target`` only changes
    the units of the reported validation scores, never the selection.
    """
    settings = tuning if isinstance(tuning, TuningSettings) else TuningSettings.from_mapping(tuning)
    arrays = {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}
    common = {
        "task": task, "cfg": cfg, "seed": seed, "tuning": settings,
        "inverse_target": inverse_target,
    }  # fmt: skip
    if name == "xgboost":
        return search_xgboost(**arrays, **common)
    if name == "catboost":
        return search_catboost(**arrays, **common)
    if name == "adam":
        return search_adam(**arrays, **common, model_factory=model_factory)
    if name == "tlm":
        return search_tlm(**arrays, **common)
    if name == "lm":
        return search_lm(**arrays, **common, model_factory=model_factory)
    raise ValueError(f"unknown baseline {name!r}; known: {SEARCHES}")
