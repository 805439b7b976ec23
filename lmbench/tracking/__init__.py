"""MLflow tracking for lmbench: flattened config, per-epoch metrics, artifacts and tags.

The only package that imports MLflow (lazily: importing ``lmbench.tracking`` does not). The
default store is an embedded SQLite file ``<launch dir>/mlflow.db`` with artifacts in
``<launch dir>/mlruns``; no server is needed. Typical use in the harness::

    experiment_id = prepare_store_from_config(cfg.tracking)    # parent, before workers
    with tracker_from_config(cfg.tracking, run_name=name, sweep_id=sweep,
                             device=str(device), dataset_hash=digest) as tracker:
        tracker.log_config(cfg)
        ...
        tracker.log_epoch_history({SERIES_TRAIN_LOSS: [...], SERIES_VAL_LOSS: [...], ...})
        tracker.log_metrics({test_metric("rmse"): rmse, METRIC_WALL_TIME: wall})
        tracker.log_model(model, x_test)              # MLflow model, served by mlflow.pyfunc
        tracker.log_dataset(name, source, {"train": (x, y, digest), ...})   # mlflow inputs

A --multirun gets a parent run (``lmbench.tracking.sweep``, started by the Hydra callback in
``lmbench.tracking.hydra_callback``); its jobs nest under it (``parent_run_id``), and a
tuning's trials nest under their job's run (:meth:`RunTracker.log_child_runs`).

Every tag, param, metric and series name that writers log and reports read is in
``lmbench.tracking.schema``.
"""

from lmbench.tracking.config import TrackingConfig, prepare_store_from_config, tracker_from_config
from lmbench.tracking.flatten import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    flatten_config,
    sanitize_key,
    truncate_value,
)
from lmbench.tracking.protocol import NullTracker, RunStatus, Tracker
from lmbench.tracking.provenance import git_commit
from lmbench.tracking.redact import redact, redact_text
from lmbench.tracking.run import RunTracker
from lmbench.tracking.schema import (
    CONFIG_ARTIFACT,
    ERROR_ARTIFACT,
    TAG_DATASET_HASH,
    TAG_DEVICE,
    TAG_ERROR,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_LMBENCH_VERSION,
    TAG_MLFLOW_VERSION,
    TAG_PARENT_RUN_ID,
    TAG_PYTHON_VERSION,
    TAG_SWEEP_ID,
    TAG_TORCH_VERSION,
    WEIGHTS_ARTIFACT_DIR,
)
from lmbench.tracking.store import TrackingStoreError, get_client, prepare_store, search_runs
from lmbench.tracking.uri import TRACKING_URI_ENV, resolve_tracking_uri

__all__ = [
    "CONFIG_ARTIFACT",
    "ERROR_ARTIFACT",
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "TAG_DATASET_HASH",
    "TAG_DEVICE",
    "TAG_ERROR",
    "TAG_GIT_COMMIT",
    "TAG_GIT_DIRTY",
    "TAG_LMBENCH_VERSION",
    "TAG_MLFLOW_VERSION",
    "TAG_PARENT_RUN_ID",
    "TAG_PYTHON_VERSION",
    "TAG_SWEEP_ID",
    "TAG_TORCH_VERSION",
    "TRACKING_URI_ENV",
    "WEIGHTS_ARTIFACT_DIR",
    "NullTracker",
    "RunStatus",
    "RunTracker",
    "Tracker",
    "TrackingConfig",
    "TrackingStoreError",
    "flatten_config",
    "get_client",
    "git_commit",
    "prepare_store",
    "prepare_store_from_config",
    "redact",
    "redact_text",
    "resolve_tracking_uri",
    "sanitize_key",
    "search_runs",
    "tracker_from_config",
    "truncate_value",
]
