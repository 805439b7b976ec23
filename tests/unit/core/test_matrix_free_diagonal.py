"""The chunked gradient/diagonal pass against the per-sample definition, in float64.

The reference is the definition the pass replaces: each sample's Jacobian block J_i (O x P) by
``torch.func.jacrev``, its curvature factor A_i from ``output_factor``, then
g = sum_i J_i^T A_i^T r^_i and diag = sum_i column sums of (A_i J_i)^2. Models cover the
linear-layer rule (an MLP), the per-sample fallback (a LayerNorm, a Linear used twice, a Linear
on (m, T, F) inputs), several outputs, and chunks that do not divide the rows.
"""

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from lmbench.core.curvature import output_factor
from lmbench.core.distributed import LocalReducer
from lmbench.core.jacobian import ResidualFunction
from lmbench.core.losses import Loss
from lmbench.core.matrix_free import DIAGONAL_ROWS, gradient_and_diagonal
from lmbench.core.params import FlatParameters
from lmbench.core.sources import TensorSource

N_SAMPLES, N_OUTPUTS = 23, 5


class SharedLayers(nn.Module):
    """A LayerNorm and a Linear applied twice: parameters outside the outer-product rule."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 6)
        self.norm = nn.LayerNorm(6)
        self.square = nn.Linear(6, 6)
        self.head = nn.Linear(6, N_OUTPUTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(torch.tanh(self.first(x)))
        h = torch.tanh(self.square(torch.tanh(self.square(h))))
        return self.head(h)


class Sequence(nn.Module):
    """A Linear on (m, T, F) inputs (per-sample gradient is a sum over T), then a flat head."""

    def __init__(self) -> None:
        super().__init__()
        self.step = nn.Linear(3, 4)
        self.head = nn.Linear(8, N_OUTPUTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.step(x)).reshape(x.shape[0], -1))


def model_and_rows(kind: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(1)
    if kind == "mlp":
        model = nn.Sequential(nn.Linear(3, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh(),
                              nn.Linear(6, N_OUTPUTS))
        x = torch.randn(N_SAMPLES, 3)
    elif kind == "shared":
        model, x = SharedLayers(), torch.randn(N_SAMPLES, 3)
    else:
        model, x = Sequence(), torch.randn(N_SAMPLES, 2, 3)
    return model.double(), x.double()


def targets(loss_name: str) -> torch.Tensor:
    if loss_name in ("cross_entropy", "sqrt_cross_entropy"):
        return nn.functional.one_hot(torch.arange(N_SAMPLES) % N_OUTPUTS, N_OUTPUTS).double()
    return torch.randn(N_SAMPLES, N_OUTPUTS, dtype=torch.float64)


def per_sample_definition(loss, model, flat, theta, x, y):
    """(g, diag, 1/2 ||r^||^2) from each sample's explicit Jacobian block."""
    gradient = torch.zeros_like(theta)
    diagonal = torch.zeros_like(theta)
    objective = 0.0
    for i in range(x.shape[0]):

        def outputs(t, i=i):
            return functional_call(model, flat.as_dict(t), (x[i : i + 1],)).reshape(-1)

        block = jacrev(outputs)(theta)  # (O, P)
        out = outputs(theta).unsqueeze(0)
        factor, residuals = output_factor(loss, out, y[i : i + 1], torch.float64)
        rows = block if factor is None else factor[0] @ block
        gradient += rows.T @ residuals[0]
        diagonal += (rows * rows).sum(0)
        objective += 0.5 * float(residuals @ residuals.T)
    return gradient, diagonal, objective


@pytest.mark.parametrize("kind", ["mlp", "shared", "sequence"])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse", "sqrt_cross_entropy"])
@pytest.mark.parametrize("chunk_rows", [7, None])
def test_chunked_pass_equals_the_per_sample_definition(kind, loss_name, chunk_rows):
    assert N_SAMPLES % 7 and N_SAMPLES > DIAGONAL_ROWS  # chunks and blocks leave a remainder
    loss = Loss(loss_name)
    model, x = model_and_rows(kind)
    y = targets(loss_name)
    flat = FlatParameters(model)
    theta = flat.vector()
    source = TensorSource(x, y, chunk_rows=chunk_rows)
    pieces = gradient_and_diagonal(ResidualFunction(flat, N_OUTPUTS), loss, source.chunks, theta,
                                   LocalReducer(), torch.float64, N_OUTPUTS)
    gradient, diagonal, objective = per_sample_definition(loss, model, flat, theta, x, y)
    torch.testing.assert_close(pieces.gradient, gradient, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(pieces.diagonal, diagonal, rtol=1e-10, atol=1e-12)
    assert pieces.objective == pytest.approx(objective, rel=1e-12)
    assert pieces.n_residuals == N_SAMPLES * loss.rows_per_sample(N_OUTPUTS)
    assert bool((pieces.diagonal > 0).all())  # every parameter was reached
