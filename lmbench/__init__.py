"""lmbench: Levenberg-Marquardt training of PyTorch networks, benchmarked reproducibly.

Seed-compatible helpers live at the top level (``train_levenberg``, ``get_weights_count``,
``TableLoader``, ``plot_train_report``); the engine is ``lmbench.core.LevenbergMarquardt``.
"""

from lmbench.compat import SeedResult, train_distributed_levenberg, train_levenberg
from lmbench.core import (
    GainRatioDamping,
    LevenbergMarquardt,
    MarquardtDamping,
    SeedDamping,
    StoppingRules,
    TrainingHistory,
    get_weights_count,
)

__version__ = "0.1.0"

__all__ = [
    "GainRatioDamping",
    "LevenbergMarquardt",
    "MarquardtDamping",
    "SeedDamping",
    "SeedResult",
    "StoppingRules",
    "TableLoader",
    "TrainingHistory",
    "__version__",
    "get_weights_count",
    "plot_train_report",
    "train_distributed_levenberg",
    "train_levenberg",
]


def __getattr__(name: str):  # lazy: keep `import lmbench` free of pandas/matplotlib
    if name == "TableLoader":
        from lmbench.data.table_loader import TableLoader

        return TableLoader
    if name == "plot_train_report":
        from lmbench.plotting import plot_train_report

        return plot_train_report
    raise AttributeError(f"module 'lmbench' has no attribute {name!r}")
