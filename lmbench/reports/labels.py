"""Axis and column labels that name the quantity and its unit (loss names, damping)."""

from __future__ import annotations

import ast
import math

import pandas as pd

from lmbench.core.losses import LOSS_TYPES, takes_logits
from lmbench.tracking.schema import TAG_LOSS, tag_column

#: The loss a run minimised (tag ``loss``) as an axis label with its unit (each loss's
#: ``label``). Regression targets are standardised, so regression losses are in
#: standardised-target units; cross-entropies use the natural logarithm.
LOSS_LABELS: dict[str, str] = {name: kind.label for name, kind in LOSS_TYPES.items()}
MU_LABEL = "damping μ"
MU_INIT_LABEL = "initial damping μ_init"
DAMPING_COEF_LABEL = "damping factor (demping_coef)"


def loss_label(loss: object, task: object) -> str:
    """The loss with its unit: ``MSE (standardised target)``, ``cross-entropy (nats)``; runs
    without a ``loss`` tag minimised MSE."""
    name = loss if isinstance(loss, str) and loss else "mse"
    label = LOSS_LABELS.get(name, name)
    if name in LOSS_TYPES and not takes_logits(name):  # a loss on values, not on logits
        label += " (standardised target)" if task == "regression" else " (on probabilities)"
    return label


def run_loss_label(run: pd.Series) -> str:
    """The loss label of one run (its ``loss`` tag and ``task``)."""
    return loss_label(run.get(tag_column(TAG_LOSS)), run.get("task"))


def width_label(value: object) -> str:
    """``"[32, 16]"`` -> ``"32-16"`` (hidden widths as logged); other text unchanged."""
    try:
        parsed = ast.literal_eval(str(value))
    except (ValueError, SyntaxError):
        return str(value)
    if isinstance(parsed, list | tuple):
        return "-".join(str(v) for v in parsed)
    return str(parsed)


def spans_decades(values: object) -> bool:
    """Whether the finite positive values span more than a factor of 10 (use a log scale)."""
    numbers = [float(v) for v in pd.Series(values, dtype=float).to_numpy().ravel()
               if not math.isnan(float(v))]
    return bool(numbers) and min(numbers) > 0 and max(numbers) / min(numbers) > 10
