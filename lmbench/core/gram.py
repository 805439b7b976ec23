"""The symmetric products of LM's systems: the upper triangle of J^T J (or of J J^T for the
dual kernel), a full matrix from that triangle, and the trace of an inverse from its factor.

On the CPU the triangle is one BLAS ``?syrk`` (``lmbench.core.solve.add_upper_gram_native``,
torch's own MKL): exactly half a GEMM's flops, at GEMM speed. Elsewhere (CUDA, no native BLAS)
it is ``GRAM_BLOCK``-wide panels of GEMMs on and above the diagonal, (1/2 + GRAM_BLOCK / 2P)
of a GEMM's flops. Both read J once per chunk, so J^T J is accumulated chunk by chunk.
"""

from __future__ import annotations

import math

import torch

from lmbench.core.solve import add_upper_gram_native

#: Column block of the upper-triangular Gram product; ~512 keeps each GEMM efficient.
#: (Measured on 2 MKL threads at P = 1.2k-7k: 512-wide panels beat 256, 384, 768 and 1024, and
#: beat recursive halving into square blocks at every P but the smallest, by 4-25%.)
GRAM_BLOCK = 512


def accumulate_upper_gram(gram: torch.Tensor, jac: torch.Tensor, block: int = GRAM_BLOCK) -> None:
    """gram[i, j] += (jac^T jac)[i, j] for j >= i only: about half the flops of a full GEMM
    (BLAS ?syrk on CPU, else ``block``-wide panels of GEMMs above the diagonal)."""
    if add_upper_gram_native(gram, jac):  # BLAS ?syrk
        return
    n = jac.shape[1]
    for start in range(0, n, block):
        stop = min(start + block, n)
        gram[start:stop, start:].addmm_(jac[:, start:stop].T, jac[:, start:])


def symmetrize_upper(upper: torch.Tensor) -> torch.Tensor:
    """Full symmetric matrix from one whose upper triangle holds the values (for checks/CG)."""
    return torch.triu(upper) + torch.triu(upper, diagonal=1).T


def trace_of_inverse(lower: torch.Tensor | None, block: int = GRAM_BLOCK) -> float:
    """tr((L L^T)^-1) = ||L^-1||_F^2 from a lower Cholesky factor (NaN without one).

    L^-1 is lower triangular: its columns j..j+b come from the trailing block L[j:, j:] alone,
    so ``block`` columns at a time cost n^3 / 3 flops in all and n * block floats of memory."""
    if lower is None:
        return math.nan
    n = lower.shape[0]
    total = 0.0
    for start in range(0, n, block):
        width = min(block, n - start)
        rhs = torch.zeros(n - start, width, dtype=lower.dtype, device=lower.device)
        rhs[:width].fill_diagonal_(1.0)
        columns = torch.linalg.solve_triangular(lower[start:, start:], rhs, upper=False)
        total += float(columns.double().square().sum())
    return total
