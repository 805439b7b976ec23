"""Network builders from config: MLP widths, activation and output head."""

from lmbench.models.factory import build_model
from lmbench.models.mlp import ACTIVATIONS, HEADS, build_mlp, head_for_task

__all__ = ["ACTIVATIONS", "HEADS", "build_mlp", "build_model", "head_for_task"]
