"""The Gauss-Newton system of one LM epoch, assembled once and reused by every damping trial.

Objective: E(theta) = 1/2 * ||r||^2 with r = f(x; theta) - y over all N*O residuals (M rows).
An LM step solves (J^T J + mu*D) delta = -J^T r, with D = I, D = diag(J^T J) (Marquardt) or
D = the running maximum of diag(J^T J) over the epochs (More 1978, as MINPACK scales).

* Primal form (M >= P): A = J^T J (P x P) and g = J^T r are accumulated chunk by chunk, so J is
  never held whole. Only the upper triangle of A is formed (``lmbench.core.gram``: half the
  flops of a GEMM, as in Wilamowski & Yu's quasi-Hessian); the Cholesky reads only that.
* Dual form (M < P): keep J (M x P) and factor the smaller K = J D^-1 J^T (M x M); then
  delta = -D^-1 J^T (K + mu*I)^-1 r, which equals the primal step exactly.
* Cache CG form (P x P does not fit): only g, diag(J^T J) and an operator v -> J^T (J v)
  (over the on-disk Jacobian cache); the step comes from conjugate gradients
  (``lmbench.core.solve.conjugate_gradient``); the form is named ``cache_cg``.

Each form is a small type (``PrimalSystem``, ``DualSystem``, ``MatrixFreeSystem``) with one
``solve(mu, scale_by_diagonal)``; ``SystemAccumulator`` builds the one the epoch needs.

dtype policy: J is computed in the model's dtype; the system is formed in ``system_dtype``
(default: the model's dtype). float32 is the fast default; pass float64 for ill-conditioned
problems or tight reference comparisons. A Cholesky failure in either dtype is treated as a
rejected damping trial (mu grows), never as NaN weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

import torch

from lmbench.core.cache import JacobianCache
from lmbench.core.distributed import LocalReducer, Reducer
from lmbench.core.gram import accumulate_upper_gram, trace_of_inverse
from lmbench.core.losses import Loss
from lmbench.core.solve import (
    CholeskyWorkspace,
    GramBuffer,
    Step,
    cg_tolerance,
    conjugate_gradient,
    solve_factored,
)
from lmbench.core.stopping import frozen_weights, scaled_gradient
from lmbench.core.timing import PhaseTimer

SystemForm = Literal["auto", "primal", "dual"]
#: The system a ``SystemAccumulator`` builds (``cache_cg``: CG over the disk cache).
FormName = Literal["primal", "dual", "cache_cg"]
#: A built system's ``form``, as the history reports it: the disk cache's CG system is
#: ``cache_cg``; ``matrix_free`` is the jvp/vjp system of ``lmbench.core.matrix_free``.
SystemName = Literal["primal", "dual", "cache_cg", "matrix_free"]

@dataclass(kw_only=True)
class GaussNewtonSystem:
    """What every damping trial of one epoch needs; built once per accepted point.

    Each form is a small subclass with one ``solve``; they share the gradient g = J^T r, the
    diagonal of J^T J (Marquardt scaling, CG preconditioner) and E at the current weights.
    """

    form: ClassVar[SystemName]
    gradient: torch.Tensor  # g = J^T r (+ lambda w when penalised), shape (P,)
    diagonal: torch.Tensor  # diag(J^T J) (+ lambda when penalised), shape (P,)
    objective: float  # 1/2 ||r||^2 at the current weights (of the GGN rows)
    n_residuals: int
    penalty: float = 0.0  # lambda of the weight penalty (lambda / 2) ||w||^2
    weights: torch.Tensor | None = None  # w, kept when penalised (the dual step needs it)
    scale_floor: torch.Tensor | None = None  # More's running max of diag(J^T J), if used

    def penalised(self, penalty: float, theta: torch.Tensor) -> GaussNewtonSystem:
        """The system of E + (penalty / 2) ||w||^2 at ``theta``: sqrt(penalty) I appended to J,
        so g gains penalty * w and diag(J^T J) gains penalty (``lmbench.core.regularization``)."""
        if penalty == 0:
            return self
        w = theta.to(self.gradient.dtype)
        return replace(self, penalty=float(penalty), weights=w,
                       gradient=self.gradient + penalty * w, diagonal=self.diagonal + penalty)

    def effective_parameters(self, penalty: float) -> float:
        """gamma = P - penalty tr((J^T J + penalty I)^-1) of the unpenalised system, or NaN
        where the form has no factorisation to take the trace from."""
        return math.nan

    def with_scale_floor(self, floor: torch.Tensor) -> GaussNewtonSystem:
        """The system whose Marquardt scaling is max(diag(J^T J), ``floor``) (More's scaling:
        ``floor`` is the running maximum of the diagonals of the epochs before)."""
        return replace(self, scale_floor=floor)

    @property
    def gradient_norm(self) -> float:
        """||J^T r + lambda w||_2, the gradient norm of F (the min-gradient rule reads it)."""
        return float(torch.linalg.vector_norm(self.gradient))

    @property
    def scaled_gradient(self) -> float:
        """MINPACK's gtol measure (``stopping.scaled_gradient``), the penalty's rows included."""
        residual_norm = math.sqrt(max(2.0 * self.penalised_objective, 0.0))
        return scaled_gradient(self.gradient, self.diagonal.sqrt(), residual_norm)

    @property
    def penalised_objective(self) -> float:
        """F = E + (lambda / 2) ||w||^2 at the system's weights."""
        if self.penalty == 0 or self.weights is None:
            return self.objective
        return self.objective + 0.5 * self.penalty * float(self.weights @ self.weights)

    def scaling(self, by_diagonal: bool) -> torch.Tensor:
        """D of the damping term: ones, or diag(J^T J) (at least ``scale_floor``, More's
        running maximum, when set) floored so zero columns stay damped."""
        if not by_diagonal:
            return torch.ones_like(self.diagonal)
        diagonal = self.diagonal if self.scale_floor is None else torch.maximum(
            self.diagonal, self.scale_floor)
        floor = torch.clamp(diagonal.max(), min=torch.finfo(diagonal.dtype).tiny)
        return torch.clamp(diagonal, min=float(floor) * 1e-12)

    def undamped_reduction(self, theta: torch.Tensor) -> float:
        """The reduction of F an undamped step from ``theta`` could bring by the diagonal
        estimate 1/2 sum_j g_j^2 / A_jj (A = J^T J + penalty I; = F sum_j cos_j^2 unpenalised),
        over the weights neither without curvature nor frozen (``stopping.frozen_weights``)."""
        norm = math.sqrt(max(2.0 * self.penalised_objective, 0.0))
        used = (self.diagonal > 0) & ~frozen_weights(theta, self.diagonal.sqrt(), norm)
        return 0.5 * float((self.gradient[used] ** 2 / self.diagonal[used]).sum())

    def held_back(self, mu: float, scale_by_diagonal: bool) -> bool:
        """Whether mu withholds most of what an undamped step could gain (then the step says
        nothing of convergence), by the diagonal estimate: sum_j g_j^2 / (A_jj + mu D_j) is
        below half of sum_j g_j^2 / A_jj. Each weight counts by its squared cosine with the
        residuals, so a column that carries the gradient but whose curvature has faded below
        mu D_j holds the step back however small its share of the step."""
        used = self.diagonal > 0
        weights, curvature = self.gradient[used] ** 2, self.diagonal[used]
        damped = curvature + mu * self.scaling(scale_by_diagonal)[used]
        return float((weights / damped).sum()) < 0.5 * float((weights / curvature).sum())

    def solve(self, mu: float, scale_by_diagonal: bool) -> Step | None:
        """The step of (J^T J + penalty I + mu*D) delta = -g, or None when the system is not
        solvable."""
        raise NotImplementedError

    def _step(self, delta: torch.Tensor, mu: float, scale: torch.Tensor) -> Step | None:
        """The step with the linear model's reduction 1/2 (mu delta^T D delta - g^T delta)."""
        if not bool(torch.isfinite(delta).all()):
            return None
        predicted = 0.5 * float(mu * (delta * scale * delta).sum() - self.gradient @ delta)
        return Step(delta=delta, predicted_reduction=predicted)


