"""Damping rules: when to accept a trial step and how mu moves. Each class has one job.

* ``SeedDamping``: the original library's rule. Accept if E does not increase; then
  mu /= factor, else restore the weights and mu *= factor. ``grow_factor`` and
  ``shrink_factor`` make the update asymmetric (Transtrum's x2 / /3: mu *= 2 after a rejection,
  mu /= 3 after a success). Robustness: it accepts steps that reduce E by zero and its mu jumps
  by whole factors, so it can stall on a plateau; the convergence tests stop it there.
* ``MarquardtDamping``: the same acceptance and mu updates, with the damping term scaled by
  diag(J^T J) (Marquardt 1963) so that badly scaled weights get proportionate steps.
  Robustness: invariant to the weights' scales, but the current diagonal can shrink a column's
  damping to almost nothing where J's column vanishes (it can stop at a wrong stationary
  point); ``running_max_scaling`` fixes that.
* ``GainRatioDamping``: trust-region style (Nielsen 1999, as in Madsen-Nielsen-Tingleff):
  rho = actual / predicted reduction; accept if rho > threshold, then
  mu *= max(1/3, 1 - (2 rho - 1)^3) and nu = 2; on rejection mu *= nu, nu *= 2.
  Robustness: the most reliable of the three on the Moré-Garbow-Hillstrom problems
  (``reports/least_squares``); with ``scale_by_diagonal`` and ``running_max_scaling`` it damps
  as MINPACK does.

``running_max_scaling`` (More 1978, MINPACK's ``mode=1``): with ``scale_by_diagonal``, D is the
running maximum of diag(J^T J) over the epochs, not the current diagonal, so a column whose
sensitivity fades keeps the damping it once had. Off by default.

A rule only decides, and never changes itself: it maps a ``DampingState`` (mu and, for the
gain-ratio rule, nu) to the next one. The trainer owns the loop, the weights and the bounds on mu.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, Protocol, get_args, runtime_checkable

#: The damping rules by their config name (``TrainerSettings.damping``, ``trainer.damping``).
DampingName = Literal["seed", "marquardt", "gain_ratio"]
DAMPING_NAMES: tuple[str, ...] = get_args(DampingName)
#: The damping term D: the rule's own, the current diag(J^T J), or More's running maximum of it.
DampingScaling = Literal["rule", "diagonal", "running_max"]


@dataclass(frozen=True)
class DampingState:
    """Where the damping rule stands: mu, and the gain-ratio rule's growth factor nu."""

    mu: float
    nu: float = 2.0

    def to_dict(self) -> dict[str, float]:
        return {"mu": self.mu, "nu": self.nu}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DampingState:
        return cls(mu=float(data["mu"]), nu=float(data.get("nu", 2.0)))


@runtime_checkable
class DampingRule(Protocol):
    """What the trainer asks of a damping rule."""

    mu_init: float
    scale_by_diagonal: bool
    running_max_scaling: bool

    def initial_state(self) -> DampingState:
        """The state before the first trial."""
        ...

    def accepts(self, actual_reduction: float, predicted_reduction: float) -> bool:
        """Whether a trial with these reductions of E is kept."""
        ...

    def after_accept(self, state: DampingState, gain_ratio: float) -> DampingState:
        """The state for the next epoch after an accepted step."""
        ...

    def after_reject(self, state: DampingState) -> DampingState:
        """The state for the next trial after a rejected one (or a failed factorisation)."""
        ...


@dataclass(frozen=True)
class SeedDamping:
    """Accept when E does not increase; mu /= factor on success, mu *= factor on failure."""

    mu_init: float = 10.0
    factor: float = 10.0
    grow_factor: float | None = None  # mu *= this after a rejection (default: factor)
    shrink_factor: float | None = None  # mu /= this after a success (default: factor)
    scale_by_diagonal: bool = False
    running_max_scaling: bool = False

    def __post_init__(self) -> None:
        if not self.mu_init > 0 or not math.isfinite(self.mu_init):
            raise ValueError(f"mu_init must be a positive finite number, got {self.mu_init}")
        for name in ("factor", "grow_factor", "shrink_factor"):
            value = getattr(self, name)
            if value is not None and (not value > 1 or not math.isfinite(value)):
                raise ValueError(
                    f"{_FACTOR_NAMES[name]} must be a finite number > 1 so that mu can grow "
                    f"and shrink (10 is the seed's default), got {value}"
                )
        check_scaling(self)

    def initial_state(self) -> DampingState:
        return DampingState(mu=self.mu_init)

    def accepts(self, actual_reduction: float, predicted_reduction: float) -> bool:
        return actual_reduction >= 0.0

    def after_accept(self, state: DampingState, gain_ratio: float) -> DampingState:
        return replace(state, mu=state.mu / (self.shrink_factor or self.factor))

    def after_reject(self, state: DampingState) -> DampingState:
        return replace(state, mu=state.mu * (self.grow_factor or self.factor))


