"""Hydra callback run in the multirun parent: prepares the tracking store before any worker and
gives the sweep a parent MLflow run that every job nests under.

Enable with, in the primary config::

    hydra:
      callbacks:
        tracking_store:
          _target_: lmbench.tracking.hydra_callback.PrepareTrackingStore

``on_multirun_start`` creates the store and experiment, then the parent run
(:class:`lmbench.tracking.sweep.SweepParent`, id handed to the jobs through the sweep
directory); ``on_multirun_end`` logs the job counts and ends it. Hydra turns an exception
raised in a callback into a warning, so a failure here does not stop the sweep; workers then
still create the store safely under the store lock (one at a time), without a parent.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback

from lmbench.tracking.config import prepare_store_from_config
from lmbench.tracking.flatten import to_plain
from lmbench.tracking.sweep import SweepParent

#: Launchers whose jobs run in processes of the sweep's own machine and end with it.
LOCAL_LAUNCHERS = (
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
)


class PrepareTrackingStore(Callback):
    """Prepare ``cfg.tracking``'s store and run the sweep's parent run around a multirun."""

    def __init__(self, config_key: str = "tracking", parent_run: bool = True) -> None:
        self.config_key = config_key
        self.parent_run = parent_run
        self.parent: SweepParent | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        section = config.get(self.config_key) if hasattr(config, "get") else None
        if section is None:
            return
        experiment_id = prepare_store_from_config(section)
        hydra = config.get("hydra")
        if experiment_id is None or not self.parent_run or hydra is None:
            return
        launcher = str((hydra.get("launcher") or {}).get("_target_", ""))
        self.parent = SweepParent(section, str(hydra.sweep.dir),
                                  local_jobs=launcher in LOCAL_LAUNCHERS)
        self.parent.start(
            experiment_id,
            overrides=[str(o) for o in hydra.overrides.task],
            sweep_params=to_plain(hydra.sweeper.get("params") or {}),
            config=_job_config(config),
        )

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.parent is not None:
            self.parent.finish(completed=True)
            self.parent = None


def _job_config(config: Any) -> dict[str, Any]:
    """The composed config without the ``hydra`` node, resolved where it can be."""
    from omegaconf import OmegaConf

    keys = [str(k) for k in config if k != "hydra"]
    copy = OmegaConf.masked_copy(config, keys)
    try:
        plain = OmegaConf.to_container(copy, resolve=True)
    except Exception:  # an interpolation only a job can resolve: keep it as written
        plain = OmegaConf.to_container(copy, resolve=False)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}
