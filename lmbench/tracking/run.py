"""One job's MLflow run: ``RunTracker``. ``NullTracker`` (tracking off) and the ``Tracker``
protocol they share live in ``lmbench.tracking.protocol``; tag names in ``schema``.

All writes go through ``MlflowClient`` with an explicit run id, never the fluent ``mlflow.*``
API and its process-global active run, so parallel jobs in one process cannot cross-log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from lmbench.tracking.artifacts import log_figure, log_state_dict, split_artifact_file
from lmbench.tracking.batching import log_batches, scalar_entries, series_entries
from lmbench.tracking.children import log_child_runs
from lmbench.tracking.flatten import (
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    flatten_config,
    sanitize_key,
    to_plain,
    truncate_value,
)
from lmbench.tracking.inputs import SystemMetrics, log_split_inputs
from lmbench.tracking.models import log_model
from lmbench.tracking.protocol import NullTracker, RunStatus, Tracker
from lmbench.tracking.provenance import UNKNOWN, git_commit, git_dirty, package_version
from lmbench.tracking.redact import redact, redact_text
from lmbench.tracking.schema import (
    CONFIG_ARTIFACT,
    ERROR_ARTIFACT,
    TAG_DATASET_HASH,
    TAG_DEVICE,
    TAG_ERROR,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_LMBENCH_VERSION,
    TAG_MLFLOW_GIT_COMMIT,
    TAG_MLFLOW_VERSION,
    TAG_MODEL_URI,
    TAG_PARENT_RUN_ID,
    TAG_PYTHON_VERSION,
    TAG_SWEEP_ID,
    TAG_TORCH_VERSION,
)
from lmbench.tracking.store import get_client, prepare_store, store_errors
from lmbench.tracking.uri import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["NullTracker", "RunStatus", "RunTracker", "Tracker"]

_log = logging.getLogger(__name__)


class RunTracker:
    """One MLflow run for one job, as a context manager.

    On enter a run is created in ``experiment_name`` (created if needed via
    :func:`prepare_store`, or given as ``experiment_id``) and tagged with git commit, lmbench /
    torch / mlflow / python versions, ``device``, ``dataset_hash``, ``sweep_id``,
    ``parent_run_id`` (as ``mlflow.parentRunId``) and ``tags``. On a normal exit the run is
    FINISHED; on an exception it is FAILED (KILLED for ``KeyboardInterrupt``), the error is
    recorded as tag ``error`` and artifact ``error.txt`` (traceback), and the exception
    propagates. ``log_weights=False`` turns :meth:`log_state_dict` into a no-op,
    ``log_models=False`` :meth:`log_model`, ``log_datasets=False`` :meth:`log_dataset`;
    ``log_report`` is carried for the harness to consult. ``system_metrics_interval_s`` (a
    number) samples MLflow's system metrics while the run is open.
    """

    def __init__(
        self,
        run_name: str | None = None,
        *,
        experiment_name: str = "lmbench",
        tracking_uri: str | None = None,
        experiment_id: str | None = None,
        sweep_id: str | None = None,
        parent_run_id: str | None = None,
        device: str | None = None,
        dataset_hash: str | None = None,
        tags: Mapping[str, Any] | None = None,
        log_weights: bool = True,
        log_report: bool = True,
        log_models: bool = True,
        log_datasets: bool = True,
        system_metrics_interval_s: float | None = None,
    ) -> None:
        self.run_name = run_name
        self.experiment_name = experiment_name
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment_id = experiment_id
        self.sweep_id = sweep_id
        self.parent_run_id = parent_run_id
        self.device = None if device is None else str(device)
        self.dataset_hash = dataset_hash
        self.extra_tags = dict(tags or {})
        self.log_weights = log_weights
        self.log_report = log_report
        self.log_models = log_models
        self.log_datasets = log_datasets
        self.system_metrics_interval_s = system_metrics_interval_s
        self._system_metrics: SystemMetrics | None = None
        self.run_id: str | None = None
        self.artifact_uri: str | None = None
        self.status: str | None = None
        self._client: MlflowClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if self.run_id is None or self.status is not None:
            return False
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            self.end("FINISHED")
            return False
        status: RunStatus = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            self._record_error(exc_type, exc, tb)
        except Exception as log_exc:  # never hide the job's own exception
            _log.warning("could not record the error of run %s: %s", self.run_id,
                         redact_text(str(log_exc)))
        try:
            self.end(status)
        except Exception as end_exc:
            _log.warning("could not end run %s as %s: %s", self.run_id, status,
                         redact_text(str(end_exc)))
        return False

    def start(self) -> Self:
        """Create the run (and the experiment if needed); returns ``self``."""
        if self.run_id is not None:
            raise RuntimeError(f"run {self.run_id} was already started")
        if self.experiment_id is None:
            self.experiment_id = prepare_store(self.tracking_uri, self.experiment_name)
        self._client = get_client(self.tracking_uri)
        with store_errors(self.tracking_uri):
            run = self._client.create_run(
                self.experiment_id,
                run_name=None if self.run_name is None else redact_text(self.run_name),
                tags=self._initial_tags(),
            )
        self.run_id = run.info.run_id
        self.artifact_uri = run.info.artifact_uri
        _log.info(
            "MLflow run %s (%s) in experiment %s at %s",
            self.run_id,
            run.info.run_name,
            self.experiment_id,
            redact_text(self.tracking_uri),
        )
        if self.system_metrics_interval_s is not None:
            self._system_metrics = SystemMetrics(
                self.tracking_uri, self.run_id, self.system_metrics_interval_s
            )
            self._system_metrics.start()
        return self

    def end(self, status: RunStatus = "FINISHED") -> None:
        """Terminate the run with ``status`` (FINISHED, FAILED or KILLED); idempotent."""
        if self.run_id is None or self.status is not None:
            return
        if self._system_metrics is not None:
            self._system_metrics.stop()
            self._system_metrics = None
        self._require_client().set_terminated(self.run_id, status=status)
        self.status = status

    def _initial_tags(self) -> dict[str, str]:
        commit = git_commit()
        tags: dict[str, Any] = {
            TAG_GIT_COMMIT: commit,
            TAG_LMBENCH_VERSION: package_version("lmbench"),
            TAG_TORCH_VERSION: package_version("torch"),
            TAG_MLFLOW_VERSION: package_version("mlflow"),
            TAG_PYTHON_VERSION: platform.python_version(),
        }
        if commit != UNKNOWN:
            tags[TAG_MLFLOW_GIT_COMMIT] = commit
            dirty = git_dirty()
            if dirty is not None:
                tags[TAG_GIT_DIRTY] = str(dirty).lower()
        optional = {
            TAG_DEVICE: self.device,
            TAG_DATASET_HASH: self.dataset_hash,
            TAG_SWEEP_ID: self.sweep_id,
            TAG_PARENT_RUN_ID: self.parent_run_id,
        }
        tags.update({k: v for k, v in optional.items() if v is not None})
        tags.update(self.extra_tags)
        return {
            str(k): truncate_value(redact_text(str(v)), MAX_TAG_VALUE_LENGTH)
            for k, v in tags.items()
        }

    def _record_error(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        name = (exc_type or type(exc)).__name__
        message = f"{name}: {exc}" if str(exc) else name
        self.set_tags({TAG_ERROR: message})
        text = "".join(traceback.format_exception(exc_type or type(exc), exc, tb))
        self.log_text(text, ERROR_ARTIFACT)

    def _require_client(self) -> MlflowClient:
        if self._client is None or self.run_id is None:
            raise RuntimeError("the run is not started: use `with RunTracker(...)` or .start()")
        return self._client

    # -- logging ---------------------------------------------------------------------------

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set string tags (values ``str()``-ed, credentials masked, cut to MLflow's 8000
        characters)."""
        from mlflow.entities import RunTag

        entries = [
            RunTag(str(k), truncate_value(redact_text(str(v)), MAX_TAG_VALUE_LENGTH))
            for k, v in tags.items()
        ]
        log_batches(self._require_client(), self.run_id, "tags", entries)

    def log_config(
        self, config: Mapping[str, Any], artifact_file: str = CONFIG_ARTIFACT
    ) -> dict[str, str]:
        """Log the flattened config as params and the resolved config as a YAML artifact.

        Keys are made MLflow-valid with :func:`sanitize_key` (a key that then collides with
        another gets a hash suffix), values cut to 6000 characters with
        :func:`truncate_value`. Credentials (URI user info, token query parameters, values of
        secret-named keys) are masked in both (:func:`lmbench.tracking.redact.redact`).
        Returns the params as logged. MLflow refuses to change a param
        already logged with another value, so log each config once per run.
        """
        import yaml
        from mlflow.entities import Param

        client = self._require_client()
        config = redact(to_plain(config))
        flat = flatten_config(config, max_value_length=MAX_PARAM_VALUE_LENGTH)
        params: dict[str, str] = {}
        for key, value in flat.items():
            name = sanitize_key(key)
            if name in params:  # two raw keys sanitised alike: keep both, told apart by a hash
                name = sanitize_key(f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:8]}")
            params[name] = value
        log_batches(client, self.run_id, "params", [Param(k, v) for k, v in params.items()])
        text = yaml.safe_dump(to_plain(config), sort_keys=False, default_flow_style=False)
        self.log_text(text, artifact_file)
        return params

    def log_epoch_history(
        self,
        history: Mapping[str, Iterable[Any]],
        step_offset: int = 0,
        *,
        timestamp_ms: int | None = None,
    ) -> int:
        """Log per-epoch series ``{"train_loss": [...], "val_loss": [...], ...}`` with steps.

        Element ``i`` of each series is logged at step ``step_offset + i``; ``None`` and NaN
        entries (e.g. epochs without validation) are skipped. Sent in ``log_batch`` calls of at
        most 1000 metrics (one ``log_metric`` per value costs ~9 ms on SQLite). Returns the
        number of values logged. Series names: ``lmbench.tracking.schema`` (``SERIES_*``).
        ``timestamp_ms`` (default: now) makes a retry idempotent: values a failed call already
        stored, sent again with the same timestamp, are the same metric and are stored once.
        """
        entries = series_entries(history, step_offset, timestamp_ms=timestamp_ms)
        log_batches(self._require_client(), self.run_id, "metrics", entries)
        return len(entries)

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> int:
        """Log scalar metrics (final test scores, parameter count, wall time, peak memory).

        One batched call; ``None``/NaN values skipped. Returns the number logged.
        """
        entries = scalar_entries(metrics, step)
        log_batches(self._require_client(), self.run_id, "metrics", entries)
        return len(entries)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Write ``text`` to the artifact ``artifact_file`` (relative, like ``notes/a.md``);
        credentials in URIs are masked."""
        split_artifact_file(artifact_file)
        self._require_client().log_text(self.run_id, redact_text(text), artifact_file)

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Write a dict as JSON (``.json``) or YAML (``.yaml``/``.yml``) artifact."""
        split_artifact_file(artifact_file)
        self._require_client().log_dict(self.run_id, redact(to_plain(dictionary)), artifact_file)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a local file, or a whole directory's contents, into the run's artifacts."""
        client = self._require_client()
        path = Path(local_path)
        if path.is_dir():
            client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.is_file():
            client.log_artifact(self.run_id, str(path), artifact_path)
        else:
            raise FileNotFoundError(f"no file or directory to log as artifact: {path}")

    def log_figure(
        self, figure: Any, artifact_file: str = "figure.png", dpi: int = 120, tight: bool = True
    ) -> None:
        """Save a matplotlib figure (format from the suffix, PNG by default) as an artifact.

        The figure is not closed; that stays the caller's choice.
        """
        log_figure(self.log_artifact, figure, artifact_file, dpi, tight)

    def log_state_dict(self, state_dict: Mapping[str, Any], name: str = "model") -> str | None:
        """Save weights with ``torch.save`` (tensors moved to CPU) as ``weights/<name>.pt``.

        The raw state dict (what salvage and the reports read); the servable MLflow model is
        :meth:`log_model`. Returns the artifact path, or ``None`` when ``log_weights`` is off.
        """
        if not self.log_weights:
            return None
        self._require_client()
        return log_state_dict(self.log_artifact, state_dict, name)

    def log_model(self, model: Any, x_example: Any) -> str | None:
        """Log ``model`` (a torch network, an XGBoost or CatBoost estimator) as an MLflow model
        with a signature and ``x_example``'s first rows as input example; its URI is tagged
        ``model_uri`` and returned (``None`` when ``log_models`` is off or no flavour fits)."""
        if not self.log_models:
            return None
        self._require_client()
        assert self.run_id is not None
        uri = log_model(self.tracking_uri, self.run_id, model, x_example)
        if uri is not None:
            self.set_tags({TAG_MODEL_URI: uri})
        return uri

    def log_dataset(
        self, name: str, source: Mapping[str, Any],
        splits: Mapping[str, tuple[Any, Any, str]],
    ) -> int:
        """Record the run's split as dataset inputs: ``splits`` maps a context (``train``,
        ``validation``, ``test``) to ``(x, y, content hash)``; ``source`` describes where the
        table comes from. One call; the number logged (0 when ``log_datasets`` is off)."""
        if not self.log_datasets:
            return 0
        client = self._require_client()
        assert self.run_id is not None
        return log_split_inputs(client, self.run_id, name, redact(source), splits)

    def log_child_runs(self, children: Iterable[Mapping[str, Any]]) -> list[str]:
        """Nest one finished run per item under this run; an item has ``run_name``,
        ``params``, ``metrics`` and ``tags`` (e.g. the trials of a tuning). Their ids."""
        client = self._require_client()
        assert self.run_id is not None and self.experiment_id is not None
        return log_child_runs(client, self.experiment_id, self.run_id, children)
