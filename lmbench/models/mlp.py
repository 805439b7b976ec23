"""Multilayer perceptrons for tabular data: widths, activation and output head by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from lmbench.core.losses import LOSS_TYPES, takes_logits

#: Hidden-layer activations by config name.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}

#: Output heads by config name; ``linear`` adds no layer after the last Linear.
HEADS: dict[str, Callable[[], nn.Module] | None] = {
    "softmax": lambda: nn.Softmax(dim=-1),
    "sigmoid": nn.Sigmoid,
    "linear": None,
}

_HEAD_BY_TASK = {"binary": "softmax", "multiclass": "softmax", "regression": "linear"}


#: Losses that read raw logits (the loss applies its own softmax / sigmoid), from the registry.
LOGIT_LOSSES: tuple[str, ...] = tuple(
    name for name, kind in LOSS_TYPES.items() if kind.takes_logits
)


def head_for_task(task: str, loss: str = "mse") -> str:
    """The output head for a task and loss: softmax for classification trained with MSE (binary
    too, over two one-hot columns, as the original library does), linear (logits) for a loss
    that takes logits (cross-entropy, BCE) and for regression."""
    try:
        head = _HEAD_BY_TASK[task]
    except KeyError:
        raise ValueError(
            f"unknown task {task!r}; expected one of {sorted(_HEAD_BY_TASK)}"
        ) from None
    return "linear" if takes_logits(loss) else head


def loss_for_task(loss: str, task: str) -> str:
    """``auto``: cross-entropy (GGN) for classification, MSE for regression; a classification
    loss (one that takes logits) on a regression task is refused."""
    if loss == "auto":
        return "mse" if task == "regression" else "cross_entropy"
    if task == "regression" and takes_logits(loss):
        raise ValueError(
            f"trainer.loss={loss!r} is a classification loss but the task is regression; "
            "use mse, huber or auto"
        )
    return loss


def probabilities(outputs: torch.Tensor, loss: str) -> torch.Tensor:
    """Class probabilities from a classifier's outputs, as the loss reads them: softmax of
    logits for cross-entropy, sigmoid for BCE, the outputs themselves for MSE on a softmax head
    (and for a name that is no loss)."""
    kind = LOSS_TYPES.get(loss)
    return outputs if kind is None else kind().probabilities(outputs)


def build_mlp(
    in_features: int,
    out_features: int,
    hidden: Sequence[int] = (16,),
    activation: str = "tanh",
    head: str = "linear",
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """``Linear -> activation`` per hidden width, a final ``Linear``, then the head.

    Weights use PyTorch's default initialisation: seed ``torch.manual_seed`` (or fork the RNG)
    before calling to make them reproducible.
    """
    if in_features < 1 or out_features < 1:
        raise ValueError(
            f"in_features and out_features must be >= 1, got {in_features}, {out_features}"
        )
    widths = [int(w) for w in hidden]
    if any(w < 1 for w in widths):
        raise ValueError(f"hidden widths must be >= 1, got {list(hidden)}")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
        )
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {sorted(HEADS)}")

    layers: list[nn.Module] = []
    previous = in_features
    for width in widths:
        layers += [nn.Linear(previous, width, dtype=dtype), ACTIVATIONS[activation]()]
        previous = width
    layers.append(nn.Linear(previous, out_features, dtype=dtype))
    make_head = HEADS[head]
    if make_head is not None:
        layers.append(make_head())
    return nn.Sequential(*layers)
