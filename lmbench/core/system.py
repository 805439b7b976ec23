"""The Gauss-Newton system of one LM epoch, assembled once and reused by every damping trial.

Objective: E(theta) = 1/2 * ||r||^2 with r = f(x; theta) - y over all N*O residuals (M rows).
An LM step solves (J^T J + mu*D) delta = -J^T r, with D = I or D = diag(J^T J) (Marquardt).

* Primal form (M >= P): A = J^T J (P x P) and g = J^T r are accumulated chunk by chunk, so J is
  never held whole. Only the upper triangle of A is formed (symmetry halves the GEMM work, as in
  Wilamowski & Yu's quasi-Hessian); the Cholesky factorisation reads only that triangle.
* Dual form (M < P): keep J (M x P) and factor the smaller K = J D^-1 J^T (M x M); then
  delta = -D^-1 J^T (K + mu*I)^-1 r, which equals the primal step exactly.
* Matrix-free form (P x P does not fit): only g, diag(J^T J) and an operator v -> J^T (J v)
  (over the on-disk Jacobian cache); the step comes from conjugate gradients.

dtype policy: J is computed in the model's dtype; the system is formed in ``system_dtype``
(default: the model's dtype). float32 is the fast default; pass float64 for ill-conditioned
problems or tight reference comparisons. A Cholesky failure in either dtype is treated as a
rejected damping trial (mu grows), never as NaN weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from lmbench.core.distributed import LocalReducer, Reducer

SystemForm = Literal["auto", "primal", "dual"]
FormName = Literal["primal", "dual", "matrix_free"]

#: Column block of the upper-triangular Gram product; ~512 keeps each GEMM efficient.
#: (Measured on 2 MKL threads at P = 1.2k-7k: 512-wide panels beat 256, 384, 768 and 1024, and
#: beat recursive halving into square blocks at every P but the smallest, by 4-25%.)
GRAM_BLOCK = 512


def accumulate_upper_gram(gram: torch.Tensor, jac: torch.Tensor, block: int = GRAM_BLOCK) -> None:
    """gram[i, j] += (jac^T jac)[i, j] for j >= i only: about half the flops of a full GEMM."""
    n = jac.shape[1]
    for start in range(0, n, block):
        stop = min(start + block, n)
        gram[start:stop, start:].addmm_(jac[:, start:stop].T, jac[:, start:])


def symmetrize_upper(upper: torch.Tensor) -> torch.Tensor:
    """Full symmetric matrix from one whose upper triangle holds the values (for checks/CG)."""
    return torch.triu(upper) + torch.triu(upper, diagonal=1).T


@dataclass
class GaussNewtonSystem:
    """What every damping trial of one epoch needs; built once per accepted point."""

    form: FormName
    gradient: torch.Tensor  # g = J^T r, shape (P,)
    diagonal: torch.Tensor  # diag(J^T J), shape (P,)
    objective: float  # E = 1/2 ||r||^2 at the current weights
    n_residuals: int
    gram: torch.Tensor | None = None  # primal: upper triangle of J^T J
    jacobian: torch.Tensor | None = None  # dual: J (M x P)
    residuals: torch.Tensor | None = None  # dual: r (M,)
    operator: Callable[[torch.Tensor], torch.Tensor] | None = None  # matrix-free: J^T J v
    _kernels: dict[bool, torch.Tensor] = field(default_factory=dict, repr=False)
    _workspace: torch.Tensor | None = field(default=None, repr=False)

    @property
    def gradient_norm(self) -> float:
        """||J^T r||_2, the gradient norm of E (the min-gradient stopping rule reads it)."""
        return float(torch.linalg.vector_norm(self.gradient))

    def scaling(self, by_diagonal: bool) -> torch.Tensor:
        """D of the damping term: ones, or diag(J^T J) floored so zero columns stay damped."""
        if not by_diagonal:
            return torch.ones_like(self.diagonal)
        floor = torch.clamp(self.diagonal.max(), min=torch.finfo(self.diagonal.dtype).tiny)
        return torch.clamp(self.diagonal, min=float(floor) * 1e-12)

    def workspace(self, like: torch.Tensor) -> torch.Tensor:
        """A buffer shaped like ``like`` for the Cholesky factor, shared by all damping trials.

        Allocated once per system (per accepted point), not once per trial: a fresh P x P
        allocation costs page faults on every trial.
        """
        work = self._workspace
        if (
            work is None
            or work.shape != like.shape
            or work.dtype != like.dtype
            or work.device != like.device
        ):
            work = torch.empty_like(like, memory_format=torch.contiguous_format)
            self._workspace = work
        return work

    def dual_kernel(self, by_diagonal: bool) -> torch.Tensor:
        """Upper triangle of K = J D^-1 J^T, computed once per scaling and cached."""
        if by_diagonal not in self._kernels:
            assert self.jacobian is not None
            jac = self.jacobian
            if by_diagonal:
                jac = jac / self.scaling(True).sqrt()
            m = jac.shape[0]
            kernel = torch.zeros(m, m, dtype=jac.dtype, device=jac.device)
            accumulate_upper_gram(kernel, jac.T)
            self._kernels[by_diagonal] = kernel
        return self._kernels[by_diagonal]


class SystemAccumulator:
    """Adds residual chunks (J_c, r_c) into a Gauss-Newton system of a fixed form."""

    def __init__(
        self,
        n_params: int,
        form: FormName,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        if form not in ("primal", "dual", "matrix_free"):
            raise ValueError(f"form must be primal, dual or matrix_free, got {form!r}")
        self.form = form
        self.dtype = dtype
        self.device = device
        self.n_params = n_params
        self.objective = 0.0
        self.n_residuals = 0
        self.gradient = torch.zeros(n_params, dtype=dtype, device=device)
        self.gram: torch.Tensor | None = None
        self.diagonal = torch.zeros(n_params, dtype=dtype, device=device)
        self._jac_chunks: list[torch.Tensor] = []
        self._res_chunks: list[torch.Tensor] = []
        if form == "primal":
            self.gram = torch.zeros(n_params, n_params, dtype=dtype, device=device)

    def add(self, jac: torch.Tensor, residuals: torch.Tensor) -> None:
        """Fold one chunk in: J_c of shape (m, P) and r_c of shape (m,)."""
        jac = jac.to(self.dtype)
        residuals = residuals.to(self.dtype)
        self.gradient.addmv_(jac.T, residuals)
        self.objective += 0.5 * float(residuals @ residuals)
        self.n_residuals += residuals.numel()
        if self.form == "primal":
            accumulate_upper_gram(self.gram, jac)
        elif self.form == "dual":
            self._jac_chunks.append(jac)
            self._res_chunks.append(residuals)
        else:
            self.diagonal.add_((jac * jac).sum(dim=0))

    def reduce(self, reducer: Reducer) -> None:
        """Sum the partial system over data-parallel workers (no-op on one process)."""
        if isinstance(reducer, LocalReducer):
            return
        if self.form == "dual":
            raise ValueError("the dual form cannot be split over workers; use form='primal'")
        totals = torch.tensor([self.objective, self.n_residuals], dtype=torch.float64,
                              device=self.device)
        reducer.sum_(totals)
        self.objective, self.n_residuals = float(totals[0]), int(totals[1])
        reducer.sum_(self.gradient)
        if self.gram is not None:
            reducer.sum_(self.gram)
        else:
            reducer.sum_(self.diagonal)

    def finish(
        self, operator: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> GaussNewtonSystem:
        """The assembled system (matrix-free needs ``operator``: v -> J^T J v)."""
        if self.form == "matrix_free":
            if operator is None:
                raise ValueError("the matrix-free form needs an operator v -> J^T (J v)")
            return GaussNewtonSystem(
                form="matrix_free",
                gradient=self.gradient,
                diagonal=self.diagonal,
                objective=self.objective,
                n_residuals=self.n_residuals,
                operator=operator,
            )
        if self.gram is not None:
            return GaussNewtonSystem(
                form="primal",
                gradient=self.gradient,
                diagonal=self.gram.diagonal().clone(),
                objective=self.objective,
                n_residuals=self.n_residuals,
                gram=self.gram,
            )
        jac = torch.cat(self._jac_chunks) if len(self._jac_chunks) > 1 else self._jac_chunks[0]
        res = torch.cat(self._res_chunks) if len(self._res_chunks) > 1 else self._res_chunks[0]
        return GaussNewtonSystem(
            form="dual",
            gradient=self.gradient,
            diagonal=(jac * jac).sum(dim=0),
            objective=self.objective,
            n_residuals=self.n_residuals,
            jacobian=jac,
            residuals=res,
        )
