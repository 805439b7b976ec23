"""The residual Jacobian against central finite differences (float64), both modes."""

import pytest
import torch
from torch import nn

from lmbench.core.jacobian import ResidualFunction, choose_jacobian_mode
from lmbench.core.params import FlatParameters, get_weights_count


def finite_difference_jacobian(flat: FlatParameters, x: torch.Tensor, eps: float = 1e-6):
    theta = flat.vector()
    columns = []
    for k in range(theta.numel()):
        bump = torch.zeros_like(theta)
        bump[k] = eps
        flat.assign(theta + bump)
        with torch.no_grad():
            plus = flat.model(x).reshape(-1)
        flat.assign(theta - bump)
        with torch.no_grad():
            minus = flat.model(x).reshape(-1)
        columns.append((plus - minus) / (2 * eps))
    flat.assign(theta)
    return torch.stack(columns, dim=1)


class ScaledResidualNet(nn.Module):
    """A custom module with a buffer, a skip connection and a frozen parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 6)
        self.outer = nn.Linear(6, 3)
        self.skip = nn.Parameter(torch.randn(4, 3))
        self.frozen = nn.Parameter(torch.randn(3), requires_grad=False)
        self.register_buffer("scale", torch.tensor([0.5, 2.0, -1.5]))

    def forward(self, x):
        h = torch.sigmoid(self.inner(x))
        return (self.outer(h) + x @ self.skip) * self.scale + self.frozen


def mlp(inputs=3, hidden=7, outputs=4):
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, outputs))


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("factory", [mlp, ScaledResidualNet], ids=["mlp", "custom"])
def test_jacobian_matches_finite_differences(mode, factory):
    model = factory().double()
    x = torch.randn(9, 3 if factory is mlp else 4, dtype=torch.float64)
    flat = FlatParameters(model)
    n_outputs = model(x[:1]).numel()
    jac, out = ResidualFunction(flat, n_outputs, mode).jacobian(flat.vector(), x)
    reference = finite_difference_jacobian(flat, x)
    assert jac.shape == (9 * n_outputs, get_weights_count(model))
    torch.testing.assert_close(jac, reference, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(out, model(x).reshape(9, -1))


def test_frozen_parameters_and_buffers_are_not_weights():
    model = ScaledResidualNet()
    flat = FlatParameters(model)
    assert "frozen" not in flat.names and "scale" not in flat.names
    assert flat.count == 4 * 6 + 6 + 6 * 3 + 3 + 4 * 3


def test_mode_choice_by_shape():
    assert choose_jacobian_mode(n_params=61, n_outputs=1) == "reverse"
    assert choose_jacobian_mode(n_params=10, n_outputs=100) == "forward"


def test_assign_round_trips_weights():
    model = mlp()
    flat = FlatParameters(model)
    theta = torch.randn(flat.count)
    flat.assign(theta)
    torch.testing.assert_close(flat.vector(), theta)
