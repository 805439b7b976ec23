"""The one reference LM: the textbook seed-rule epoch in plain torch, to compare lmbench against.

``PlainVmapLM`` is the ~30-line epoch: the Jacobian by ``vmap(jacrev)`` (or, with
``per_residual=True``, as the original library built it: one ``torch.autograd.grad`` per
residual, M backward passes), a separate forward pass for r, the full ``J.T @ J``, then
``torch.linalg.solve(JtJ + mu I, -g)`` per damping trial until E = 1/2 ||r||^2 does not increase,
with the seed rule (mu /= factor after a success, mu *= factor after a failure).

``LMSettings`` is the damping every compared implementation follows, and
``LMSettings.trainer_settings`` is lmbench's own trainer set up the same way.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from lmbench.core.damping import SeedDamping
from lmbench.core.settings import TrainerSettings


@dataclass(frozen=True)
class LMSettings:
    """The damping both libraries follow: seed rule, mu_init, factor (``demping_coef``)."""

    mu_init: float = SeedDamping.mu_init
    factor: float = SeedDamping.factor
    inner_steps: int = TrainerSettings.inner_steps
    mu_min: float = TrainerSettings.mu_min
    mu_max: float = TrainerSettings.mu_max

    def trainer_settings(self, max_epochs: int = 1, **changes: Any) -> TrainerSettings:
        """lmbench's settings with this damping and no min-error stop (``changes``: any other
        ``TrainerSettings`` field, e.g. ``form`` or ``jacobian_budget_bytes``)."""
        return TrainerSettings(
            damping="seed",
            mu_init=self.mu_init,
            damping_factor=self.factor,
            inner_steps=self.inner_steps,
            max_epochs=max_epochs,
            min_error=None,
            mu_max=self.mu_max,
            mu_min=self.mu_min,
            **changes,
        )


@dataclass
class EpochOutcome:
    """One epoch of one implementation: its time, the loss after it, trials, acceptance, and
    (lmbench only) the split of the time into Jacobian / system / solve / evaluate."""

    epoch_time_s: float
    loss: float
    trials: int
    accepted: bool
    split: dict[str, float] = field(default_factory=dict)


class PlainVmapLM:
    """The textbook LM epoch: vmap(jacrev) J, full JᵀJ, ``linalg.solve``, the seed rule."""

    def __init__(self, model: nn.Module, settings: LMSettings | None = None,
                 per_residual: bool = False) -> None:
        self.settings = settings or LMSettings()
        self.model, self.mu, self.per_residual = model, self.settings.mu_init, per_residual
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def outputs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [math.prod(s) for s in self.shapes])
        params = {n: t.view(s) for n, t, s in zip(self.names, pieces, self.shapes, strict=True)}
        return functional_call(self.model, params, (x,)).reshape(x.shape[0], -1)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """The M x P Jacobian of the outputs at ``theta``."""
        if self.per_residual:
            theta = self.theta.detach().requires_grad_(True)
            rows = self.outputs(theta, x).reshape(-1)
            return torch.stack([torch.autograd.grad(rows[i], theta, retain_graph=True)[0]
                                for i in range(rows.numel())])
        row = lambda t, xi: self.outputs(t, xi.unsqueeze(0)).reshape(-1)  # noqa: E731
        return vmap(jacrev(row), in_dims=(None, 0))(self.theta, x).reshape(-1, self.theta.numel())

    def step(self, x: torch.Tensor, y: torch.Tensor) -> EpochOutcome:
        """One epoch: the system once, then trials until E does not increase."""
        started = time.perf_counter()
        jac = self.jacobian(x)
        with torch.no_grad():
            r = (self.outputs(self.theta, x) - y).reshape(-1)
            jtj, g = jac.T @ jac, jac.T @ r
            objective = 0.5 * float(r @ r)
            eye = torch.eye(jtj.shape[0], dtype=jtj.dtype, device=jtj.device)
            for trial in range(1, self.settings.inner_steps + 1):
                candidate = self.theta + torch.linalg.solve(jtj + self.mu * eye, -g)
                r_new = (self.outputs(candidate, x) - y).reshape(-1)
                new_objective = 0.5 * float(r_new @ r_new)
                if math.isfinite(new_objective) and new_objective <= objective:
                    self.theta, self.mu = candidate, max(self.mu / self.settings.factor,
                                                         self.settings.mu_min)
                    loss = 2.0 * new_objective / r_new.numel()
                    return EpochOutcome(time.perf_counter() - started, loss, trial, True)
                self.mu *= self.settings.factor
        loss = 2.0 * objective / r.numel()
        return EpochOutcome(time.perf_counter() - started, loss, self.settings.inner_steps, False)


def reference_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mu: float,
                    objective: float | None = None) -> EpochOutcome:
    """One ``PlainVmapLM`` epoch of ``model`` starting from damping ``mu`` (``objective``, the
    starting E, is recomputed with r and only kept for the benchmarks' call signature)."""
    return PlainVmapLM(model, LMSettings(mu_init=mu)).step(x, y)


def seed_style_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mu: float,
                     objective: float | None = None) -> EpochOutcome:
    """The same epoch with the original library's Jacobian: one autograd.grad per residual."""
    return PlainVmapLM(model, LMSettings(mu_init=mu), per_residual=True).step(x, y)


def starting_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """E = 1/2 ||f(x) - y||^2 at the current weights."""
    with torch.no_grad():
        return 0.5 * float((model(x) - y).pow(2).sum())