@dataclass(kw_only=True)
class PrimalSystem(GaussNewtonSystem):
    """A = J^T J (upper triangle) factored with a shifted diagonal per trial."""

    form: ClassVar[SystemName] = "primal"
    gram: torch.Tensor
    workspace: CholeskyWorkspace = field(default_factory=CholeskyWorkspace, repr=False)

    _factored: tuple[float, bool, torch.Tensor] | None = field(default=None, repr=False)

    def solve(self, mu: float, scale_by_diagonal: bool) -> Step | None:
        scale = self.scaling(scale_by_diagonal)
        factor = self.workspace.factor(self.gram, mu * scale + self.penalty)
        self._factored = None if factor is None else (mu, scale_by_diagonal, factor)
        if factor is None:
            return None
        return self._step(solve_factored(factor, -self.gradient), mu, scale)

    def solve_linear(self, mu: float, scale_by_diagonal: bool, rhs: torch.Tensor
                     ) -> torch.Tensor | None:
        """x with (J^T J + penalty I + mu D) x = rhs, reusing the last ``solve``'s factor when it
        was at this mu and scaling (geodesic acceleration's second solve)."""
        stale = self._factored is None or self._factored[:2] != (mu, scale_by_diagonal)
        if stale and self.solve(mu, scale_by_diagonal) is None or self._factored is None:
            return None
        return solve_factored(self._factored[2], rhs.to(self.gram.dtype))

    def effective_parameters(self, penalty: float) -> float:
        self._factored = None  # the trace's factorisation reuses the workspace's buffer
        n_params = self.gram.shape[0]
        if penalty <= 0:
            return float(n_params)
        shift = torch.full((n_params,), penalty, dtype=self.gram.dtype, device=self.gram.device)
        return n_params - penalty * trace_of_inverse(self.workspace.factor(self.gram, shift))


