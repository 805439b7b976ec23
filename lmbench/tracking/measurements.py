"""Measured points as MLflow runs: one run per point, with params, metrics and tags.

The benchmarks (``lmbench.bench.performance``) and ``lmbench-limits --import-json`` log what
they measured through this, so the store, run naming and tags are handled in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lmbench.tracking import CONFIG_ARTIFACT, RunTracker, prepare_store


@dataclass(frozen=True)
class MeasuredRun:
    """One measured point: run name, params (also written as ``params_artifact``), metrics,
    the ``device`` tag and further tags."""

    run_name: str
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    device: str
    tags: Mapping[str, Any] = field(default_factory=dict)
    params_artifact: str = CONFIG_ARTIFACT


def log_measured_runs(
    runs: Iterable[MeasuredRun], experiment: str, tracking_uri: str | None = None
) -> int:
    """Log each run in ``experiment`` (created if missing); the number of runs logged."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    experiment_id = prepare_store(tracking_uri, experiment)
    count = 0
    for run in runs:
        with RunTracker(
            run.run_name,
            experiment_name=experiment,
            experiment_id=experiment_id,
            tracking_uri=tracking_uri,
            device=run.device,
            tags=dict(run.tags),
            log_weights=False,
        ) as tracker:
            tracker.log_config(dict(run.params), artifact_file=run.params_artifact)
            tracker.log_metrics(dict(run.metrics))
        count += 1
    return count
