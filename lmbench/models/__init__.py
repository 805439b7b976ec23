"""Network builders from config: MLP widths, activation and output head."""

from lmbench.models.factory import build_model
from lmbench.models.mlp import (
    ACTIVATIONS,
    HEADS,
    LOGIT_LOSSES,
    build_mlp,
    head_for_task,
    loss_for_task,
    probabilities,
)

__all__ = [
    "ACTIVATIONS",
    "HEADS",
    "LOGIT_LOSSES",
    "build_mlp",
    "build_model",
    "head_for_task",
    "loss_for_task",
    "probabilities",
]