@dataclass(kw_only=True)
class DualSystem(GaussNewtonSystem):
    """J (M x P) kept; an M x M system factored per trial (Woodbury), no P x P matrix.

    With S = penalty + mu D (diagonal) written as c B (a scalar c, a diagonal B) and
    K_B = J B^-1 J^T, the primal step delta = -(J^T J + S)^-1 (J^T r + penalty w) is

        delta = -(penalty v + B^-1 J^T (c I + K_B)^-1 (r - penalty J v)),   v = S^-1 w

    (push-through for the J^T r part, Woodbury for the penalty's, which is not in J^T's range).
    Unpenalised, that is -D^-1 J^T (K + mu I)^-1 r with K = J D^-1 J^T cached per scaling;
    penalised with the Marquardt scaling, B = S and K_B is formed for each trial.
    """

    form: ClassVar[SystemName] = "dual"
    jacobian: torch.Tensor
    residuals: torch.Tensor
    workspace: CholeskyWorkspace = field(default_factory=CholeskyWorkspace, repr=False)
    _kernels: dict[bool, torch.Tensor] = field(default_factory=dict, repr=False)

    def kernel(self, by_diagonal: bool) -> torch.Tensor:
        """Upper triangle of K = J D^-1 J^T, computed once per scaling and cached."""
        if by_diagonal not in self._kernels:
            self._kernels[by_diagonal] = self._gram_of(
                self.scaling(True) if by_diagonal else None)
        return self._kernels[by_diagonal]

    def _gram_of(self, base: torch.Tensor | None) -> torch.Tensor:
        """Upper triangle of J B^-1 J^T (B = I when ``base`` is None)."""
        jac = self.jacobian if base is None else self.jacobian / base.sqrt()
        m = jac.shape[0]
        kernel = torch.zeros(m, m, dtype=jac.dtype, device=jac.device)
        accumulate_upper_gram(kernel, jac.T)
        return kernel

    def penalised(self, penalty: float, theta: torch.Tensor) -> GaussNewtonSystem:
        return self._unscaled_kernels(super().penalised(penalty, theta))

    def with_scale_floor(self, floor: torch.Tensor) -> GaussNewtonSystem:
        return self._unscaled_kernels(super().with_scale_floor(floor))

    def _unscaled_kernels(self, system: GaussNewtonSystem) -> GaussNewtonSystem:
        """``system`` keeping only the unscaled J J^T: the Marquardt scaling has moved."""
        if system is self:
            return system
        kept = {False: self._kernels[False]} if False in self._kernels else {}
        return replace(system, _kernels=kept)

    def solve(self, mu: float, scale_by_diagonal: bool) -> Step | None:
        scale = self.scaling(scale_by_diagonal)
        if not scale_by_diagonal:  # S = (penalty + mu) I
            base, c, kernel = None, self.penalty + mu, self.kernel(False)
        elif self.penalty == 0:  # S = mu D
            base, c, kernel = scale, mu, self.kernel(True)
        else:  # S = penalty + mu D, not a multiple of a fixed diagonal
            base = self.penalty + mu * scale
            c, kernel = 1.0, self._gram_of(base)
        shift = torch.full((kernel.shape[0],), c, dtype=kernel.dtype, device=kernel.device)
        factor = self.workspace.factor(kernel, shift)
        if factor is None:
            return None
        rhs = self.residuals
        if self.penalty > 0:
            assert self.weights is not None
            v = self.weights / (self.penalty + mu * scale)
            rhs = rhs - self.penalty * (self.jacobian @ v)
        z = solve_factored(factor, rhs)
        back = self.jacobian.T @ z
        delta = -(back if base is None else back / base)
        if self.penalty > 0:
            delta = delta - self.penalty * v
        return self._step(delta, mu, scale)

    def effective_parameters(self, penalty: float) -> float:
        """By Woodbury, gamma = M - penalty tr((J J^T + penalty I)^-1) (M x M, not P x P)."""
        m, n_params = self.jacobian.shape
        if penalty <= 0:
            return float(min(m, n_params))
        kernel = self.kernel(False)
        shift = torch.full((m,), penalty, dtype=kernel.dtype, device=kernel.device)
        return m - penalty * trace_of_inverse(self.workspace.factor(kernel, shift))


