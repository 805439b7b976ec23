"""Residual Jacobians of any ``nn.Module`` with ``torch.func``.

For a chunk of m samples with O outputs each, the residuals are r = f(x; theta) - y flattened to
m*O values, and J = dr/dtheta has shape (m*O, P). Two ways to get it, chosen by shape:

* reverse mode, per sample: ``vmap(jacrev(f_i))`` gives each sample's (O, P) block with O
  vector-Jacobian products batched over the m samples; cost ~ O backward passes of the batch.
* forward mode: ``jacfwd(f)`` pushes P tangents through the whole batch; cost ~ P forward passes.

Reverse mode wins whenever P > O, which is every network worth training with LM; forward mode
is kept for models with many outputs and few weights. Both return the model outputs as an
auxiliary value, so the residuals come from the same forward pass (no second forward).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.func import functional_call, jacfwd, jacrev, vmap

from lmbench.core.params import FlatParameters

JacobianMode = Literal["auto", "reverse", "forward"]


def choose_jacobian_mode(n_params: int, n_outputs: int) -> Literal["reverse", "forward"]:
    """Forward mode only when the tangents (P) are fewer than the per-sample outputs (O)."""
    return "forward" if n_params < n_outputs else "reverse"


class ResidualFunction:
    """r(theta) = model(x; theta) - y for one chunk, its Jacobian, and the plain forward pass."""

    def __init__(self, flat: FlatParameters, n_outputs: int, mode: JacobianMode = "auto") -> None:
        self.flat = flat
        self.mode: Literal["reverse", "forward"] = (
            choose_jacobian_mode(flat.count, n_outputs) if mode == "auto" else mode
        )

    def outputs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Model outputs at ``theta`` as an (m, O) tensor, without autograd bookkeeping."""
        with torch.no_grad():
            return self._batched(theta, x)

    def differentiable_outputs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Model outputs at ``theta`` as an (m, O) tensor that ``torch.func`` can differentiate
        (geodesic acceleration takes its second directional derivative)."""
        return self._batched(theta, x)

    def jacobian(
        self, theta: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(J, outputs): J of shape (m*O, P), outputs of shape (m, O), from one pass."""
        if self.mode == "forward":
            jac, out = jacfwd(self._batched_with_aux, has_aux=True)(theta, x)
        else:
            jac, out = vmap(jacrev(self._single_with_aux, has_aux=True), in_dims=(None, 0))(
                theta, x
            )
        return jac.reshape(-1, self.flat.count), out

    def _batched(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params = self.flat.as_dict(theta)
        out = functional_call(self.flat.model, (params, self.flat.buffers()), (x,))
        return out.reshape(out.shape[0], -1)

    def _batched_with_aux(
        self, theta: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._batched(theta, x)
        return out, out

    def _single_with_aux(
        self, theta: torch.Tensor, x_row: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._batched(theta, x_row.unsqueeze(0)).squeeze(0)
        return out, out
