"""Damping rules: when to accept a trial step and how mu moves. Each class has one job.

* ``SeedDamping``: the original library's rule. Accept if E does not increase; then
  mu /= factor, else restore the weights and mu *= factor.
* ``MarquardtDamping``: the same acceptance and mu updates, with the damping term scaled by
  diag(J^T J) (Marquardt 1963) so that badly scaled weights get proportionate steps.
* ``GainRatioDamping``: trust-region style (Nielsen 1999, as in Madsen-Nielsen-Tingleff):
  rho = actual / predicted reduction; accept if rho > threshold, then
  mu *= max(1/3, 1 - (2 rho - 1)^3) and nu = 2; on rejection mu *= nu, nu *= 2.

A rule only decides; the trainer owns the loop, the weights and the bounds on mu.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class DampingRule(Protocol):
    """What the trainer asks of a damping rule."""

    mu_init: float
    scale_by_diagonal: bool

    def accepts(self, actual_reduction: float, predicted_reduction: float) -> bool:
        """Whether a trial with these reductions of E is kept."""
        ...

    def after_accept(self, mu: float, gain_ratio: float) -> float:
        """mu for the next epoch after an accepted step."""
        ...

    def after_reject(self, mu: float) -> float:
        """mu for the next trial after a rejected one (or a failed factorisation)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Mutable state to checkpoint (empty for stateless rules)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        ...


@dataclass
class SeedDamping:
    """Accept when E does not increase; mu /= factor on success, mu *= factor on failure."""

    mu_init: float = 10.0
    factor: float = 10.0
    scale_by_diagonal: bool = False

    def __post_init__(self) -> None:
        if not self.mu_init > 0 or not math.isfinite(self.mu_init):
            raise ValueError(f"mu_init must be a positive finite number, got {self.mu_init}")
        if not self.factor > 1:
            raise ValueError(
                f"demping_coef / factor must be > 1 so that mu can grow and shrink, "
                f"got {self.factor}"
            )

    def accepts(self, actual_reduction: float, predicted_reduction: float) -> bool:
        return actual_reduction >= 0.0

    def after_accept(self, mu: float, gain_ratio: float) -> float:
        return mu / self.factor

    def after_reject(self, mu: float) -> float:
        return mu * self.factor

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


@dataclass
class MarquardtDamping(SeedDamping):
    """The seed rule with the damping term mu * diag(J^T J) instead of mu * I."""

    scale_by_diagonal: bool = True


@dataclass
class GainRatioDamping:
    """Nielsen's gain-ratio update: smooth mu changes driven by model agreement."""

    mu_init: float = 1e-3
    threshold: float = 1e-4
    scale_by_diagonal: bool = False
    nu: float = 2.0

    def __post_init__(self) -> None:
        if not self.mu_init > 0 or not math.isfinite(self.mu_init):
            raise ValueError(f"mu_init must be a positive finite number, got {self.mu_init}")

    def accepts(self, actual_reduction: float, predicted_reduction: float) -> bool:
        if predicted_reduction <= 0.0:
            return False
        return actual_reduction / predicted_reduction > self.threshold

    def after_accept(self, mu: float, gain_ratio: float) -> float:
        self.nu = 2.0
        return mu * max(1.0 / 3.0, 1.0 - (2.0 * gain_ratio - 1.0) ** 3)

    def after_reject(self, mu: float) -> float:
        mu = mu * self.nu
        self.nu *= 2.0
        return mu

    def state_dict(self) -> dict[str, Any]:
        return {"nu": self.nu}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nu = float(state.get("nu", 2.0))


def make_damping(name: str, mu_init: float, factor: float = 10.0) -> DampingRule:
    """Build a rule by its config name: ``seed``, ``marquardt`` or ``gain_ratio``."""
    if name == "seed":
        return SeedDamping(mu_init=mu_init, factor=factor)
    if name == "marquardt":
        return MarquardtDamping(mu_init=mu_init, factor=factor)
    if name == "gain_ratio":
        return GainRatioDamping(mu_init=mu_init)
    raise ValueError(f"unknown damping rule {name!r}; choose seed, marquardt or gain_ratio")
