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
    """

    enabled: bool = True
    tracking_uri: str | None = None
    experiment_name: str = "lmbench"
    log_weights: bool = True
    log_report: bool = True

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
        **run_kwargs,
    )


def prepare_store_from_config(cfg: Mapping[str, Any] | TrackingConfig | None) -> str | None:
    """:func:`prepare_store` for the ``tracking`` group; ``None`` when tracking is disabled."""
    tc = TrackingConfig.from_mapping(cfg)
    if not tc.enabled:
        return None
    return prepare_store(tc.tracking_uri, tc.experiment_name)
