"""The methods of the comparison, each tuned the same way (``lmbench.baselines.tuning``: the
default configuration plus K sampled ones, selected on validation): XGBoost, CatBoost, the same
MLPs trained with Adam and with the reference LM library (``tlm``), and LM itself
(``search_lm``). All return a ``BaselineResult``; ``run_baseline`` dispatches by name."""

from lmbench.baselines.adam import AdamSettings, search_adam
from lmbench.baselines.common import BUDGETS, BaselineResult, TrialScore, budget_params
from lmbench.baselines.dispatch import BASELINES, NEURAL, SEARCHES, run_baseline
from lmbench.baselines.gbdt import search_catboost, search_xgboost
from lmbench.baselines.lm import LMRunSummary, LMSearchResult, LMSettings, search_lm
from lmbench.baselines.tlm import TLMSettings, search_tlm
from lmbench.baselines.tuning import TuningSettings, parse_space

__all__ = [
    "BASELINES",
    "BUDGETS",
    "NEURAL",
    "AdamSettings",
    "BaselineResult",
    "LMRunSummary",
    "LMSearchResult",
    "LMSettings",
    "SEARCHES",
    "TLMSettings",
    "TrialScore",
    "TuningSettings",
    "budget_params",
    "parse_space",
    "run_baseline",
    "search_adam",
    "search_catboost",
    "search_lm",
    "search_tlm",
    "search_xgboost",
]
