"""The loss's Gauss-Newton curvature in output space, for products that never form J.

``lmbench.core.losses`` represents each loss by a per-sample factor A (k x O) of its curvature,
H = A^T A, and transformed residuals r^ with A^T r^ = g = dl/dz. The other engines apply A to
Jacobian rows (J^ = A J). The matrix-free engine needs the same curvature applied to vectors in
output space instead: for u = J v (one value per output of each sample), H u = A^T (A u).

A is obtained from the losses module itself, by handing ``Loss.gauss_newton_rows`` the
identity as the "Jacobian" of the outputs with respect to the outputs: the rows it returns are
then A, stacked per sample. So every loss (mse, cross_entropy, bce, huber, sqrt_cross_entropy)
has exactly the curvature the Cholesky engines use. For mse, A = I and nothing is formed.
Cost per chunk of m samples: m*O*O floats for A and 4*m*k*O flops per product.
"""

from __future__ import annotations

import torch

from lmbench.core.losses import Loss


def output_factor(
    loss: Loss, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(A, r^) per sample: A shaped (m, k, O) with H = A^T A (None for mse, A = I) and the
    transformed residuals r^ shaped (m, k), so that the output gradient is g = A^T r^."""
    m, o = out.shape
    if loss.factor == "identity":
        return None, (out - y).to(dtype)
    identity = torch.eye(o, dtype=dtype, device=out.device).expand(m, o, o).reshape(m * o, o)
    rows, residuals = loss.gauss_newton_rows(identity, out, y, dtype)
    k = loss.rows_per_sample(o)
    return rows.reshape(m, k, o), residuals.reshape(m, k)


def apply_curvature(factor: torch.Tensor | None, u: torch.Tensor) -> torch.Tensor:
    """H u = A^T (A u) for each sample's row of ``u`` (m, O); u itself when A = I."""
    if factor is None:
        return u
    projected = torch.einsum("mko,mo->mk", factor, u.to(factor.dtype))
    return torch.einsum("mko,mk->mo", factor, projected)
