"""What a training runner (``lm``, ``search``) gets from the harness: one prepared split, the
model factory of ``cfg.model``, the run's open tracker and whether to show progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig
from torch import nn

from lmbench.data import PreparedDataset
from lmbench.models import build_model
from lmbench.tracking import Tracker


@dataclass(frozen=True)
class DatasetJob:
    """One job on a dataset split, inside its open tracker run."""

    cfg: DictConfig
    data: PreparedDataset
    tracker: Tracker
    progress: bool = False

    def model_factory(self, loss: str = "mse") -> Callable[[], nn.Module]:
        """A fresh ``cfg.model`` network sized to the split on each call (a cross-entropy
        ``loss`` gets a logits head)."""
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
