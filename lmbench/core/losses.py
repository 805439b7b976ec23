"""Losses LM can minimise exactly: generalised Gauss-Newton (GGN) rows for each.

For a loss l(z, y) on the O network outputs z of one sample, the LM step solves

    (J^T H J + mu D) delta = -J^T g,    g = dl/dz,  H = d2l/dz2 (positive semi-definite, O x O)

With a factor H = A^T A per sample and a vector r^ with A^T r^ = g, the transformed rows
J^ = A J and residuals r^ give J^T H J = J^^T J^ and J^T g = J^^T r^, so the engine's existing
machinery (chunked upper J^T J, the dual form, streaming, the disk cache, data parallelism)
runs unchanged on (J^, r^). The objective E = sum_i e_i(z_i, y_i) is the true loss summed over
samples; damping trials are accepted on E and the gain ratio compares its actual reduction with
the GGN quadratic model's.

* ``mse``: e = 1/2 ||z - y||^2, A = I, r^ = z - y (plain Gauss-Newton; the seed's objective).
* ``cross_entropy`` (softmax over O logits, one-hot or probability targets; class indices are
  turned into one-hot rows): e = -sum y log p, g = p - y, H = diag(p) - p p^T. The exact factor
  A = diag(sqrt p) - sqrt(p) p^T (rank O-1) satisfies A^T A = H because sum p = 1, and
  r^ = (p - y) / sqrt(p) satisfies A^T r^ = g because sum y = 1. p is floored at the dtype's
  smallest normal number so that r^ stays finite (A r^ is still p - y to rounding).
* ``bce`` (sigmoid per output, binary or multi-label, on logits): e = sum BCE, g = p - y,
  H = diag(p (1 - p)); A = sqrt(p (1 - p)), r^ = (p - y) / sqrt(p (1 - p)).
* ``huber`` (threshold delta): e = 1/2 r^2 inside |r| <= delta, delta (|r| - delta/2) outside.
  Its Hessian is 1 inside and 0 outside, which would leave the outside rows' gradient delta
  sign(r) with no curvature at all. Outside rows are instead weighted by w = delta / |r|, the
  curvature of Huber's IRLS majoriser (a quadratic that touches the loss at r and lies above
  it): A = sqrt(w), r^ = sqrt(w) r, so A^T r^ = w r = delta sign(r) = g exactly.
* ``sqrt_cross_entropy`` (the square-root trick of torch-levenberg-marquardt): one residual per
  sample, rho = sqrt(CE), and plain Gauss-Newton on 1/2 sum rho^2 = 1/2 sum CE: A = g^T / (2 rho)
  (1 x O), r^ = rho. Its curvature g g^T / (4 CE) is not the Hessian of CE; it is kept so the
  two ways can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lmbench.core.errors import InvalidInputError
from lmbench.core.sources import match_targets

LossName = Literal["mse", "cross_entropy", "bce", "huber", "sqrt_cross_entropy"]
LOSS_NAMES: tuple[str, ...] = ("mse", "cross_entropy", "bce", "huber", "sqrt_cross_entropy")


@dataclass(frozen=True)
class Loss:
    """One loss: its per-sample objective, its GGN rows, and its reporting value (mean)."""

    name: LossName = "mse"
    huber_delta: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in LOSS_NAMES:
            raise ValueError(f"loss must be one of {LOSS_NAMES}, got {self.name!r}")
        if not self.huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0, got {self.huber_delta}")

    @property
    def is_classification(self) -> bool:
        return self.name in ("cross_entropy", "sqrt_cross_entropy", "bce")

    def rows_per_sample(self, n_outputs: int) -> int:
        """Rows of J^ each sample contributes (O, or 1 for the square-root trick)."""
        return 1 if self.name == "sqrt_cross_entropy" else n_outputs

    # ------------------------------------------------------------------ targets
    def targets(self, y: torch.Tensor, n_outputs: int, name: str = "y") -> torch.Tensor:
        """y as (rows, O) rows the loss reads; class indices become one-hot for softmax CE."""
        softmax = self.name in ("cross_entropy", "sqrt_cross_entropy")
        if softmax and n_outputs > 1 and (y.dim() == 1 or (y.dim() == 2 and y.shape[1] == 1)):
            labels = y.reshape(-1)
            whole = torch.round(labels)
            if not bool((labels == whole).all()) or bool((whole < 0).any()) or bool(
                (whole >= n_outputs).any()
            ):
                raise InvalidInputError(
                    f"{name} holds class indices outside 0..{n_outputs - 1} (or non-integers); "
                    f"cross-entropy needs indices of the model's {n_outputs} classes, or one-hot "
                    "/ probability rows"
                )
            return F.one_hot(whole.long(), n_outputs).to(y.dtype)
        return match_targets(y, n_outputs, name)

    # ------------------------------------------------------------------ values
    def objective(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """E over these samples (a sum), in float64."""
        with torch.no_grad():
            return float(self.objective_tensor(out, y))

    def objective_tensor(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """E over these samples as a differentiable float64 scalar."""
        if self.name == "mse":  # the difference in the model's dtype, as the seed computes it
            return 0.5 * (out - y).to(torch.float64).pow(2).sum()
        z, t = out.to(torch.float64), y.to(torch.float64)
        if self.name == "cross_entropy":
            return F.cross_entropy(z, t, reduction="sum")
        if self.name == "sqrt_cross_entropy":
            return 0.5 * F.cross_entropy(z, t, reduction="sum")
        if self.name == "bce":
            return F.binary_cross_entropy_with_logits(z, t, reduction="sum")
        return F.huber_loss(z, t, reduction="sum", delta=self.huber_delta)

    def report(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss as a user reads it: the mean over samples (and outputs, for MSE/BCE/Huber)."""
        if self.name == "mse":
            return F.mse_loss(out, y)
        if self.name in ("cross_entropy", "sqrt_cross_entropy"):
            return F.cross_entropy(out, y)
        if self.name == "bce":
            return F.binary_cross_entropy_with_logits(out, y)
        return F.huber_loss(out, y, delta=self.huber_delta)

    # ------------------------------------------------------------------ GGN rows
    def gauss_newton_rows(
        self, jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(J^, r^) for a chunk: J (m*O, P) and outputs (m, O) -> J^ (m*k, P), r^ (m*k,)."""
        if self.name == "mse":
            return jac, (out - y).reshape(-1)
        z, t = out.to(dtype), y.to(dtype)
        m, o = z.shape
        blocks = jac.to(dtype).reshape(m, o, -1)
        tiny = torch.finfo(dtype).tiny
        if self.name == "huber":
            r = z - t
            weight = torch.clamp(self.huber_delta / r.abs().clamp_min(tiny), max=1.0)
            root = weight.sqrt()
            return (blocks * root.unsqueeze(2)).reshape(m * o, -1), (root * r).reshape(-1)
        if self.name == "bce":
            p = torch.sigmoid(z)
            root = (p * (1 - p)).clamp_min(tiny).sqrt()
            return (blocks * root.unsqueeze(2)).reshape(m * o, -1), ((p - t) / root).reshape(-1)
        p = torch.softmax(z, dim=1)
        if self.name == "sqrt_cross_entropy":
            rho = F.cross_entropy(z, t, reduction="none").clamp_min(tiny).sqrt()
            a = (p - t) / (2 * rho).unsqueeze(1)  # (m, O): d rho / dz
            return torch.einsum("mo,mop->mp", a, blocks), rho
        root = p.clamp_min(tiny).sqrt()
        # A J = diag(sqrt p) J - sqrt(p) (p^T J): each row scaled, minus the p-weighted mean row
        mean_row = torch.einsum("mo,mop->mp", p, blocks)
        rows = root.unsqueeze(2) * (blocks - mean_row.unsqueeze(1))
        return rows.reshape(m * o, -1), ((p - t) / root).reshape(-1)


def as_loss(loss: str | Loss | None, huber_delta: float = 1.0) -> Loss:
    """A ``Loss`` from its name (default ``mse``) or as given."""
    if loss is None:
        return Loss()
    if isinstance(loss, Loss):
        return loss
    return Loss(name=str(loss), huber_delta=huber_delta)  # type: ignore[arg-type]


def loss_from_module(loss_fn: object) -> Loss:
    """The exact loss behind a torch loss module: MSELoss, CrossEntropyLoss, BCEWithLogitsLoss,
    HuberLoss (options that change the loss's form, such as class weights or label smoothing,
    have no exact GGN here and are refused). Any other ``loss_fn`` raises, naming the choices."""
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"loss_fn has reduction={reduction!r}; LM needs one number per pass: use "
            "reduction='mean' (the default) or 'sum'"
        )
    unsupported = {
        "weight": getattr(loss_fn, "weight", None) is not None,
        "pos_weight": getattr(loss_fn, "pos_weight", None) is not None,
        "label_smoothing": float(getattr(loss_fn, "label_smoothing", 0.0) or 0.0) != 0.0,
    }
    refused = [name for name, used in unsupported.items() if used]
    if refused:
        raise ValueError(
            f"{type(loss_fn).__name__} with {', '.join(refused)} has no exact Gauss-Newton form "
            "here; drop those options, or choose what LM minimises with "
            "LevenbergMarquardt(model, loss='sqrt_cross_entropy' | 'mse' | ..., loss_fn=...), "
            "where loss_fn then only reports"
        )
    if isinstance(loss_fn, nn.MSELoss):
        return Loss("mse")
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        return Loss("cross_entropy")
    if isinstance(loss_fn, nn.BCEWithLogitsLoss):
        return Loss("bce")
    if isinstance(loss_fn, nn.HuberLoss):
        return Loss("huber", huber_delta=float(loss_fn.delta))
    raise ValueError(
        f"LM minimises MSELoss, CrossEntropyLoss, BCEWithLogitsLoss or HuberLoss exactly; "
        f"{type(loss_fn).__name__} is none of them. Pass one of those, or choose the objective "
        f"with LevenbergMarquardt(model, loss='mse' | 'cross_entropy' | 'bce' | 'huber' | "
        f"'sqrt_cross_entropy', loss_fn=...) so that {type(loss_fn).__name__} only reports."
    )
