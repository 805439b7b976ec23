"""Baselines the LM trainer is compared with: XGBoost and CatBoost tuned by grid search, and the
same MLP trained with Adam; plus LM itself searched under the same budget rules (``search_lm``).
All return a ``BaselineResult``; ``run_baseline`` dispatches by name."""

from lmbench.baselines.adam import AdamSettings, search_adam
from lmbench.baselines.common import BUDGETS, BaselineResult, GridPointScore, grid_points
from lmbench.baselines.dispatch import BASELINES, SEARCHES, run_baseline
from lmbench.baselines.gbdt import search_catboost, search_xgboost
from lmbench.baselines.lm import LMRunSummary, LMSearchResult, LMSettings, search_lm

__all__ = [
    "BASELINES",
    "BUDGETS",
    "AdamSettings",
    "BaselineResult",
    "GridPointScore",
    "LMRunSummary",
    "LMSearchResult",
    "LMSettings",
    "SEARCHES",
    "grid_points",
    "run_baseline",
    "search_adam",
    "search_catboost",
    "search_lm",
    "search_xgboost",
]
