"""``run_baseline``: one entry point so the harness tunes XGBoost, CatBoost, Adam, LM and the
reference LM library alike (``lmbench.baselines.tuning``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmbench.baselines.adam import ModelFactory, search_adam
from lmbench.baselines.common import BaselineResult, InverseTarget
from lmbench.baselines.gbdt import search_catboost, search_xgboost
from lmbench.baselines.lm import search_lm
from lmbench.baselines.tlm import search_tlm
from lmbench.baselines.tuning import TuningSettings


@dataclass(frozen=True)
class Method:
    """One tuned method: its search, and what the harness needs to know about its model."""

    search: Callable[..., BaselineResult]
    #: The ``model`` tag of its runs: its own learner, or ``mlp_grid`` for the neural methods,
    #: which tune the same ``hidden`` choices from the same default.
    model: str
    #: Whether a caller may fix its network with ``model_factory``.
    takes_model_factory: bool = False

    @property
    def neural(self) -> bool:
        return self.model == "mlp_grid"


#: Every tuned method by the name its trainer config carries (``conf/trainer/<name>.yaml``;
#: LM's is ``lm_tuned.yaml``, ``lm.yaml`` being the single-run trainer): the one list.
#: (``lmbench.tracking.schema.METHODS`` is the store's spelling of the same names; a test
#: keeps the two equal.)
METHODS: dict[str, Method] = {
    "xgboost": Method(search_xgboost, "xgboost"),
    "catboost": Method(search_catboost, "catboost"),
    "adam": Method(search_adam, "mlp_grid", takes_model_factory=True),
    "tlm": Method(search_tlm, "mlp_grid"),
    "lm": Method(search_lm, "mlp_grid", takes_model_factory=True),
}
#: Every name ``run_baseline`` accepts: the baselines plus LM itself under the same tuning rules.
SEARCHES: tuple[str, ...] = tuple(METHODS)
#: The comparators LM is measured against.
BASELINES: tuple[str, ...] = tuple(name for name in SEARCHES if name != "lm")
#: The methods that train an MLP.
NEURAL: tuple[str, ...] = tuple(name for name, method in METHODS.items() if method.neural)


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
    if name not in METHODS:
        raise ValueError(f"unknown baseline {name!r}; known: {SEARCHES}")
    method = METHODS[name]
    if method.takes_model_factory:
        common["model_factory"] = model_factory
    return method.search(**arrays, **common)
