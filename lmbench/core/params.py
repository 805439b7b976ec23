"""Flat view of a module's trainable parameters, for torch.func calls and LM steps.

The LM step is a vector in R^P. ``FlatParameters`` maps between that vector and the module's
named parameters without copying more than once, so the Jacobian can be taken with respect to
one flat tensor (``torch.func.functional_call`` with views into it).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from lmbench.core.errors import InvalidInputError


def get_weights_count(model: nn.Module) -> int:
    """Number of trainable scalar weights of ``model`` (the seed's ``get_weights_count``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class FlatParameters:
    """Names, shapes and sizes of a module's trainable parameters, in a fixed order."""

    def __init__(self, model: nn.Module) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise InvalidInputError(
                f"{type(model).__name__} has no trainable parameters: LM has nothing to fit. "
                "Check that requires_grad is True for the weights you want trained."
            )
        dtypes = {p.dtype for _, p in named}
        if len(dtypes) != 1:
            raise InvalidInputError(
                f"trainable parameters mix dtypes {sorted(map(str, dtypes))}; "
                "cast the model to one dtype (model.float() or model.double())."
            )
        self.model = model
        self.names: list[str] = [n for n, _ in named]
        self.shapes: list[torch.Size] = [p.shape for _, p in named]
        self.numels: list[int] = [p.numel() for _, p in named]
        self.count: int = sum(self.numels)
        self.dtype: torch.dtype = named[0][1].dtype
        self.device: torch.device = named[0][1].device

    def vector(self) -> torch.Tensor:
        """Current weights as one detached flat tensor (a copy)."""
        params = dict(self.model.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def as_dict(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``flat`` shaped like the parameters, keyed by name (for functional_call)."""
        pieces = torch.split(flat, self.numels)
        return {n: t.view(s) for n, t, s in zip(self.names, pieces, self.shapes, strict=True)}

    @torch.no_grad()
    def assign(self, flat: torch.Tensor) -> None:
        """Write ``flat`` into the module's parameters in place."""
        params = dict(self.model.named_parameters())
        for name, value in self.as_dict(flat).items():
            params[name].copy_(value)

    def buffers(self) -> Mapping[str, torch.Tensor]:
        """The module's buffers (running stats etc.), passed unchanged to functional_call."""
        return {n: b.detach() for n, b in self.model.named_buffers()}
