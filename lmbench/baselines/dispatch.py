"""``run_baseline``: one entry point so the harness tunes XGBoost, CatBoost, Adam, LM and the
reference LM library alike (``lmbench.baselines.tuning``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lmbench.baselines.adam import ModelFactory, search_adam
from lmbench.baselines.common import BaselineResult, InverseTarget
from lmbench.baselines.gbdt import search_catboost, search_xgboost
from lmbench.baselines.lm import search_lm
from lmbench.baselines.tlm import search_tlm
from lmbench.baselines.tuning import TuningSettings

#: Every tuned method by the name its trainer config carries (``conf/trainer/<name>.yaml``;
#: LM's is ``lm_tuned.yaml``, ``lm.yaml`` being the single-run trainer): the one list.
SEARCH_FUNCTIONS: dict[str, Callable[..., BaselineResult]] = {
    "xgboost": search_xgboost, "catboost": search_catboost, "adam": search_adam,
    "tlm": search_tlm, "lm": search_lm,
}
#: Every name ``run_baseline`` accepts: the baselines plus LM itself under the same tuning rules.
SEARCHES: tuple[str, ...] = tuple(SEARCH_FUNCTIONS)
#: The comparators LM is measured against.
BASELINES: tuple[str, ...] = tuple(name for name in SEARCHES if name != "lm")
#: The methods that train an MLP: they tune the same ``hidden`` choices from the same default.
NEURAL: tuple[str, ...] = ("adam", "tlm", "lm")
#: The methods whose network a caller may fix with ``model_factory``.
TAKES_MODEL_FACTORY: tuple[str, ...] = ("adam", "lm")


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
    if name not in SEARCH_FUNCTIONS:
        raise ValueError(f"unknown baseline {name!r}; known: {SEARCHES}")
    if name in TAKES_MODEL_FACTORY:
        common["model_factory"] = model_factory
    return SEARCH_FUNCTIONS[name](**arrays, **common)
