"""The one GEMM + Cholesky "floor": the least work an LM epoch of a given size can do.

J^T J as one full GEMM of the epoch's M x P Jacobian plus one Cholesky of the P x P result, on a
given random J (no Jacobian, no loss, one factorisation). The performance comparison, the
epoch-speed benchmarks and the CI speed gate (as its calibration kernel) all time this one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

#: The gate's calibration size: a fixed M x P, about 10 ms on 2 cores.
CALIBRATION_ROWS = 2048
CALIBRATION_PARAMS = 768


def floor_jacobian(
    n_rows: int,
    n_params: int,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> torch.Tensor:
    """A random M x P Jacobian scaled by 1/sqrt(M), so J^T J is about I when M >= P (the values
    do not matter for the time)."""
    gen = torch.Generator().manual_seed(seed)
    jac = torch.randn(n_rows, n_params, generator=gen, dtype=dtype)
    return jac.to(device) / math.sqrt(n_rows)


def floor_shift(jac: torch.Tensor) -> float:
    """The diagonal shift that keeps J^T J + shift I positive definite (also when M < P)."""
    return 1e-3 if jac.shape[0] >= jac.shape[1] else 1.0


def floor_epoch(jac: torch.Tensor, shift: float | None = None) -> bool:
    """The floor: ``J.T @ J`` as one full GEMM, then one Cholesky; True if it factored."""
    gram = jac.T @ jac
    gram.diagonal().add_(floor_shift(jac) if shift is None else shift)
    _, info = torch.linalg.cholesky_ex(gram)
    return int(info) == 0


def floor_epoch_raw_lapack(jac: torch.Tensor, shift: float | None = None) -> bool:
    """The floor with LAPACK ?potrf called in place (no torch copy/tril around it).

    The engine factors this way on CPU, so this is the floor without the ``torch.linalg``
    wrapper's own P x P passes. Falls back to ``floor_epoch`` where that path is unavailable.
    """
    from lmbench.core import solve

    routines = solve._native_potrf()
    if jac.device.type != "cpu" or routines is None or jac.dtype not in routines:
        return floor_epoch(jac, shift)
    gram = jac.T @ jac
    gram.diagonal().add_(floor_shift(jac) if shift is None else shift)
    if solve._call_potrf(routines[gram.dtype], gram) != 0:
        raise RuntimeError("floor Cholesky failed")
    return True


def floor_epoch_syrk(jac: torch.Tensor, shift: float | None = None) -> bool:
    """The symmetric limit: J^T J's upper triangle by one BLAS ?syrk (half a GEMM's flops),
    then LAPACK ?potrf in place, as the engine forms and factors its primal system on the CPU.

    An epoch that builds J^T J and factors it once can do no less; at M = 2P it is about
    (2 + 1/3) / (4 + 1/3) = 0.54 of ``floor_epoch`` in flops. Falls back to
    ``floor_epoch_raw_lapack`` where the native routines are unavailable (CUDA, other builds).
    """
    from lmbench.core import solve

    routines = solve._native_potrf()
    n = jac.shape[1]
    gram = torch.zeros(n, n, dtype=jac.dtype, device=jac.device)
    if routines is None or jac.dtype not in routines or not solve.add_upper_gram_native(
            gram, jac):
        return floor_epoch_raw_lapack(jac, shift)
    gram.diagonal().add_(floor_shift(jac) if shift is None else shift)
    if solve._call_potrf(routines[gram.dtype], gram) != 0:
        raise RuntimeError("floor Cholesky failed")
    return True


def calibration(seed: int = 0) -> Callable[[], object]:
    """The floor at a fixed size: the speed gate's calibration kernel."""
    jac = floor_jacobian(CALIBRATION_ROWS, CALIBRATION_PARAMS, seed=seed)
    return lambda: floor_epoch(jac)
