"""What every runner shares: the ``JobOutcome`` it returns and the run name it logs under."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lmbench.harness.context import model_tag
from lmbench.tracking import flatten_config


@dataclass
class JobOutcome:
    """What one job measured (also what the Hydra app returns to sweepers)."""

    method: str
    dataset: str
    task: str
    test_metrics: dict[str, float]
    primary_metric: str
    n_parameters: int | None
    train_time_s: float
    run_id: str | None = None
    stop_reason: str | None = None
    extra_metrics: dict[str, float] = field(default_factory=dict)
    #: The job's ``config_hash`` tag (``lmbench.tracking.resume.config_hash``).
    config_hash: str | None = None
    #: True when the job trained nothing: run ``run_id`` already held its result.
    skipped: bool = False

    @property
    def primary_value(self) -> float:
        return self.test_metrics.get(self.primary_metric, math.nan)


def run_name(cfg: Mapping[str, Any], method: str, dataset: str) -> str:
    """Readable and unique enough: method/dataset/model/seed plus a short config digest. The
    model is the run's ``model`` tag (``model_tag``): a tuned method's own model
    (``mlp_grid``, ``xgboost``), not the ``cfg.model`` it ignores."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(plain, Mapping)
    digest = hashlib.sha256(repr(sorted(flatten_config(plain).items())).encode()).hexdigest()
    return f"{method}-{dataset}-{model_tag(plain)}-s{plain['seed']}-{digest[:8]}"
