"""Damped Gauss-Newton solves: one Cholesky factorisation per damping trial, no inverse.

``solve_damped`` returns the step and the reduction of E that the linear model predicts,
``1/2 * (mu * delta^T D delta - g^T delta)``, which the gain-ratio rule compares with the actual
reduction. A system that is not positive definite at this mu (singular J^T J with mu ~ 0, or
rounding in float32) returns ``None``: the caller treats it as a rejected trial and raises mu.
The matrix-free form solves by Jacobi-preconditioned conjugate gradients instead, and computes
the predicted reduction from the operator itself (exact even if CG stopped early).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lmbench.core.system import GaussNewtonSystem


@dataclass(frozen=True)
class Step:
    """One candidate LM step and the reduction of E it is predicted to bring."""

    delta: torch.Tensor
    predicted_reduction: float


def _factor_shifted(matrix: torch.Tensor, shift: torch.Tensor) -> torch.Tensor | None:
    """Lower Cholesky factor L of matrix + diag(shift), reading only its upper triangle.

    The diagonal is shifted in place and restored exactly from a saved copy, so the (large)
    system matrix is never copied. The factorisation is asked of ``matrix.mT`` (lower
    triangle): that view of the row-major matrix is column-major, the layout LAPACK/cuSOLVER
    factor in, so the only P x P allocation is the factor itself (``upper=True`` on the
    row-major matrix costs one more P x P transposed copy on CUDA).
    """
    diagonal = matrix.diagonal()
    saved = diagonal.clone()
    try:
        diagonal.add_(shift)
        factor, info = torch.linalg.cholesky_ex(matrix.mT, upper=False)
    finally:
        diagonal.copy_(saved)
    if int(info) != 0 or not bool(torch.isfinite(factor.diagonal()).all()):
        return None
    return factor


def conjugate_gradient(
    operator: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    preconditioner: torch.Tensor,
    rtol: float,
    max_iter: int,
) -> tuple[torch.Tensor, int]:
    """Solve operator(x) = rhs for SPD ``operator`` with a diagonal preconditioner.

    Returns (x, iterations). Stops when ||residual|| <= rtol * ||rhs|| or after ``max_iter``.
    """
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
    z = residual / preconditioner
    direction = z.clone()
    rz = float(residual @ z)
    target = rtol * float(torch.linalg.vector_norm(rhs))
    for iteration in range(1, max_iter + 1):
        image = operator(direction)
        curvature = float(direction @ image)
        if curvature <= 0.0:  # not positive definite (rounding): keep what we have
            return x, iteration
        alpha = rz / curvature
        x.add_(direction, alpha=alpha)
        residual.sub_(image, alpha=alpha)
        if float(torch.linalg.vector_norm(residual)) <= target:
            return x, iteration
        z = residual / preconditioner
        rz_next = float(residual @ z)
        direction.mul_(rz_next / rz).add_(z)
        rz = rz_next
    return x, max_iter


def cg_tolerance(dtype: torch.dtype) -> float:
    """Relative residual CG aims for: near the dtype's useful precision."""
    return 1e-10 if dtype == torch.float64 else 1e-4


def solve_damped(
    system: GaussNewtonSystem,
    mu: float,
    scale_by_diagonal: bool,
    cg_max_iter: int = 500,
) -> Step | None:
    """Solve (J^T J + mu*D) delta = -J^T r in the system's form; None if not solvable."""
    scale = system.scaling(scale_by_diagonal)
    g = system.gradient
    if system.form == "matrix_free":
        assert system.operator is not None
        gram_matvec = system.operator
        shift = mu * scale

        def damped(v: torch.Tensor) -> torch.Tensor:
            return gram_matvec(v) + shift * v

        delta, _ = conjugate_gradient(
            damped, -g, system.scaling(True) + shift, cg_tolerance(g.dtype), cg_max_iter
        )
        if not bool(torch.isfinite(delta).all()):
            return None
        predicted = -float(g @ delta) - 0.5 * float(delta @ gram_matvec(delta))
        return Step(delta=delta, predicted_reduction=predicted)
    if system.form == "primal":
        assert system.gram is not None
        factor = _factor_shifted(system.gram, mu * scale)
        if factor is None:
            return None
        delta = torch.cholesky_solve(-g.unsqueeze(1), factor, upper=False).squeeze(1)
    else:
        assert system.jacobian is not None and system.residuals is not None
        kernel = system.dual_kernel(scale_by_diagonal)
        shift = torch.full((kernel.shape[0],), mu, dtype=kernel.dtype, device=kernel.device)
        factor = _factor_shifted(kernel, shift)
        if factor is None:
            return None
        z = torch.cholesky_solve(system.residuals.unsqueeze(1), factor, upper=False).squeeze(1)
        delta = -(system.jacobian.T @ z) / scale
    if not bool(torch.isfinite(delta).all()):
        return None
    predicted = 0.5 * float(mu * (delta * scale * delta).sum() - g @ delta)
    return Step(delta=delta, predicted_reduction=predicted)
