"""Matrix-free LM: steps from conjugate gradients on Jacobian-vector products, past P x P.

The step solves (J^T H J + mu D) delta = -J^T g (``lmbench.core.losses``: H the loss's
Gauss-Newton curvature, g its output gradient) without a Jacobian or a P x P matrix anywhere:

* **products** (``GaussNewtonProducts``): for each chunk of rows, u = J v by one
  ``torch.func.jvp`` (forward pass plus tangent), then H u per sample
  (``lmbench.core.curvature``), then J^T (H u) by one ``torch.func.vjp`` (forward pass plus
  backward). Chunks come from the row source one at a time (tensors or a DataLoader), so memory
  is O(P) plus one chunk's activations; the work of one product is two passes over the data,
  about 10 * N * P flops for an MLP (a forward pass being ~2 * N * P). Each product is summed
  over data-parallel workers (``Reducer.sum_``), as are the gradient and the diagonal.
* **gradient and preconditioner** (``lmbench.core.matrix_free_diagonal``):
  once per accepted point, g = J^T r^ by one batched backward pass per chunk, and
  diag(J^T H J) exactly, without forming J^ = A J: linear layers by the outer-product rule
  (k batched backward passes into the layer outputs, then one small product per layer), other
  parameters by per-sample gradients over blocks of ``DIAGONAL_ROWS`` rows, one factor row at
  a time. Memory is independent of N and never O(rows x P).
* **solve** (``StreamedSystem.solve``): preconditioned CG (``lmbench.core.solve``'s
  ``conjugate_gradient``, the loop the disk cache's system uses too) with the
  Jacobi preconditioner diag(J^T H J) + mu D (D = I, or the Marquardt scaling diag(J^T H J) when
  the damping rule scales by the diagonal), warm-started from the previous solve's solution (the
  previous damping trial, or the previous epoch's step).

Truncated CG stopping rule: stop when the relative residual ||b - (B + mu D) x|| / ||b|| falls
to ``cg_tolerance(dtype)`` (1e-4 in float32, 1e-10 in float64), after ``max_iter`` iterations
(the trainer's ``cg_max_iter``), or when a direction shows no positive curvature (rounding).
The warm start is dropped when it is no better than zero on the quadratic model. The predicted
reduction of the linear model comes from CG's own residual r: with (B + mu D) delta = b - r and
b = -g, it is 1/2 (-g^T delta + delta^T r + mu delta^T D delta): right for a truncated solve
too (up to the rounding drift of CG's updated residual), without one more product.
The trainer's ``jacobian_mode`` does not apply here: the gradient/diagonal pass is always
reverse mode (matrix-free problems have P far above O).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import torch
from torch.func import functional_call, jvp, vjp

from lmbench.core.curvature import apply_curvature, output_factor
from lmbench.core.distributed import Reducer
from lmbench.core.jacobian import ResidualFunction
from lmbench.core.losses import Loss
from lmbench.core.matrix_free_diagonal import (
    DIAGONAL_ROWS,
    Chunks,
    GradientAndDiagonal,
    gradient_and_diagonal,
)
from lmbench.core.solve import CGResult, Step, cg_tolerance, conjugate_gradient
from lmbench.core.sources import RowSource
from lmbench.core.stopping import FitClock
from lmbench.core.system import GaussNewtonSystem, SystemName
from lmbench.core.timing import PhaseTimer

__all__ = ["DIAGONAL_ROWS", "CGResult", "GradientAndDiagonal", "gradient_and_diagonal"]


@dataclass
class WarmStart:
    """The last CG solution: where the next solve starts (across damping trials and epochs)."""

    vector: torch.Tensor | None = None

    def initial(self, like: torch.Tensor) -> torch.Tensor | None:
        """The stored solution if it is usable for a system shaped like ``like``."""
        v = self.vector
        if v is None or v.shape != like.shape or not bool(torch.isfinite(v).all()):
            return None
        return v.to(dtype=like.dtype, device=like.device)


def preconditioned_cg(
    operator: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    preconditioner: torch.Tensor,
    rtol: float,
    max_iter: int,
    initial: torch.Tensor | None = None,
) -> CGResult:
    """The old positional spelling of ``lmbench.core.solve.conjugate_gradient`` (same loop)."""
    return conjugate_gradient(operator, rhs, preconditioner=preconditioner, x0=initial,
                              rtol=rtol, max_iter=max_iter)


class GaussNewtonProducts:
    """v -> J^T H J v at fixed weights, streamed over the row source chunk by chunk."""

    def __init__(
        self,
        residual_fn: ResidualFunction,
        loss: Loss,
        chunks: Chunks,
        theta: torch.Tensor,
        reducer: Reducer,
        dtype: torch.dtype,
    ) -> None:
        self.flat = residual_fn.flat
        self.loss = loss
        self.chunks = chunks
        self.theta = theta
        self.reducer = reducer
        self.dtype = dtype
        self.count = 0  # products computed so far (each is two passes over the data)

    def outputs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Model outputs at ``theta`` as (m, O), differentiable in ``theta``."""
        params = self.flat.as_dict(theta)
        out = functional_call(self.flat.model, (params, self.flat.buffers()), (x,))
        return out.reshape(out.shape[0], -1)

    def __call__(self, vector: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(self.theta.numel(), dtype=self.dtype, device=self.theta.device)
        tangent = vector.to(self.theta.dtype)
        for x, y in self.chunks():

            def forward(theta: torch.Tensor, x: torch.Tensor = x) -> torch.Tensor:
                return self.outputs(theta, x)

            out, jv = jvp(forward, (self.theta,), (tangent,))
            factor, _ = output_factor(self.loss, out, y, self.dtype)
            weighted = apply_curvature(factor, jv)
            del jv
            _, pullback = vjp(forward, self.theta)
            (image,) = pullback(weighted.to(out.dtype))
            total.add_(image.to(self.dtype))
            del out, weighted, pullback, image
        self.count += 1
        return self.reducer.sum_(total)


@dataclass(kw_only=True)
class StreamedSystem(GaussNewtonSystem):
    """Gradient, diagonal and the product operator; each solve is warm-started truncated CG."""

    form: ClassVar[SystemName] = "matrix_free"
    products: Callable[[torch.Tensor], torch.Tensor]
    warm: WarmStart = field(default_factory=WarmStart)
    max_iter: int = 500
    rtol: float | None = None
    iterations: list[int] = field(default_factory=list)

    def solve(self, mu: float, scale_by_diagonal: bool) -> Step | None:
        g = self.gradient
        scale = self.scaling(scale_by_diagonal)
        shift = mu * scale + self.penalty

        def damped(v: torch.Tensor) -> torch.Tensor:
            return self.products(v).add_(shift * v)

        rtol = self.rtol if self.rtol is not None else cg_tolerance(g.dtype)
        result = conjugate_gradient(damped, -g, preconditioner=self.scaling(True) + shift,
                                    x0=self.warm.initial(g), rtol=rtol, max_iter=self.max_iter)
        self.iterations.append(result.iterations)
        delta = result.solution
        if not bool(torch.isfinite(delta).all()):
            self.warm.vector = None
            return None
        self.warm.vector = delta
        predicted = 0.5 * float(
            -(g @ delta) + delta @ result.residual + mu * (delta * scale * delta).sum()
        )
        return Step(delta=delta, predicted_reduction=predicted)


class TrainerView(Protocol):
    """What the matrix-free system reads of the trainer's settings."""

    loss: Loss
    reducer: Reducer
    system_dtype: torch.dtype
    cg_max_iter: int


class RunView(Protocol):
    """What it reads of one fit: the rows, the model's residual function, the CG start."""

    source: RowSource
    residual_fn: ResidualFunction
    n_outputs: int
    warm: WarmStart
    clock: FitClock  # the time limit, checked before each chunk


def assemble_streamed(
    trainer: TrainerView, run: RunView, theta: torch.Tensor, timer: PhaseTimer
) -> StreamedSystem:
    """The matrix-free system at ``theta``: one gradient/diagonal pass (timed as Jacobian work);
    the products run later, inside each damping trial's solve."""
    dtype = trainer.system_dtype

    def chunks() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return run.clock.timed_chunks(run.source)

    with timer("time_jacobian"):
        pieces = gradient_and_diagonal(run.residual_fn, trainer.loss, chunks, theta,
                                       trainer.reducer, dtype, run.n_outputs)
    products = GaussNewtonProducts(run.residual_fn, trainer.loss, chunks, theta, trainer.reducer,
                                   dtype)
    return StreamedSystem(gradient=pieces.gradient, diagonal=pieces.diagonal,
                          objective=pieces.objective, n_residuals=pieces.n_residuals,
                          products=products, warm=run.warm, max_iter=trainer.cg_max_iter)
