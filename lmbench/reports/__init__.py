"""Reports read only the tracking store: run tables, comparisons, figures."""

from lmbench.reports.comparison import (
    ComparisonResult,
    compare_methods,
    summarize,
    win_tie_loss,
)
from lmbench.reports.runs import load_metric_histories, load_runs

__all__ = [
    "ComparisonResult",
    "compare_methods",
    "load_metric_histories",
    "load_runs",
    "summarize",
    "win_tie_loss",
]
