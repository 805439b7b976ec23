"""What LM adds to the data objective: weight decay, or Bayesian regularisation (trainbr).

Both minimise the penalised objective F(w) = E_D(w) + (lambda / 2) ||w||^2 over **every**
trained weight and bias (as MATLAB's ``trainbr`` does; the weights are the trainer's flat
vector), where E_D is the engine's data objective (1/2 sum r^2 for ``mse``, the loss's own sum
for the others). The penalty is the least-squares problem with sqrt(lambda) * I appended to J:
each system form (``lmbench.core.system``) solves

    (J^T H J + lambda I + mu D) delta = -(J^T g + lambda w),   D = I or diag(J^T H J) + lambda

and the predicted reduction, the gain ratio and acceptance all use F.

* ``weight_decay`` (lambda fixed, default 0: plain LM).
* ``bayesian``: the evidence framework of MacKay (1992) as Foresee & Hagan (1997) run it inside
  LM: F = beta E_D + alpha E_W with E_W = 1/2 ||w||^2, i.e. lambda = alpha / beta. Each time the
  weights have moved (at the start of an epoch whose system is new), gamma = P - alpha tr((beta
  J^T H J + alpha I)^-1) = P - lambda tr((J^T H J + lambda I)^-1), then alpha = gamma / (2 E_W)
  and, for ``mse`` (a Gaussian likelihood with noise precision beta), beta = (n - gamma) /
  (2 E_D) with n the number of residuals. Other losses have no noise scale: beta stays 1 and
  only alpha is re-estimated (MacKay 1992, classification networks). The first estimate starts,
  as ``trainbr`` does, from gamma = P: beta = (n - P) / (2 E_D) (1 when that is not positive)
  and alpha = P / (2 E_W).

The trace comes from a factorisation of J^T H J + lambda I (primal: P x P) or, by Woodbury, of
J J^T + lambda I (dual: gamma = M - lambda tr((J J^T + lambda I)^-1), M x M): one Cholesky and
one triangular inverse per accepted epoch, about twice a damping trial's factorisation. (The
accepted trial's own factor is of J^T H J + lambda I + mu D: reusing it would bias gamma by mu.)
The CG engines (``cache``, ``matrix_free``) have no factorisation and are refused.

Guard against oscillating estimates (Poland 2001): alpha and beta are updated only after an
accepted step (the system is rebuilt only then), each changes by at most a factor
``max_change`` per update (default 10; ``math.inf`` turns the guard off), and gamma is kept
inside [0, min(P, n)]. Measured on 6 noisy points and a 61-weight tanh MLP
(``tests/unit/core/test_regularization.py``): unguarded, once gamma rounds to 0 the update
sets alpha = 0 (plain LM) and the next one, at gamma = P, a huge alpha, and lambda cycles
between 0 and ~1e21; guarded, lambda moves at most 100x per epoch and never reaches 0. The
guard does not stop a collapse the evidence itself drives (gamma -> 0, every weight -> 0: the
constant model is what that evidence prefers); the history's ``gamma`` shows it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from lmbench.core.losses import Loss
    from lmbench.core.system import GaussNewtonSystem

RegularizationName = Literal["none", "bayesian"]
REGULARIZATION_NAMES: tuple[RegularizationName, ...] = ("none", "bayesian")
#: Engines whose systems give the trace Bayesian regularisation needs (a factorisation).
BAYESIAN_ENGINES = ("in_memory", "streaming")
#: The relative change of the Bayesian lambda in one epoch below which it counts as settled.
SETTLED_CHANGE = 1e-3


def weight_energy(theta: torch.Tensor) -> float:
    """E_W = 1/2 ||w||^2 of the flat weight vector."""
    return 0.5 * float(theta.double().square().sum())


@dataclass(frozen=True)
class RegularizationState:
    """Where the regularisation stands: lambda = alpha / beta and the evidence's estimates
    (gamma, the effective number of parameters, NaN until Bayesian regularisation computes it)."""

    alpha: float = 0.0
    beta: float = 1.0
    gamma: float = math.nan
    estimated: bool = False  # whether the Bayesian estimates have been initialised

    @property
    def weight_decay(self) -> float:
        """lambda of F = E_D + lambda E_W, the objective LM minimises (F_bayes / beta)."""
        return self.alpha / self.beta

    def record(self, theta: torch.Tensor, objective: float) -> dict[str, float]:
        """The history's objective series at ``theta`` where the data objective is
        ``objective``: E, F = E + lambda E_W, lambda, alpha, beta, gamma and E_W."""
        e_w = weight_energy(theta)
        return {"objective": objective, "penalised_objective": objective + self.weight_decay * e_w,
                "weight_decay": self.weight_decay, "alpha": self.alpha, "beta": self.beta,
                "gamma": self.gamma, "weight_energy": e_w}

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> RegularizationState:
        return cls(alpha=float(data["alpha"]), beta=float(data["beta"]),
                   gamma=float(data["gamma"]), estimated=bool(data["estimated"]))


@dataclass(frozen=True)
class Regularization:
    """The penalty LM adds to its data objective (see the module docstring).

    weight_decay: lambda >= 0 of (lambda / 2) ||w||^2 (plain LM at 0); with ``bayesian`` it
        must be 0 (alpha and beta are estimated).
    bayesian: re-estimate alpha and beta from the evidence after every accepted step.
    max_change: the largest factor by which alpha or beta may change in one update (> 1;
        ``math.inf``: no guard).
    """

    weight_decay: float = 0.0
    bayesian: bool = False
    max_change: float = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(
                f"weight_decay must be a finite number >= 0 (0: no penalty), got "
                f"{self.weight_decay!r}"
            )
        if self.bayesian and self.weight_decay != 0:
            raise ValueError(
                "regularization='bayesian' estimates the penalty itself (lambda = alpha / "
                f"beta): leave weight_decay at 0, got {self.weight_decay!r}"
            )
        if not self.max_change > 1:
            raise ValueError(
                f"the Bayesian update's max_change must be > 1 (math.inf: unbounded), got "
                f"{self.max_change!r}"
            )

    @property
    def active(self) -> bool:
        return self.bayesian or self.weight_decay > 0

    def check_engine(self, engine: str) -> None:
        """Refuse Bayesian regularisation on an engine that has no factorisation."""
        if self.bayesian and engine not in BAYESIAN_ENGINES:
            raise ValueError(
                f"regularization='bayesian' takes the trace of (J^T J + alpha I)^-1 from a "
                f"factorisation: the {engine} engine solves by CG and has none; use one of "
                f"{BAYESIAN_ENGINES}, or weight_decay=... with a fixed penalty"
            )

    def check_full_batch(self, mini_batch: bool) -> None:
        """Refuse Bayesian regularisation with mini-batch steps (no full-batch system)."""
        if self.bayesian and mini_batch:
            raise ValueError(
                "regularization='bayesian' re-estimates alpha and beta from the full-batch "
                "Gauss-Newton system: use full-batch LM (mini_batch_size=None), or a fixed "
                "weight_decay=... with mini-batches"
            )

    def settled(self, weight_decays: Sequence[float]) -> bool:
        """Whether the penalty held still over the last epoch, so that a convergence test
        means the run converged: always for a fixed weight decay; for Bayesian regularisation
        once the estimate lambda = alpha / beta moved by at most ``SETTLED_CHANGE`` (relative),
        since before that the objective itself is still moving."""
        if not self.bayesian:
            return True
        if len(weight_decays) < 2:
            return False
        return math.isclose(weight_decays[-1], weight_decays[-2], rel_tol=SETTLED_CHANGE)

    def initial_state(self) -> RegularizationState:
        return RegularizationState(alpha=self.weight_decay)

    def penalty(self, state: RegularizationState, theta: torch.Tensor) -> float:
        """(lambda / 2) ||w||^2: what F adds to E_D."""
        lam = state.weight_decay
        return lam * weight_energy(theta) if lam > 0 else 0.0

    def update(
        self, state: RegularizationState, system: GaussNewtonSystem, theta: torch.Tensor,
        data_objective: float, loss: Loss,
    ) -> RegularizationState:
        """The Bayesian estimates at the weights ``system`` was built at, where the data
        objective is ``data_objective`` (E_D); weight decay keeps ``state`` as it is."""
        if not self.bayesian:
            return state
        n_params = theta.numel()
        n = system.n_residuals
        e_w = max(weight_energy(theta), torch.finfo(torch.float64).tiny)
        e_d = max(data_objective, torch.finfo(torch.float64).tiny)
        if not state.estimated:  # trainbr's start: gamma = P
            gamma = float(n_params)
            beta = (n - gamma) / (2 * e_d) if loss.noise_precision else 1.0
            beta = beta if beta > 0 else 1.0
            return RegularizationState(alpha=gamma / (2 * e_w), beta=beta, gamma=gamma,
                                       estimated=True)
        gamma = system.effective_parameters(state.weight_decay)
        if not math.isfinite(gamma):
            return state  # no factorisation at this lambda: keep the estimates
        gamma = min(max(gamma, 0.0), float(min(n_params, n)))
        alpha = self._bounded(state.alpha, gamma / (2 * e_w))
        beta = (self._bounded(state.beta, max(n - gamma, 1e-12) / (2 * e_d))
                if loss.noise_precision else 1.0)
        return RegularizationState(alpha=alpha, beta=beta, gamma=gamma, estimated=True)

    def _bounded(self, old: float, new: float) -> float:
        if old <= 0 or not math.isfinite(self.max_change):
            return new
        return min(max(new, old / self.max_change), old * self.max_change)


def make_regularization(
    weight_decay: float = 0.0, regularization: str | None = "none", max_change: float = 10.0
) -> Regularization:
    """The ``Regularization`` a config names (``regularization``: ``none`` | ``bayesian``;
    None is ``none``, the seed functions' default)."""
    name = "none" if regularization is None else str(regularization)
    if name not in REGULARIZATION_NAMES:
        raise ValueError(
            f"regularization must be one of {REGULARIZATION_NAMES} (or None), got "
            f"{regularization!r}; a fixed penalty is weight_decay=..."
        )
    return Regularization(weight_decay=float(weight_decay), bayesian=name == "bayesian",
                          max_change=max_change)
