"""Hydra callback that prepares the tracking store in the multirun parent, before any worker.

Enable with, in the primary config::

    hydra:
      callbacks:
        tracking_store:
          _target_: lmbench.tracking.hydra_callback.PrepareTrackingStore

Hydra turns an exception raised in a callback into a warning, so a failure here does not stop
the sweep; workers then still create the store safely under the store lock (one at a time).
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback

from lmbench.tracking.config import prepare_store_from_config


class PrepareTrackingStore(Callback):
    """Run :func:`prepare_store_from_config` on ``cfg.tracking`` when a multirun starts."""

    def __init__(self, config_key: str = "tracking") -> None:
        self.config_key = config_key

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        section = config.get(self.config_key) if hasattr(config, "get") else None
        if section is not None:
            prepare_store_from_config(section)