@dataclass(kw_only=True)
class MatrixFreeSystem(GaussNewtonSystem):
    """Only v -> J^T J v (over the disk cache); steps from Jacobi-preconditioned CG.

    The predicted reduction comes from the operator itself, -g^T delta - 1/2 delta^T J^T J
    delta, which is exact even when CG stopped early. CG starts from zero on every trial.
    """

    form: ClassVar[SystemName] = "cache_cg"
    operator: Callable[[torch.Tensor], torch.Tensor]
    max_iter: int = 500

    def solve(self, mu: float, scale_by_diagonal: bool) -> Step | None:
        g = self.gradient
        shift = mu * self.scaling(scale_by_diagonal) + self.penalty

        def damped(v: torch.Tensor) -> torch.Tensor:
            return self.operator(v) + shift * v

        result = conjugate_gradient(damped, -g, preconditioner=self.scaling(True) + shift,
                                    rtol=cg_tolerance(g.dtype), max_iter=self.max_iter)
        if result.stop == "not_finite":  # NaN curvature (NaN operator or gradient): no step
            return None
        delta = result.solution
        if not bool(torch.isfinite(delta).all()):
            return None
        curvature = float(delta @ self.operator(delta)) + self.penalty * float(delta @ delta)
        predicted = -float(g @ delta) - 0.5 * curvature
        return Step(delta=delta, predicted_reduction=predicted)


class SystemAccumulator:
    """Adds residual chunks (J_c, r_c) into a Gauss-Newton system of a fixed form."""

    def __init__(
        self,
        n_params: int,
        form: FormName,
        dtype: torch.dtype,
        device: torch.device,
        gram_buffer: GramBuffer | None = None,
    ) -> None:
        if form not in ("primal", "dual", "cache_cg"):
            raise ValueError(f"form must be primal, dual or cache_cg, got {form!r}")
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
            self.gram = (gram_buffer or GramBuffer()).zeroed(n_params, dtype, device)

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

    def assemble(
        self,
        chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
        jacobian: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        loss: Loss,
        reducer: Reducer,
        cache: JacobianCache | None,
        timer: PhaseTimer,
        cg_max_iter: int = 500,
    ) -> GaussNewtonSystem:
        """Fold every chunk's GGN rows in (timed as Jacobian vs system work) and finish.

        ``jacobian(x)`` gives (J, outputs) of a chunk; ``loss`` turns them into rows (J^, r^).
        With a ``cache`` the rows are also written to disk and the system is matrix-free over it.
        """
        if cache is not None:
            cache.start_epoch()
        for x, y in chunks:
            with timer("time_jacobian"):
                jac, out = jacobian(x)
                jac, residuals = loss.gauss_newton_rows(jac, out, y, self.dtype)
            with timer("time_system"):
                self.add(jac, residuals)
                if cache is not None:
                    cache.append(jac, residuals)
            del jac, out, residuals  # free this chunk before the next one is computed
        with timer("time_system"):
            if cache is not None:
                cache.finish_epoch()
            self.reduce(reducer)
        if cache is None:
            return self.finish()

        def gram_matvec(vector: torch.Tensor) -> torch.Tensor:
            return reducer.sum_(cache.gram_matvec(vector))

        return self.finish(operator=gram_matvec, cg_max_iter=cg_max_iter)

    def finish(
        self,
        operator: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cg_max_iter: int = 500,
    ) -> GaussNewtonSystem:
        """The assembled system (matrix-free needs ``operator``: v -> J^T J v)."""
        common = {"gradient": self.gradient, "objective": self.objective,
                  "n_residuals": self.n_residuals}
        if self.form == "cache_cg":
            if operator is None:
                raise ValueError("the cache_cg form needs an operator v -> J^T (J v)")
            return MatrixFreeSystem(diagonal=self.diagonal, operator=operator,
                                    max_iter=cg_max_iter, **common)
        if self.gram is not None:
            return PrimalSystem(diagonal=self.gram.diagonal().clone(), gram=self.gram, **common)
        jac = torch.cat(self._jac_chunks) if len(self._jac_chunks) > 1 else self._jac_chunks[0]
        res = torch.cat(self._res_chunks) if len(self._res_chunks) > 1 else self._res_chunks[0]
        return DualSystem(diagonal=(jac * jac).sum(dim=0), jacobian=jac, residuals=res, **common)


def default_system_dtype(model_dtype: torch.dtype) -> torch.dtype:
    """The model's dtype, or float32 for half precision and bfloat16 (no Cholesky for those)."""
    return model_dtype if model_dtype in (torch.float32, torch.float64) else torch.float32
