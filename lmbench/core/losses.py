"""Losses LM can minimise exactly: generalised Gauss-Newton (GGN) rows for each.

For a loss l(z, y) on the O network outputs z of one sample, the LM step solves

    (J^T H J + mu D) delta = -J^T g,    g = dl/dz,  H = d2l/dz2 (positive semi-definite, O x O)

With a factor H = A^T A per sample and a vector r^ with A^T r^ = g, the transformed rows
J^ = A J and residuals r^ give J^T H J = J^^T J^ and J^T g = J^^T r^, so the engine's existing
machinery (chunked upper J^T J, the dual form, streaming, the disk cache, data parallelism)
runs unchanged on (J^, r^). The objective E = sum_i e_i(z_i, y_i) is the true loss summed over
samples; damping trials are accepted on E and the gain ratio compares its actual reduction with
the GGN quadratic model's.

Each loss is one subclass of ``Loss`` (registered by its ``name``); ``Loss(name)`` and
``as_loss(name)`` build it from its config name:

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

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lmbench.core.errors import InvalidInputError
from lmbench.core.sources import match_targets

LossName = Literal["mse", "cross_entropy", "bce", "huber", "sqrt_cross_entropy"]
#: The shape of a loss's per-sample factor A: ``identity`` (J^ is J), ``diagonal`` (each row
#: scaled) or ``dense`` (rows mixed across outputs).
FactorKind = Literal["identity", "diagonal", "dense"]
#: Every loss by name, in definition order; a subclass of ``Loss`` with a ``name`` joins it.
LOSS_TYPES: dict[str, type[Loss]] = {}


@dataclass(frozen=True, init=False, repr=False)
class Loss(ABC):
    """One loss: its per-sample objective, its GGN rows, and its reporting value (mean).

    ``Loss(name, huber_delta)`` builds the registered subclass of that name (default ``mse``),
    so callers that hold a name need not know the classes. A new loss is one subclass that sets
    ``name`` (and ``takes_logits``, ``label``, ``factor``) and defines ``objective_tensor``,
    ``report`` and ``gauss_newton_rows``.
    """

    huber_delta: float = 1.0

    #: The loss's config name (``trainer.loss``).
    name: ClassVar[str]
    #: Whether it reads raw logits (it applies its own softmax / sigmoid): a linear head.
    takes_logits: ClassVar[bool] = False
    #: The quantity and its unit, for report axes.
    label: ClassVar[str]
    #: The shape of its Hessian factor A (what transforming J's rows costs).
    factor: ClassVar[FactorKind]
    #: The torch loss module that minimises the same loss (``loss_from_module``), if any.
    module: ClassVar[type[nn.Module] | None] = None
    #: A Gaussian likelihood: Bayesian regularisation re-estimates its noise precision beta.
    noise_precision: ClassVar[bool] = False
    #: E per unit of mean loss per row (and output): E = objective_per_mean(n, O) * report.
    objective_weight: ClassVar[float] = 1.0
    #: Whether ``report`` averages over outputs as well as rows (MSE, BCE, Huber).
    mean_over_outputs: ClassVar[bool] = True

    def __new__(cls, name: str | None = None, huber_delta: float = 1.0) -> Loss:
        if cls is Loss:
            key = "mse" if name is None else name
            if key not in tuple(LOSS_TYPES):
                raise ValueError(f"loss must be one of {tuple(LOSS_TYPES)}, got {key!r}")
            cls = LOSS_TYPES[key]
        elif name is not None and name != cls.name:
            raise ValueError(f"{cls.__name__} is the loss {cls.name!r}, not {name!r}")
        return object.__new__(cls)

    def __init__(self, name: str | None = None, huber_delta: float = 1.0) -> None:
        if not huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0, got {huber_delta}")
        object.__setattr__(self, "huber_delta", huber_delta)

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Registers a subclass that names itself, so ``as_loss`` and every list find it."""
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if cls.name in LOSS_TYPES:
                raise ValueError(f"a loss named {cls.name!r} is already registered")
            LOSS_TYPES[cls.name] = cls

    def __repr__(self) -> str:
        return f"Loss(name={self.name!r}, huber_delta={self.huber_delta!r})"

    @property
    def is_classification(self) -> bool:
        """Whether it is a classification loss (the same losses as ``takes_logits``)."""
        return self.takes_logits

    def rows_per_sample(self, n_outputs: int) -> int:
        """Rows of J^ each sample contributes (O, or 1 for the square-root trick)."""
        return n_outputs

    @classmethod
    def from_module(cls, loss_fn: nn.Module) -> Loss:
        """This loss with the options ``loss_fn`` (an instance of ``module``) carries."""
        return cls()

    # ------------------------------------------------------------------ targets
    def targets(self, y: torch.Tensor, n_outputs: int, name: str = "y") -> torch.Tensor:
        """y as (rows, O) rows the loss reads."""
        return match_targets(y, n_outputs, name)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """What a classifier's ``outputs`` mean as probabilities (here: the outputs)."""
        return outputs

    # ------------------------------------------------------------------ values
    def objective(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """E over these samples (a sum), in float64."""
        with torch.no_grad():
            return float(self.objective_tensor(out, y))

    @abstractmethod
    def objective_tensor(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """E over these samples as a differentiable float64 scalar."""

    @abstractmethod
    def report(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss as a user reads it: the mean over samples (and outputs, for MSE/BCE/Huber)."""

    def objective_per_mean(self, n_rows: int, n_outputs: int) -> float:
        """E / report on ``n_rows`` samples of ``n_outputs``: a penalty on the mean loss (torch's
        weight_decay) times this is the same penalty on E."""
        count = n_rows * (n_outputs if self.mean_over_outputs else 1)
        return self.objective_weight * count

    # ------------------------------------------------------------------ GGN rows
    @abstractmethod
    def gauss_newton_rows(
        self, jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(J^, r^) for a chunk: J (m*O, P) and outputs (m, O) -> J^ (m*k, P), r^ (m*k,)."""


def _in_float64(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return out.to(torch.float64), y.to(torch.float64)


def _chunk(
    jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """(z, t, J as (m, O, P) blocks, the dtype's smallest normal number), all in ``dtype``."""
    z, t = out.to(dtype), y.to(dtype)
    m, o = z.shape
    return z, t, jac.to(dtype).reshape(m, o, -1), torch.finfo(dtype).tiny


def _scaled_rows(blocks: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """Diagonal A: each sample's output row of J times its root weight, as (m*O, P)."""
    m, o = root.shape
    return (blocks * root.unsqueeze(2)).reshape(m * o, -1)


class MeanSquaredError(Loss):
    """e = 1/2 ||z - y||^2, A = I, r^ = z - y: plain Gauss-Newton (the seed's objective)."""

    name = "mse"
    label = "MSE"
    factor = "identity"
    module = nn.MSELoss
    noise_precision = True
    objective_weight = 0.5

    def objective_tensor(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The difference in the model's dtype, as the seed computes it."""
        return 0.5 * (out - y).to(torch.float64).pow(2).sum()

    def report(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, y)

    def gauss_newton_rows(
        self, jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """J itself and the plain residuals."""
        return jac, (out - y).reshape(-1)


class _SoftmaxCrossEntropy(Loss):
    """What both softmax cross-entropies share: logits, class-index targets, the mean CE."""

    takes_logits = True
    mean_over_outputs = False
    factor = "dense"

    def targets(self, y: torch.Tensor, n_outputs: int, name: str = "y") -> torch.Tensor:
        """y as (rows, O) rows; class indices become one-hot rows."""
        if n_outputs > 1 and (y.dim() == 1 or (y.dim() == 2 and y.shape[1] == 1)):
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

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """The softmax of the logits."""
        return torch.softmax(outputs, dim=-1)

    def report(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y)


class CrossEntropy(_SoftmaxCrossEntropy):
    """Softmax cross-entropy with its exact factor A = diag(sqrt p) - sqrt(p) p^T."""

    name = "cross_entropy"
    label = "cross-entropy (nats)"
    module = nn.CrossEntropyLoss

    def objective_tensor(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z, t = _in_float64(out, y)
        return F.cross_entropy(z, t, reduction="sum")

    def gauss_newton_rows(
        self, jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A J = diag(sqrt p) J - sqrt(p) (p^T J): rows scaled, minus the p-weighted mean row."""
        z, t, blocks, tiny = _chunk(jac, out, y, dtype)
        m, o = z.shape
        p = torch.softmax(z, dim=1)
        root = p.clamp_min(tiny).sqrt()
        mean_row = torch.einsum("mo,mop->mp", p, blocks)
        rows = root.unsqueeze(2) * (blocks - mean_row.unsqueeze(1))
        return rows.reshape(m * o, -1), ((p - t) / root).reshape(-1)


class BinaryCrossEntropy(Loss):
    """Sigmoid cross-entropy per output (binary or multi-label): A = sqrt(p (1 - p))."""

    name = "bce"
    takes_logits = True
    factor = "diagonal"
    label = "binary cross-entropy (nats)"
    module = nn.BCEWithLogitsLoss

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """The sigmoid of each logit."""
        return torch.sigmoid(outputs)

    def objective_tensor(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z, t = _in_float64(out, y)
        return F.binary_cross_entropy_with_logits(z, t, reduction="sum")

    def report(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out, y)

    def gauss_newton_rows(
        self, jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows scaled by sqrt(p (1 - p)), residuals (p - y) / sqrt(p (1 - p))."""
        z, t, blocks, tiny = _chunk(jac, out, y, dtype)
        p = torch.sigmoid(z)
        root = (p * (1 - p)).clamp_min(tiny).sqrt()
        return _scaled_rows(blocks, root), ((p - t) / root).reshape(-1)


class Huber(Loss):
    """Huber with threshold ``huber_delta``; A = sqrt(w), w = min(1, delta / |r|) (IRLS)."""

    name = "huber"
    label = "Huber loss"
    factor = "diagonal"
    module = nn.HuberLoss

    @classmethod
    def from_module(cls, loss_fn: nn.Module) -> Loss:
        """Huber with the module's ``delta``."""
        return cls(huber_delta=float(loss_fn.delta))  # type: ignore[arg-type]

    def objective_tensor(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z, t = _in_float64(out, y)
        return F.huber_loss(z, t, reduction="sum", delta=self.huber_delta)

    def report(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(out, y, delta=self.huber_delta)

    def gauss_newton_rows(
        self, jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows scaled by sqrt(min(1, delta / |r|)), residuals scaled the same."""
        z, t, blocks, tiny = _chunk(jac, out, y, dtype)
        r = z - t
        weight = torch.clamp(self.huber_delta / r.abs().clamp_min(tiny), max=1.0)
        root = weight.sqrt()
        return _scaled_rows(blocks, root), (root * r).reshape(-1)


class SqrtCrossEntropy(_SoftmaxCrossEntropy):
    """The square-root trick: one residual rho = sqrt(CE) per sample, A = g^T / (2 rho)."""

    name = "sqrt_cross_entropy"
    label = "square-root cross-entropy (√nats)"
    objective_weight = 0.5

    def rows_per_sample(self, n_outputs: int) -> int:
        return 1

    def objective_tensor(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """1/2 sum rho^2 = 1/2 sum CE, in float64."""
        z, t = _in_float64(out, y)
        return 0.5 * F.cross_entropy(z, t, reduction="sum")

    def gauss_newton_rows(
        self, jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(d rho / dz) J, one row per sample, and rho."""
        z, t, blocks, tiny = _chunk(jac, out, y, dtype)
        p = torch.softmax(z, dim=1)
        rho = F.cross_entropy(z, t, reduction="none").clamp_min(tiny).sqrt()
        a = (p - t) / (2 * rho).unsqueeze(1)  # (m, O): d rho / dz
        return torch.einsum("mo,mop->mp", a, blocks), rho


LOSS_NAMES: tuple[str, ...] = tuple(LOSS_TYPES)


def takes_logits(loss: str) -> bool:
    """Whether the loss named ``loss`` reads raw logits (the network needs a linear head);
    False for a name that is no loss here (``auto``, a typo: validated elsewhere)."""
    kind = LOSS_TYPES.get(loss)
    return kind is not None and kind.takes_logits


def as_loss(loss: str | Loss | None, huber_delta: float = 1.0) -> Loss:
    """A ``Loss`` from its name (default ``mse``) or as given."""
    if loss is None:
        return Loss()
    if isinstance(loss, Loss):
        return loss
    return Loss(name=str(loss), huber_delta=huber_delta)


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
    for kind in LOSS_TYPES.values():
        if kind.module is not None and isinstance(loss_fn, kind.module):
            return kind.from_module(loss_fn)
    modules = [kind.module.__name__ for kind in LOSS_TYPES.values() if kind.module is not None]
    names = " | ".join(repr(name) for name in LOSS_TYPES)
    raise ValueError(
        f"LM minimises {', '.join(modules[:-1])} or {modules[-1]} exactly; "
        f"{type(loss_fn).__name__} is none of them. Pass one of those, or choose the objective "
        f"with LevenbergMarquardt(model, loss={names}, loss_fn=...) so that "
        f"{type(loss_fn).__name__} only reports."
    )
