"""Build a network from a model config (conf/model/*.yaml or Hydra's ``cfg.model``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lmbench.models.mlp import build_mlp, head_for_task

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_KNOWN_KEYS = {"name", "kind", "hidden", "activation", "head", "dtype"}


def build_model(
    cfg: Mapping[str, Any] | DictConfig,
    in_features: int,
    out_features: int,
    task: str,
    loss: str = "mse",
) -> nn.Module:
    """The network a model config describes, sized for the data and headed for the task.

    Keys: ``kind`` (only ``mlp``), ``hidden`` (widths), ``activation``, ``head`` (``auto``
    picks ``head_for_task(task, loss)``: logits for a loss that takes them) and ``dtype``
    (``float32`` or ``float64``).
    """
    spec = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    assert isinstance(spec, dict)
    unknown = sorted(set(spec) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"model config: unknown key(s) {unknown}; known: {sorted(_KNOWN_KEYS)}")
    kind = spec.get("kind", "mlp")
    if kind != "mlp":
        raise ValueError(f"model config: unknown kind {kind!r}; only 'mlp' is available")
    head = spec.get("head", "auto")
    dtype_name = spec.get("dtype", "float32")
    if dtype_name not in _DTYPES:
        raise ValueError(
            f"model config: dtype must be one of {sorted(_DTYPES)}, got {dtype_name!r}"
        )
    hidden = spec.get("hidden", (16,))
    if isinstance(hidden, int):
        hidden = (hidden,)
    return build_mlp(
        in_features,
        out_features,
        hidden=tuple(hidden),
        activation=spec.get("activation", "tanh"),
        head=head_for_task(task, loss) if head == "auto" else head,
        dtype=_DTYPES[dtype_name],
    )
