"""The ``tracking`` config group (``conf/tracking/*.yaml``) turned into a tracker or a store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lmbench.tracking.flatten import to_plain
from lmbench.tracking.protocol import NullTracker
from lmbench.tracking.run import RunTracker
from lmbench.tracking.store import prepare_store


@dataclass(frozen=True)
class TrackingConfig:
    """The knobs of ``conf/tracking``.

    ``enabled``: log to MLflow at all (``tracking=none`` sets false).
    ``tracking_uri``: ``null`` = ``MLFLOW_TRACKING_URI`` or ``sqlite:///<launch dir>/mlflow.db``.
    ``experiment_name``: MLflow experiment receiving the runs.
    ``log_weights``: save trained weights as ``weights/<name>.pt`` artifacts.
    ``log_report``: let the harness attach per-run report artifacts (figures, tables).
    ``log_models``: log trained models as MLflow models (``mlflow.pyfunc.load_model``-able).
    ``log_datasets``: record the split as the run's dataset inputs (``mlflow.log_input``).
    ``system_metrics``: MLflow's CPU/memory/disk/network sampler per run: ``true``, ``false``
    or ``auto`` (single runs only: a --multirun job, which has a ``sweep_id``, gets none).
    ``system_metrics_interval_s``: its sampling interval.
    """

    enabled: bool = True
    tracking_uri: str | None = None
    experiment_name: str = "lmbench"
    log_weights: bool = True
    log_report: bool = True
    log_models: bool = True
    log_datasets: bool = True
    system_metrics: bool | str = "auto"
    system_metrics_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.system_metrics not in (True, False, "auto"):
            raise ValueError(
                f"tracking.system_metrics must be true, false or auto, got {self.system_metrics!r}"
            )

    def wants_system_metrics(self, sweep_id: str | None) -> bool:
        """Whether a run samples system metrics: ``auto`` means single runs only."""
        if self.system_metrics == "auto":
            return sweep_id is None
        return bool(self.system_metrics)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> TrackingConfig:
        """Read the group (a dict or OmegaConf node); unknown keys are an error naming the key."""
        if cfg is None:
            return cls(enabled=False)
        if isinstance(cfg, TrackingConfig):
            return cfg
        plain = to_plain(cfg)
        if not isinstance(plain, dict):
            raise TypeError(f"tracking config must be a mapping, got {type(cfg).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(plain) - known)
        if unknown:
            raise ValueError(
                f"unknown tracking option(s) {', '.join('tracking.' + k for k in unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**plain)


def tracker_from_config(
    cfg: Mapping[str, Any] | TrackingConfig | None, **run_kwargs: Any
) -> RunTracker | NullTracker:
    """A ``RunTracker`` for ``cfg`` (the ``tracking`` group), or a ``NullTracker`` if disabled.

    ``run_kwargs`` go to ``RunTracker`` (``run_name``, ``sweep_id``, ``parent_run_id``,
    ``device``, ``dataset_hash``, ``tags``, ``experiment_id``).
    """
    tc = TrackingConfig.from_mapping(cfg)
    if not tc.enabled:
        return NullTracker(**run_kwargs)
    return RunTracker(
        tracking_uri=tc.tracking_uri,
        experiment_name=tc.experiment_name,
        log_weights=tc.log_weights,
        log_report=tc.log_report,
        log_models=tc.log_models,
        log_datasets=tc.log_datasets,
        system_metrics_interval_s=(
            tc.system_metrics_interval_s
            if tc.wants_system_metrics(run_kwargs.get("sweep_id")) else None
        ),
        **run_kwargs,
    )


def prepare_store_from_config(cfg: Mapping[str, Any] | TrackingConfig | None) -> str | None:
    """:func:`prepare_store` for the ``tracking`` group; ``None`` when tracking is disabled."""
    tc = TrackingConfig.from_mapping(cfg)
    if not tc.enabled:
        return None
    return prepare_store(tc.tracking_uri, tc.experiment_name)
