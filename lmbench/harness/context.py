"""What a training runner (``lm``, ``search``) gets from the harness: one prepared split, the
model factory of ``cfg.model``, the run's open tracker and whether to show progress."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lmbench.data import PreparedDataset
from lmbench.models import build_model
from lmbench.tracking import Tracker


def own_model(cfg: Mapping[str, Any]) -> str | None:
    """The model tag of a tuned trainer that ignores ``cfg.model``; ``None`` when the job
    trains ``cfg.model`` (a single LM configuration)."""
    trainer = cfg.get("trainer") or {}
    if str(trainer.get("runner", "search")) == "lm":
        return None
    # the GBDTs grow their own trees; the tuned neural methods build MLPs of the widths their
    # search space names (imported here: the tuning stack is not needed to compose a job)
    from lmbench.baselines.dispatch import METHODS

    method = METHODS.get(str(trainer.get("name", "")))
    return method.model if method is not None else None


def method_label(trainer: Mapping[str, Any]) -> str:
    """The run's ``method`` tag: the trainer's ``label`` (a variant of a method, e.g.
    ``lm_bayesian``), else its ``name``."""
    return str(trainer.get("label") or trainer["name"])


def model_tag(cfg: Mapping[str, Any]) -> str:
    """The run's ``model`` tag: the trainer's own model, else ``cfg.model.name``."""
    return own_model(cfg) or str((cfg.get("model") or {}).get("name", "mlp"))


def logged_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The job config as logged: without the ``model`` section when the trainer ignores it
    (its keys would count as configurations in the reports)."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    assert isinstance(plain, dict)
    if own_model(cfg) is not None:
        plain.pop("model", None)
    return plain


@dataclass(frozen=True)
class DatasetJob:
    """One job on a dataset split, inside its open tracker run."""

    cfg: DictConfig
    data: PreparedDataset
    tracker: Tracker
    progress: bool = False

    def model_factory(self, loss: str = "mse") -> Callable[[], nn.Module]:
        """A fresh ``cfg.model`` network sized to the split on each call (a ``loss`` that
        takes logits gets a linear head)."""
        cfg, data = self.cfg, self.data
        in_features = data.x_train.shape[1]
        out_features = data.y_train.shape[1]

        def factory() -> nn.Module:
            return build_model(cfg.model, in_features, out_features, data.task, loss)

        return factory

    @property
    def inverse_target(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """Undoes the target scaling of regression splits (metrics in original units)."""
        data = self.data
        return data.inverse_transform_target if data.task == "regression" else None
