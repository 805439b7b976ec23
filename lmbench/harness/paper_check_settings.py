"""The settings of one published-results check, read from ``cfg.job``
(``conf/job/paper_check.yaml``; null = the problem's default from ``lmbench.data.problems``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch

from lmbench.core import TrainerSettings
from lmbench.core.damping import SeedDamping
from lmbench.data.problems import PROBLEMS, Problem

#: Seed of start k of a run with seed s: s * SEED_STRIDE + k (so runs with other seeds never
#: share a start).
SEED_STRIDE = 1_000_000


@dataclass(frozen=True)
class CheckSettings:
    """The settings of one check after config overrides (null = the problem's default)."""

    problem: Problem
    starts: int
    max_epochs: int
    target_mse: float
    dtype: torch.dtype
    mu_init: float
    demping_coef: float
    damping: str
    inner_steps: int
    mu_max: float

    @classmethod
    def from_config(cls, job: Any) -> CheckSettings:
        """Read ``cfg.job`` (``conf/job/paper_check.yaml``); errors name the knob."""
        name = str(job.problem)
        if name not in PROBLEMS:
            raise ValueError(
                f"job.problem={name!r} is not a known problem; known: {', '.join(PROBLEMS)}"
            )
        problem = PROBLEMS[name]

        def pick(key: str, default: Any) -> Any:
            value = job.get(key)
            return default if value is None else value

        starts = int(pick("starts", problem.starts))
        if not 1 <= starts < SEED_STRIDE:
            raise ValueError(f"job.starts must be in [1, {SEED_STRIDE}), got {starts}")
        max_epochs = int(pick("max_epochs", problem.max_epochs))
        if max_epochs < 1:
            raise ValueError(f"job.max_epochs must be >= 1, got {max_epochs}")
        dtype_name = str(pick("dtype", problem.dtype))
        if dtype_name not in ("float32", "float64"):
            raise ValueError(f"job.dtype must be float32 or float64, got {dtype_name!r}")
        return cls(
            problem=problem,
            starts=starts,
            max_epochs=max_epochs,
            target_mse=float(pick("target_mse", problem.target_mse)),
            dtype=getattr(torch, dtype_name),
            mu_init=float(pick("mu_init", SeedDamping.mu_init)),
            demping_coef=float(pick("demping_coef", SeedDamping.factor)),
            damping=str(pick("damping", TrainerSettings.damping)),
            inner_steps=int(pick("inner_steps", TrainerSettings.inner_steps)),
            mu_max=float(pick("mu_max", TrainerSettings.mu_max)),
        )

    def trainer_settings(self) -> TrainerSettings:
        """The LM run of every start: the seed's damping, stopping at the target MSE (unless the
        problem runs all its epochs), in-memory engine."""
        return TrainerSettings(
            damping=self.damping,  # type: ignore[arg-type]
            mu_init=self.mu_init,
            damping_factor=self.demping_coef,
            inner_steps=self.inner_steps,
            max_epochs=self.max_epochs,
            min_error=self.target_mse if self.problem.stop_at_target else None,
            mu_max=self.mu_max,
        )

    def params(self) -> dict[str, Any]:
        """What the run logs as ``check.*`` params (the report reads them back)."""
        p = self.problem
        return {
            "problem": p.name, "description": p.description, "network": p.network,
            "starts": self.starts, "max_epochs": self.max_epochs,
            "target_mse": self.target_mse, "dtype": str(self.dtype).removeprefix("torch."),
            "mu_init": self.mu_init, "demping_coef": self.demping_coef,
            "damping": self.damping, "inner_steps": self.inner_steps,
            "stop_at_target": p.stop_at_target,
            **({"batch_size": p.batch_size, "reference": "torch_levenberg_marquardt"}
               if p.batch_size is not None else {}),
        }

    def data_hash(self) -> str:
        """SHA-256 of the problem's data at the check's dtype (the run's dataset hash)."""
        x, y = self.problem.data(self.dtype)
        digest = hashlib.sha256()
        for t in (x, y):
            digest.update(str(tuple(t.shape)).encode())
            digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()
