"""The benchmarks' problems: a tanh MLP of a chosen weight count on fixed synthetic data."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

#: Input features of every synthetic problem.
N_INPUTS = 32
#: N·O ≈ 2P residual rows per problem of the performance comparison.
ROWS_PER_PARAM = 2.0


def mlp_with_params(n_params: int, n_inputs: int, n_outputs: int) -> nn.Module:
    """One-hidden-layer tanh MLP whose weight count is as close to ``n_params`` as it gets."""
    hidden = max(1, round((n_params - n_outputs) / (n_inputs + 1 + n_outputs)))
    return nn.Sequential(nn.Linear(n_inputs, hidden), nn.Tanh(), nn.Linear(hidden, n_outputs))


@dataclass
class Workload:
    """One MLP regression problem: initial model (never trained in place), data, sizes."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    n_params: int
    n_outputs: int

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_residuals(self) -> int:
        """M = N * O rows of the Jacobian."""
        return self.n_samples * self.n_outputs

    @property
    def device(self) -> torch.device:
        return self.x.device

    def fresh_model(self) -> nn.Module:
        """A copy of the initial model (every run starts from the same weights)."""
        return copy.deepcopy(self.model)


def make_workload(
    n_params: int,
    n_outputs: int = 1,
    rows_per_param: float = ROWS_PER_PARAM,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> Workload:
    """Tanh MLP with ~``n_params`` weights on fixed synthetic data with N·O ≈ rows_per_param·P."""
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = mlp_with_params(n_params, N_INPUTS, n_outputs).to(dev, dtype)
    real = sum(p.numel() for p in model.parameters())
    n_samples = max(1, round(rows_per_param * real / n_outputs))
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n_samples, N_INPUTS, generator=gen, dtype=dtype).to(dev)
    y = torch.tanh(x[:, :n_outputs] * x[:, 1 : n_outputs + 1])
    return Workload(model, x, y, real, n_outputs)