@dataclass(frozen=True)
class MarquardtDamping(SeedDamping):
    """The seed rule with the damping term mu * diag(J^T J) instead of mu * I."""

    scale_by_diagonal: bool = True


@dataclass(frozen=True)
class GainRatioDamping:
    """Nielsen's gain-ratio update: smooth mu changes driven by model agreement."""

    mu_init: float = 1e-3
    threshold: float = 1e-4
    scale_by_diagonal: bool = False
    running_max_scaling: bool = False

    def __post_init__(self) -> None:
        if not self.mu_init > 0 or not math.isfinite(self.mu_init):
            raise ValueError(f"mu_init must be a positive finite number, got {self.mu_init}")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(
                f"gain_ratio_threshold must be in [0, 1) (a step is kept when actual / predicted "
                f"reduction exceeds it; 1e-4 is the default), got {self.threshold}"
            )
        check_scaling(self)

    def initial_state(self) -> DampingState:
        return DampingState(mu=self.mu_init, nu=2.0)

    def accepts(self, actual_reduction: float, predicted_reduction: float) -> bool:
        if predicted_reduction <= 0.0:
            return False
        return actual_reduction / predicted_reduction > self.threshold

    def after_accept(self, state: DampingState, gain_ratio: float) -> DampingState:
        factor = max(1.0 / 3.0, 1.0 - (2.0 * gain_ratio - 1.0) ** 3)
        return DampingState(mu=state.mu * factor, nu=2.0)

    def after_reject(self, state: DampingState) -> DampingState:
        return DampingState(mu=state.mu * state.nu, nu=state.nu * 2.0)


_FACTOR_NAMES = {"factor": "demping_coef / factor", "grow_factor": "damping_grow_factor",
                 "shrink_factor": "damping_shrink_factor"}
#: The fields that say how the damping term is scaled (not parameters of the mu update).
SCALING_FIELDS = ("scale_by_diagonal", "running_max_scaling")


def check_scaling(rule: DampingRule) -> None:
    """More's running maximum scales the diagonal: it needs ``scale_by_diagonal``."""
    if rule.running_max_scaling and not rule.scale_by_diagonal:
        raise ValueError(
            "running_max_scaling (More's scaling) is a diagonal scaling: set "
            "scale_by_diagonal=True too (or use damping='marquardt')"
        )


#: Each rule's class; its dataclass fields (and their defaults) are the rule's own parameters.
DAMPING_RULES: dict[str, type] = {
    "seed": SeedDamping, "marquardt": MarquardtDamping, "gain_ratio": GainRatioDamping,
}


def damping_parameters(name: str) -> tuple[str, ...]:
    """The parameters rule ``name`` takes (``mu_init``, ``factor``, ``threshold``, ...)."""
    return tuple(f.name for f in fields(_rule_class(name)) if f.name not in SCALING_FIELDS)


def make_damping(
    name: str,
    mu_init: float | None = None,
    factor: float | None = None,
    threshold: float | None = None,
    *,
    grow_factor: float | None = None,
    shrink_factor: float | None = None,
    scaling: DampingScaling = "rule",
) -> DampingRule:
    """Build a rule by its config name: ``seed``, ``marquardt`` or ``gain_ratio``.

    A parameter left at None takes the rule's own default (seed and marquardt: mu_init 10,
    factor 10; gain_ratio: mu_init 1e-3, threshold 1e-4). A parameter the rule does not have
    (``factor`` for gain_ratio, ``threshold`` for seed and marquardt) is ignored, so that one
    config can switch rules. ``scaling``: the rule's own damping term (``rule``: D = I for seed
    and gain_ratio, diag(J^T J) for marquardt), the current ``diagonal``, or More's
    ``running_max`` of the diagonals.
    """
    given = {"mu_init": mu_init, "factor": factor, "threshold": threshold,
             "grow_factor": grow_factor, "shrink_factor": shrink_factor}
    own = damping_parameters(name)
    chosen: dict[str, Any] = {k: v for k, v in given.items() if v is not None and k in own}
    if scaling not in get_args(DampingScaling):
        raise ValueError(
            f"damping_scaling must be 'rule', 'diagonal' or 'running_max', got {scaling!r}")
    if scaling != "rule":
        chosen.update(scale_by_diagonal=True, running_max_scaling=scaling == "running_max")
    return _rule_class(name)(**chosen)


def _rule_class(name: str) -> type:
    if name not in DAMPING_RULES:
        raise ValueError(f"unknown damping rule {name!r}; choose one of {DAMPING_NAMES}")
    return DAMPING_RULES[name]
