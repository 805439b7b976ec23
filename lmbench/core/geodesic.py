"""Geodesic acceleration (Transtrum & Sethna 2011, 2012): LM's second-order step correction.

The LM step v solves (J^T J + mu D) v = -J^T r. Following the residuals along v to second order
gives the acceleration a from the same damped matrix,

    (J^T J + mu D) a = -J^T r_vv,    r_vv = d^2/dt^2 r(theta + t v) at t = 0,

the second directional derivative of the residuals along v (here exact: a ``torch.func.jvp`` of
a ``jvp``, pulled back through J^T by one ``vjp``; no finite-difference step to choose). The
trial step is v + a / 2, kept only when the correction is small beside the velocity,
2 ||a|| / ||v|| <= ``ratio`` (else the trial is rejected and mu grows, as for a step that
failed). The reduction the damping rule compares against is the velocity's: the linear model
predicts nothing for the second-order term.

Cost per damping trial: one pass over the rows (jvp-of-jvp and a vjp, about four forward passes)
and two triangular solves with the trial's factor (no second factorisation). It pays on curved,
badly scaled least-squares problems (long narrow valleys) and rarely on networks. It needs the
plain least-squares objective (``mse``: residuals r = f(x) - y) and the primal system.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch.func import jvp, vjp

from lmbench.core.damping import DampingRule
from lmbench.core.distributed import Reducer
from lmbench.core.jacobian import ResidualFunction
from lmbench.core.solve import Step
from lmbench.core.system import GaussNewtonSystem


@dataclass(frozen=True)
class GeodesicAcceleration:
    """The second-order correction of each damped step (see the module docstring).

    ratio: alpha of the acceptance test 2 ||a|| / ||v|| <= alpha (0.75, Transtrum's default).
    """

    ratio: float = 0.75

    def __post_init__(self) -> None:
        if not (self.ratio > 0 and math.isfinite(self.ratio)):
            raise ValueError(
                f"the geodesic acceleration ratio (2 ||a|| / ||v|| <= ratio) must be a finite "
                f"number > 0 (0.75 is the default), got {self.ratio}"
            )

    def check(self, loss_name: str | None, form: str | None = None, engine: str | None = None,
              mini_batch: bool = False) -> None:
        """Refuse what the correction is not defined for here, saying what to use instead: a
        loss other than mse, a system other than the primal one (``form``: the system asked for
        or built; ``auto`` and None pass), an engine without a J^T J factor, mini-batch steps
        (None: not known here)."""
        if loss_name not in (None, "mse"):
            raise ValueError(
                f"geodesic acceleration needs the plain least-squares loss (loss='mse'), not "
                f"{loss_name!r}: its residuals' second derivative is that of the model outputs"
            )
        if form not in (None, "auto", "primal") or engine not in (None, "in_memory",
                                                                   "streaming"):
            raise ValueError(
                f"geodesic acceleration solves with the primal J^T J factor, but this run's "
                f"system is {form or 'auto'!r} on engine {engine or 'in_memory'!r}; use "
                f"form='primal' on the in_memory or streaming engine, or turn the acceleration "
                f"off"
            )
        if mini_batch:
            raise ValueError("geodesic acceleration needs full-batch LM (no mini_batch_size / "
                             "batch_size)")

    def pulled_back_curvature(
        self,
        residual_fn: ResidualFunction,
        chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
        theta: torch.Tensor,
        velocity: torch.Tensor,
        reducer: Reducer,
    ) -> torch.Tensor:
        """J^T r_vv over every row (summed over data-parallel workers), in theta's dtype."""
        direction = velocity.to(theta.dtype)
        total = torch.zeros_like(theta)
        for x, _ in chunks:
            def outputs(t: torch.Tensor, x: torch.Tensor = x) -> torch.Tensor:
                return residual_fn.differentiable_outputs(t, x)

            def along(t: torch.Tensor) -> torch.Tensor:
                return jvp(outputs, (t,), (direction,))[1]

            second = jvp(along, (theta,), (direction,))[1]
            _, pull_back = vjp(outputs, theta)
            total += pull_back(second.detach())[0].detach()
        return reducer.sum_(total)

    def corrected(self, system: GaussNewtonSystem, residual_fn: ResidualFunction,
                  chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], theta: torch.Tensor,
                  velocity: Step, mu: float, damping: DampingRule, reducer: Reducer
                  ) -> Step | None:
        """The trial step v + a / 2 for the velocity v that ``system`` gave at this ``mu``, or
        None when the acceleration is too large (or the damped matrix is not definite)."""
        self.check(None, system.form)
        curvature = self.pulled_back_curvature(residual_fn, chunks, theta, velocity.delta, reducer)
        correction = system.solve_linear(mu, damping.scale_by_diagonal, -curvature)
        return None if correction is None else self.accelerated(velocity, correction)

    def accelerated(self, velocity: Step, acceleration: torch.Tensor) -> Step | None:
        """v + a / 2 with the velocity's predicted reduction, or None when 2||a||/||v|| > ratio
        (the correction is too large to trust: the trial is rejected)."""
        v_norm = float(torch.linalg.vector_norm(velocity.delta))
        a_norm = float(torch.linalg.vector_norm(acceleration))
        if not math.isfinite(a_norm) or v_norm == 0 or 2.0 * a_norm > self.ratio * v_norm:
            return None
        return Step(delta=velocity.delta + 0.5 * acceleration.to(velocity.delta.dtype),
                    predicted_reduction=velocity.predicted_reduction)
