"""The linear algebra of a damping trial: one Cholesky factorisation, two triangular solves, CG.

Each system form (``lmbench.core.system``) solves its own damped system with these pieces and
returns a ``Step``: the step and the reduction of E that the linear model predicts, which the
gain-ratio rule compares with the actual reduction. A matrix that is not positive definite at
this mu (singular J^T J with mu ~ 0, or rounding in float32) gives ``None``: the caller treats it
as a rejected trial and raises mu. ``solve_damped`` is the form-independent entry point.

``conjugate_gradient`` is the one CG loop of the package: the disk cache's ``MatrixFreeSystem``
(``lmbench.core.system``) and the jvp/vjp ``StreamedSystem`` (``lmbench.core.matrix_free``) both
solve with it, each with the Jacobi preconditioner diag(J^T J) + mu D; the latter warm-starts.

Speed on CPU: ``torch.linalg.cholesky_ex`` copies its input and then zeroes the other triangle
of the P x P result (``tril_``), and ``torch.cholesky_solve`` copies the factor once more; at
P = 7000 in float32 these passes cost about half as much as the factorisation itself. So on CPU
the factor is computed by LAPACK's ``?potrf`` (the MKL routine torch itself calls) in a buffer
that every damping trial of the epoch reuses, and the step comes from two triangular solves that
read only the factor's triangle. Elsewhere (CUDA, a torch build without those symbols, or
``LMBENCH_NATIVE_CHOLESKY=0``) the factor comes from ``torch.linalg.cholesky_ex``; both paths
factor the same triangle and solve with the same two triangular solves.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import torch

#: Environment switch: "0" always factors through ``torch.linalg.cholesky_ex``.
NATIVE_CHOLESKY_ENV = "LMBENCH_NATIVE_CHOLESKY"

_Potrf = Callable[..., None]


@dataclass(frozen=True)
class Step:
    """One candidate LM step and the reduction of E it is predicted to bring."""

    delta: torch.Tensor
    predicted_reduction: float


def _call_potrf(routine: _Potrf, work: torch.Tensor) -> int:
    """In-place ?potrf (uplo='L') on the column-major view of a C-contiguous square ``work``.

    That view is ``work.mT``: its lower triangle is the upper triangle of ``work``. On return
    it holds L with A = L L^T; the rest of ``work`` is untouched. Integers are passed in 64-bit
    cells holding small values, which read the same under the LP64 and ILP64 interfaces
    (little-endian); ``info`` is read back from its low 32 bits for the same reason.
    """
    order = ctypes.c_int64(work.shape[0])
    info = ctypes.c_int64(0)
    routine(
        ctypes.c_char_p(b"L"),
        ctypes.byref(order),
        ctypes.c_void_p(work.data_ptr()),
        ctypes.byref(order),
        ctypes.byref(info),
    )
    return ctypes.c_int32(info.value & 0xFFFFFFFF).value


def _bind_potrf(lib: ctypes.CDLL) -> dict[torch.dtype, _Potrf] | None:
    """spotrf_/dpotrf_ of ``lib`` if it has them and they factor a 2 x 2 matrix correctly."""
    try:
        routines: dict[torch.dtype, _Potrf] = {
            torch.float32: lib.spotrf_,
            torch.float64: lib.dpotrf_,
        }
    except AttributeError:
        return None
    for dtype, routine in routines.items():
        routine.restype = None  # type: ignore[attr-defined]
        probe = torch.tensor([[4.0, 2.0], [-7.0, 3.0]], dtype=dtype)  # -7: never read
        expected = torch.tensor([[2.0, 0.0], [1.0, math.sqrt(2.0)]], dtype=dtype)
        if _call_potrf(routine, probe) != 0:
            return None
        if not torch.allclose(torch.tril(probe.mT), expected) or float(probe[1, 0]) != -7.0:
            return None
    return routines


def _from_torch_cpu(bind: Callable[[ctypes.CDLL], dict[torch.dtype, _Potrf] | None]
                    ) -> dict[torch.dtype, _Potrf] | None:
    """The routines ``bind`` finds (and checks) in torch's own CPU library, or None."""
    if os.environ.get(NATIVE_CHOLESKY_ENV, "1") == "0":
        return None
    for path in sorted((Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*")):
        try:
            routines = bind(ctypes.CDLL(str(path)))
        except OSError:
            continue
        if routines is not None:
            return routines
    return None


@functools.cache
def _native_potrf() -> dict[torch.dtype, _Potrf] | None:
    """LAPACK ?potrf from torch's own CPU library (MKL in the x86 wheels), or None."""
    return _from_torch_cpu(_bind_potrf)


def _call_syrk(routine: _Potrf, gram: torch.Tensor, rows: torch.Tensor) -> None:
    """gram += rows^T rows on the upper triangle of row-major ``gram`` (BLAS ?syrk).

    In column-major terms ``rows`` (m x P, C-contiguous) is A = rows^T (P x m, lda = P) and the
    upper triangle of ``gram`` is the lower triangle of its column-major view: C += A A^T with
    uplo='L', trans='N'. Integers in 64-bit cells, as for ``_call_potrf``.
    """
    n, k = ctypes.c_int64(rows.shape[1]), ctypes.c_int64(rows.shape[0])
    scalar = ctypes.c_float if rows.dtype == torch.float32 else ctypes.c_double
    one = scalar(1.0)
    routine(
        ctypes.c_char_p(b"L"), ctypes.c_char_p(b"N"), ctypes.byref(n), ctypes.byref(k),
        ctypes.byref(one), ctypes.c_void_p(rows.data_ptr()), ctypes.byref(n),
        ctypes.byref(one), ctypes.c_void_p(gram.data_ptr()), ctypes.byref(n),
    )


def _bind_syrk(lib: ctypes.CDLL) -> dict[torch.dtype, _Potrf] | None:
    """ssyrk_/dsyrk_ of ``lib`` if it has them and they update a small upper triangle
    correctly (leaving the other triangle untouched)."""
    for single, double in (("ssyrk_", "dsyrk_"), ("mkl_blas_ssyrk", "mkl_blas_dsyrk")):
        try:  # the plain BLAS names, else MKL's own (torch's wheels export only these)
            routines: dict[torch.dtype, _Potrf] = {
                torch.float32: getattr(lib, single), torch.float64: getattr(lib, double)}
            break
        except AttributeError:
            continue
    else:
        return None
    for dtype, routine in routines.items():
        routine.restype = None  # type: ignore[attr-defined]
        rows = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=dtype)
        gram = torch.tensor([[1.0, 1.0, 1.0], [-7.0, 1.0, 1.0], [-7.0, -7.0, 1.0]], dtype=dtype)
        expected = torch.triu(rows.T @ rows + 1.0) + torch.tril(torch.full_like(gram, -7.0), -1)
        _call_syrk(routine, gram, rows)
        if not torch.equal(gram, expected):
            return None
    return routines


@functools.cache
def _native_syrk() -> dict[torch.dtype, _Potrf] | None:
    """BLAS ?syrk from torch's own CPU library, or None."""
    return _from_torch_cpu(_bind_syrk)


def add_upper_gram_native(gram: torch.Tensor, rows: torch.Tensor) -> bool:
    """gram[i, j] += (rows^T rows)[i, j] for j >= i by one BLAS ?syrk (exactly half a GEMM's
    flops) when the CPU library offers it; False (nothing done) elsewhere (CUDA, other dtypes,
    non-contiguous ``gram``, ``LMBENCH_NATIVE_CHOLESKY=0``)."""
    if gram.device.type != "cpu" or not gram.is_contiguous() or rows.dtype != gram.dtype:
        return False
    routines = _native_syrk()
    routine = None if routines is None else routines.get(gram.dtype)
    if routine is None or rows.shape[0] == 0:
        return routine is not None
    _call_syrk(routine, gram, rows.contiguous())
    return True


def _native_routine(matrix: torch.Tensor) -> _Potrf | None:
    """The LAPACK routine that factors ``matrix`` in place on CPU, if there is one."""
    if matrix.device.type != "cpu":
        return None
    routines = _native_potrf()
    return None if routines is None else routines.get(matrix.dtype)


def _native_factor(
    routine: _Potrf, matrix: torch.Tensor, shift: torch.Tensor, work: torch.Tensor
) -> torch.Tensor | None:
    """L of matrix + diag(shift) by LAPACK in ``work``, returned as the view ``work.mT``."""
    work.copy_(matrix)
    work.diagonal().add_(shift)
    if _call_potrf(routine, work) != 0:
        return None
    lower = work.mT
    if not bool(torch.isfinite(lower.diagonal()).all()):
        return None
    return lower


def factor_shifted(
    matrix: torch.Tensor, shift: torch.Tensor, work: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Lower Cholesky factor L of matrix + diag(shift), reading only its upper triangle.

    Only the lower triangle of the result is meaningful: read it with ``solve_factored``.
    On CPU with a ``work`` buffer (C-contiguous, shaped like ``matrix``), LAPACK factors a copy
    in ``work`` and the result is the view ``work.mT`` (its strict upper triangle holds stale
    values). Otherwise the diagonal is shifted in place and restored exactly from a saved copy,
    so the (large) system matrix is never copied. The factorisation is asked of ``matrix.mT``
    (lower triangle): that view of the row-major matrix is column-major, the layout
    LAPACK/cuSOLVER factor in, so the only P x P allocation is the factor itself
    (``upper=True`` on the row-major matrix costs one more P x P transposed copy on CUDA).
    """
    routine = _native_routine(matrix) if work is not None else None
    if (
        routine is not None
        and work is not None
        and work.shape == matrix.shape
        and work.dtype == matrix.dtype
        and work.device == matrix.device
        and work.is_contiguous()
    ):
        return _native_factor(routine, matrix, shift, work)
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


#: Why CG stopped: the residual test was met, the iteration cap was reached, a direction had
#: no positive curvature (p^T A p <= 0: A is not positive definite at this mu, or rounding), or
#: the curvature was NaN (a non-finite operator or right-hand side).
CGStop = Literal["converged", "max_iter", "indefinite", "not_finite"]


@dataclass(frozen=True)
class CGResult:
    """CG's answer: the solution, its (recursively updated) residual, iterations, why it stopped.

    ``iterations`` counts operator products inside the loop (the warm start's one extra product
    is not counted); 0 means the start already met the tolerance. On a breakdown (``indefinite``
    or ``not_finite``) the solution and residual are those before the failing direction.
    """

    solution: torch.Tensor
    residual: torch.Tensor
    iterations: int
    stop: CGStop

    @property
    def converged(self) -> bool:
        """True when ||rhs - A x|| <= rtol * ||rhs|| (by CG's updated residual)."""
        return self.stop == "converged"

    @property
    def indefinite(self) -> bool:
        """True when a direction showed no positive curvature: A is not positive definite."""
        return self.stop == "indefinite"


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    *,
    preconditioner: torch.Tensor | None = None,
    x0: torch.Tensor | None = None,
    rtol: float,
    max_iter: int,
) -> CGResult:
    """Solve A x = rhs for SPD A (``matvec``: v -> A v) by CG, Jacobi-preconditioned if given.

    ``preconditioner`` is the diagonal M of the Jacobi preconditioner (z = r / M); None means
    none (M = I). ``x0`` is a warm start: it is kept only where it lowers the quadratic
    q(x) = 1/2 x^T A x - rhs^T x below q(0) = 0 (one extra product), else CG starts from zero.
    Stops when ||rhs - A x|| <= rtol * ||rhs|| (0 iterations if the start already does), after
    ``max_iter`` iterations, or when a direction p has p^T A p <= 0 or NaN (``CGResult.stop``).
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if not rtol > 0:
        raise ValueError(f"rtol must be > 0, got {rtol}")
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
    if x0 is not None:
        start_residual = rhs - matvec(x0)
        # q(x0) = -1/2 x0^T (rhs + r0): keep x0 only where it lowers the quadratic below q(0)=0
        if float(x0 @ (rhs + start_residual)) > 0.0:
            x, residual = x0.clone(), start_residual
    target = rtol * float(torch.linalg.vector_norm(rhs))
    if float(torch.linalg.vector_norm(residual)) <= target:
        return CGResult(x, residual, 0, "converged")
    z = residual if preconditioner is None else residual / preconditioner
    direction = z.clone()
    rz = float(residual @ z)
    for iteration in range(1, max_iter + 1):
        image = matvec(direction)
        curvature = float(direction @ image)
        if not curvature > 0.0:  # not positive definite (or rounding), or NaN: keep what we have
            stop: CGStop = "not_finite" if math.isnan(curvature) else "indefinite"
            return CGResult(x, residual, iteration, stop)
        alpha = rz / curvature
        x.add_(direction, alpha=alpha)
        residual.sub_(image, alpha=alpha)
        if float(torch.linalg.vector_norm(residual)) <= target:
            return CGResult(x, residual, iteration, "converged")
        if preconditioner is not None:
            torch.div(residual, preconditioner, out=z)
        rz_next = float(residual @ z)
        direction.mul_(rz_next / rz).add_(z)
        rz = rz_next
    return CGResult(x, residual, max_iter, "max_iter")


def cg_tolerance(dtype: torch.dtype) -> float:
    """Relative residual CG aims for: near the dtype's useful precision."""
    return 1e-10 if dtype == torch.float64 else 1e-4


def solve_factored(lower: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """x with L L^T x = rhs by two triangular solves (``cholesky_solve`` copies L on CUDA).

    Only the lower triangle of ``lower`` is read (the native CPU factor's other triangle holds
    stale values).
    """
    y = torch.linalg.solve_triangular(lower, rhs.unsqueeze(1), upper=False)
    return torch.linalg.solve_triangular(lower.mT, y, upper=True).squeeze(1)


@dataclass
class CholeskyWorkspace:
    """The buffer every damping trial of one system factors into (CPU LAPACK path).

    Allocated once per system (per accepted point), not once per trial: a fresh P x P
    allocation costs page faults on every trial. Where no native routine exists the factor comes
    from ``torch.linalg.cholesky_ex`` and no buffer is kept.
    """

    buffer: torch.Tensor | None = field(default=None, repr=False)

    def factor(self, matrix: torch.Tensor, shift: torch.Tensor) -> torch.Tensor | None:
        """Lower factor of matrix + diag(shift) (upper triangle read), or None if not PD."""
        if _native_routine(matrix) is None:
            return factor_shifted(matrix, shift)
        work = self.buffer
        if work is None or work.shape != matrix.shape or work.dtype != matrix.dtype:
            work = torch.empty_like(matrix, memory_format=torch.contiguous_format)
            self.buffer = work
        return factor_shifted(matrix, shift, work)


@dataclass
class GramBuffer:
    """J^T J's P x P buffer, reused from epoch to epoch of one fit: each epoch's system
    overwrites the last one's, which is dropped by then (the weights moved). A fresh zeroed
    buffer costs page faults each epoch (24 ms at P = 4k in float32 on 2 cores, against 5 ms to
    zero a reused one). The Cholesky workspace is not kept between epochs: held while the
    next epoch's Jacobian chunks are formed, it would raise the fit's peak memory by them."""

    gram: torch.Tensor | None = None

    def zeroed(self, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """An n x n zero matrix, the last epoch's buffer when it fits."""
        gram = self.gram
        if gram is None or gram.shape != (n, n) or gram.dtype != dtype or gram.device != device:
            self.gram = torch.zeros(n, n, dtype=dtype, device=device)
            return self.gram
        return gram.zero_()


class DampedSystem(Protocol):
    """A Gauss-Newton system that can solve its own damped system."""

    def solve(self, mu: float, scale_by_diagonal: bool) -> Step | None: ...


def solve_damped(system: DampedSystem, mu: float, scale_by_diagonal: bool) -> Step | None:
    """Solve (J^T J + mu*D) delta = -J^T r in the system's form; None if not solvable."""
    return system.solve(mu, scale_by_diagonal)
