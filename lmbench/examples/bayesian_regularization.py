"""Plain, weight-decay and Bayesian LM on a network far too large for its data.

A 1-hidden-layer tanh MLP (1-50-1: 151 weights) fits 30 noisy samples of sin(3x) on [-1, 1]
(noise sd 0.3). Plain LM interpolates the noise; weight decay (lambda picked from a grid on 30
more noisy validation samples) and Bayesian regularisation (no validation set: trainbr's way)
shrink it. Test error: MSE against the noise-free function on 400 points. Prints one line per
seed and the means, with gamma / P (effective parameters over weights).

    python -m lmbench.examples.bayesian_regularization [--seeds 5] [--epochs 200]
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch
from torch import nn

from lmbench.core import TrainerSettings

WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
F64 = torch.float64


def noisy_samples(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, 1, generator=generator, dtype=F64) * 2 - 1
    return x, torch.sin(3 * x) + 0.3 * torch.randn(n, 1, generator=generator, dtype=F64)


def network(seed: int, hidden: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1)).to(F64)


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean())


def one_seed(seed: int, epochs: int, hidden: int) -> dict[str, tuple[float, float]]:
    """{variant: (test MSE, gamma / P)} for one draw of the data and the initial weights."""
    generator = torch.Generator().manual_seed(seed)
    x, y = noisy_samples(30, generator)
    x_val, y_val = noisy_samples(30, generator)
    x_test = torch.linspace(-1, 1, 400, dtype=F64).unsqueeze(1)
    y_test = torch.sin(3 * x_test)
    base = TrainerSettings(max_epochs=epochs, min_error=None, mu_max=1e20)
    results: dict[str, tuple[float, float]] = {}

    model = network(seed, hidden)
    base.fit(model, x, y)
    results["plain"] = (mse(model, x_test, y_test), math.nan)

    fitted = []
    for lam in WEIGHT_DECAYS:
        model = network(seed, hidden)
        base.with_(weight_decay=lam).fit(model, x, y)
        fitted.append((mse(model, x_val, y_val), lam, model))
    _, _, model = min(fitted, key=lambda item: item[0])
    results["weight_decay"] = (mse(model, x_test, y_test), math.nan)

    model = network(seed, hidden)
    history = base.with_(regularization="bayesian").fit(model, x, y)
    results["bayesian"] = (mse(model, x_test, y_test), history.gamma[-1] / history.n_params)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=50)
    args = parser.parse_args(argv)
    rows = [one_seed(seed, args.epochs, args.hidden) for seed in range(args.seeds)]
    for seed, row in enumerate(rows):
        cells = "  ".join(f"{name} {test:.4f}" for name, (test, _) in row.items())
        print(f"seed {seed}: test MSE  {cells}  bayesian gamma/P {row['bayesian'][1]:.3f}")
    for name in rows[0]:
        tests = [row[name][0] for row in rows]
        print(f"mean {name:>12}: test MSE {statistics.fmean(tests):.4f} "
              f"(median {statistics.median(tests):.4f})")
    print(f"mean bayesian gamma/P: {statistics.fmean(row['bayesian'][1] for row in rows):.3f} "
          f"of P = {3 * args.hidden + 1} weights")


if __name__ == "__main__":
    main()
