"""Convergence against scipy and on the classic LM benchmark problems."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares
from torch import nn

from lmbench.core import LevenbergMarquardt, StoppingRules


class ExpDecay(nn.Module):
    """y = a * exp(-b x) + c: a small nonlinear least-squares problem."""

    def __init__(self, a=1.0, b=0.5, c=0.0):
        super().__init__()
        self.coef = nn.Parameter(torch.tensor([a, b, c], dtype=torch.float64))

    def forward(self, x):
        a, b, c = self.coef
        return a * torch.exp(-b * x) + c


def test_curve_fit_reaches_scipy_lm_cost():
    rng = np.random.default_rng(3)
    x = np.linspace(0, 4, 60)
    y = 2.5 * np.exp(-1.3 * x) + 0.5 + 0.02 * rng.normal(size=x.size)
    start = np.array([1.0, 0.5, 0.0])

    reference = least_squares(
        lambda p: p[0] * np.exp(-p[1] * x) + p[2] - y, start, method="lm", xtol=1e-15,
        ftol=1e-15, gtol=1e-15,
    )
    model = ExpDecay(*start)
    LevenbergMarquardt(
        model, stopping=StoppingRules(max_epochs=200, min_error=None, min_gradient=1e-12),
        mu_min=1e-12,
    ).fit(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y).unsqueeze(1))
    with torch.no_grad():
        ours = 0.5 * float(((model(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).sum())
    assert ours == pytest.approx(reference.cost, rel=1e-6)
    np.testing.assert_allclose(model.coef.detach().numpy(), reference.x, rtol=1e-5)


def bipolar_parity(bits: int):
    x = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=bits)), dtype=torch.float64)
    return x, -x.prod(dim=1, keepdim=True)


@pytest.mark.parametrize(("bits", "hidden"), [(2, 3), (3, 3)], ids=["xor_2-3-1", "parity3_3-3-1"])
def test_classic_parity_problems_converge_from_95_percent_of_starts(bits, hidden):
    x, y = bipolar_parity(bits)
    successes = 0
    for seed in range(50):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(bits, hidden), nn.Tanh(), nn.Linear(hidden, 1)).double()
        history = LevenbergMarquardt(
            net, stopping=StoppingRules(max_epochs=200, min_error=1e-4)
        ).fit(x, y)
        successes += history.loss[-1] < 1e-4
    assert successes >= 48  # >= 95% of 50


def test_sinc_regression_reaches_1e_5():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 2000).unsqueeze(1)
    y = torch.sinc(10 * x / torch.pi)  # sin(10x) / (10x)
    net = nn.Sequential(nn.Linear(1, 20), nn.Tanh(), nn.Linear(20, 1))
    history = LevenbergMarquardt(
        net, stopping=StoppingRules(max_epochs=1000, min_error=1e-5)
    ).fit(x, y)
    assert history.loss[-1] < 1e-5
    assert history.epochs <= 1000
