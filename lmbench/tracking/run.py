"""One job's MLflow run: ``RunTracker`` (real) and ``NullTracker`` (tracking off), same interface.

All writes go through ``MlflowClient`` with an explicit run id, never the fluent ``mlflow.*``
API and its process-global active run, so parallel jobs in one process cannot cross-log.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

from lmbench.tracking.flatten import (
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    flatten_config,
    sanitize_key,
    to_plain,
    truncate_value,
)
from lmbench.tracking.provenance import git_commit, git_dirty, package_version
from lmbench.tracking.store import get_client, prepare_store
from lmbench.tracking.uri import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

_log = logging.getLogger(__name__)

# Tag names set on every run (plain names: reports filter with ``tags.sweep_id = '...'``).
TAG_GIT_COMMIT = "git_commit"
TAG_GIT_DIRTY = "git_dirty"
TAG_LMBENCH_VERSION = "lmbench_version"
TAG_TORCH_VERSION = "torch_version"
TAG_MLFLOW_VERSION = "mlflow_version"
TAG_PYTHON_VERSION = "python_version"
TAG_DEVICE = "device"
TAG_DATASET_HASH = "dataset_hash"
TAG_SWEEP_ID = "sweep_id"
TAG_ERROR = "error"
#: MLflow's own tag for nesting a run under a parent run in the UI.
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
#: MLflow's own tag for the source commit (shown in the UI).
TAG_MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"

ERROR_ARTIFACT = "error.txt"
CONFIG_ARTIFACT = "config.yaml"
WEIGHTS_ARTIFACT_DIR = "weights"

# MLflow limits per ``log_batch`` call (``MAX_METRICS_PER_BATCH``, ``MAX_PARAMS_TAGS_PER_BATCH``).
_METRICS_PER_BATCH = 1000
_PARAMS_PER_BATCH = 100

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]


@runtime_checkable
class Tracker(Protocol):
    """What the harness may call on a tracker; ``RunTracker`` and ``NullTracker`` satisfy it."""

    run_id: str | None
    log_weights: bool
    log_report: bool

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...

    def start(self) -> Self: ...

    def end(self, status: RunStatus = "FINISHED") -> None: ...

    def set_tags(self, tags: Mapping[str, Any]) -> None: ...

    def log_config(
        self, config: Mapping[str, Any], artifact_file: str = CONFIG_ARTIFACT
    ) -> dict[str, str]: ...

    def log_epoch_history(
        self, history: Mapping[str, Iterable[Any]], step_offset: int = 0
    ) -> int: ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> int: ...

    def log_text(self, text: str, artifact_file: str) -> None: ...

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None: ...

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None: ...

    def log_figure(
        self, figure: Any, artifact_file: str = "figure.png", dpi: int = 120
    ) -> None: ...

    def log_state_dict(self, state_dict: Mapping[str, Any], name: str = "model") -> str | None: ...


def _metric_value(key: str, value: Any) -> float | None:
    """``float(value)``, or ``None`` for a missing value (None or NaN) that must be skipped."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"metric {key!r}: value {value!r} ({type(value).__name__}) is not a number"
        ) from exc
    return None if math.isnan(number) else number


def _now_ms() -> int:
    return int(time.time() * 1000)


def _split_artifact_file(artifact_file: str) -> tuple[str | None, str]:
    path = PurePosixPath(artifact_file)
    if not path.name or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"artifact_file must be a relative file path, got {artifact_file!r}")
    parent = str(path.parent)
    return (None if parent == "." else parent), path.name


class RunTracker:
    """One MLflow run for one job, as a context manager.

    On enter a run is created in ``experiment_name`` (created if needed via
    :func:`prepare_store`, or given as ``experiment_id``) and tagged with git commit, lmbench /
    torch / mlflow / python versions, ``device``, ``dataset_hash``, ``sweep_id``,
    ``parent_run_id`` (as ``mlflow.parentRunId``) and ``tags``. On a normal exit the run is
    FINISHED; on an exception it is FAILED (KILLED for ``KeyboardInterrupt``), the error is
    recorded as tag ``error`` and artifact ``error.txt`` (traceback), and the exception
    propagates. ``log_weights=False`` turns :meth:`log_state_dict` into a no-op;
    ``log_report`` is carried for the harness to consult.
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
            _log.warning("could not record the error of run %s: %s", self.run_id, log_exc)
        try:
            self.end(status)
        except Exception as end_exc:
            _log.warning("could not end run %s as %s: %s", self.run_id, status, end_exc)
        return False

    def start(self) -> Self:
        """Create the run (and the experiment if needed); returns ``self``."""
        if self.run_id is not None:
            raise RuntimeError(f"run {self.run_id} was already started")
        if self.experiment_id is None:
            self.experiment_id = prepare_store(self.tracking_uri, self.experiment_name)
        self._client = get_client(self.tracking_uri)
        run = self._client.create_run(
            self.experiment_id, run_name=self.run_name, tags=self._initial_tags()
        )
        self.run_id = run.info.run_id
        self.artifact_uri = run.info.artifact_uri
        _log.info(
            "MLflow run %s (%s) in experiment %s at %s",
            self.run_id,
            run.info.run_name,
            self.experiment_id,
            self.tracking_uri,
        )
        return self

    def end(self, status: RunStatus = "FINISHED") -> None:
        """Terminate the run with ``status`` (FINISHED, FAILED or KILLED); idempotent."""
        if self.run_id is None or self.status is not None:
            return
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
        if commit != "unknown":
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
        return {str(k): truncate_value(str(v), MAX_TAG_VALUE_LENGTH) for k, v in tags.items()}

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
        """Set string tags (values ``str()``-ed and cut to MLflow's 8000 characters)."""
        from mlflow.entities import RunTag

        client = self._require_client()
        entries = [
            RunTag(str(k), truncate_value(str(v), MAX_TAG_VALUE_LENGTH)) for k, v in tags.items()
        ]
        for i in range(0, len(entries), _PARAMS_PER_BATCH):
            client.log_batch(self.run_id, tags=entries[i : i + _PARAMS_PER_BATCH])

    def log_config(
        self, config: Mapping[str, Any], artifact_file: str = CONFIG_ARTIFACT
    ) -> dict[str, str]:
        """Log the flattened config as params and the resolved config as a YAML artifact.

        Keys are made MLflow-valid with :func:`sanitize_key` (a key that then collides with
        another gets a hash suffix), values cut to 6000 characters with
        :func:`truncate_value`. Returns the params as logged. MLflow refuses to change a param
        already logged with another value, so log each config once per run.
        """
        import yaml
        from mlflow.entities import Param

        client = self._require_client()
        flat = flatten_config(config, max_value_length=MAX_PARAM_VALUE_LENGTH)
        params: dict[str, str] = {}
        for key, value in flat.items():
            name = sanitize_key(key)
            if name in params:  # two raw keys sanitised alike: keep both, told apart by a hash
                name = sanitize_key(f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:8]}")
            params[name] = value
        entries = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(entries), _PARAMS_PER_BATCH):
            client.log_batch(self.run_id, params=entries[i : i + _PARAMS_PER_BATCH])
        text = yaml.safe_dump(to_plain(config), sort_keys=False, default_flow_style=False)
        self.log_text(text, artifact_file)
        return params

    def log_epoch_history(self, history: Mapping[str, Iterable[Any]], step_offset: int = 0) -> int:
        """Log per-epoch series ``{"train_loss": [...], "val_loss": [...], ...}`` with steps.

        Element ``i`` of each series is logged at step ``step_offset + i``; ``None`` and NaN
        entries (e.g. epochs without validation) are skipped. Sent in ``log_batch`` calls of at
        most 1000 metrics (one ``log_metric`` per value costs ~9 ms on SQLite). Returns the
        number of values logged.
        """
        from mlflow.entities import Metric

        timestamp = _now_ms()
        metrics: list[Metric] = []
        for key, series in history.items():
            for i, raw in enumerate(series):
                value = _metric_value(str(key), raw)
                if value is not None:
                    metrics.append(Metric(str(key), value, timestamp, step_offset + i))
        self._log_metric_entries(metrics)
        return len(metrics)

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> int:
        """Log scalar metrics (final test scores, parameter count, wall time, peak memory).

        One batched call; ``None``/NaN values skipped. Returns the number logged.
        """
        from mlflow.entities import Metric

        timestamp = _now_ms()
        entries = []
        for key, raw in metrics.items():
            value = _metric_value(str(key), raw)
            if value is not None:
                entries.append(Metric(str(key), value, timestamp, step))
        self._log_metric_entries(entries)
        return len(entries)

    def _log_metric_entries(self, entries: list[Any]) -> None:
        client = self._require_client()
        for i in range(0, len(entries), _METRICS_PER_BATCH):
            client.log_batch(self.run_id, metrics=entries[i : i + _METRICS_PER_BATCH])

    def log_text(self, text: str, artifact_file: str) -> None:
        """Write ``text`` to the artifact ``artifact_file`` (relative, like ``notes/a.md``)."""
        _split_artifact_file(artifact_file)
        self._require_client().log_text(self.run_id, text, artifact_file)

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Write a dict as JSON (``.json``) or YAML (``.yaml``/``.yml``) artifact."""
        _split_artifact_file(artifact_file)
        self._require_client().log_dict(self.run_id, to_plain(dictionary), artifact_file)

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

    def log_figure(self, figure: Any, artifact_file: str = "figure.png", dpi: int = 120) -> None:
        """Save a matplotlib figure (format from the suffix, PNG by default) as an artifact.

        The figure is not closed; that stays the caller's choice.
        """
        folder, name = _split_artifact_file(artifact_file)
        if not PurePosixPath(name).suffix:
            name += ".png"
        with tempfile.TemporaryDirectory(prefix="lmbench-fig-") as tmp:
            target = Path(tmp) / name
            figure.savefig(target, dpi=dpi, bbox_inches="tight")
            self.log_artifact(target, folder)

    def log_state_dict(self, state_dict: Mapping[str, Any], name: str = "model") -> str | None:
        """Save weights with ``torch.save`` (tensors moved to CPU) as ``weights/<name>.pt``.

        Plain artifact, not the ``mlflow.pytorch`` model flavour (slow, heavy). Returns the
        artifact path, or ``None`` when ``log_weights`` is off.
        """
        if not self.log_weights:
            return None
        import torch

        self._require_client()
        cpu = {
            k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v)
            for k, v in state_dict.items()
        }
        filename = f"{sanitize_key(name)}.pt"
        with tempfile.TemporaryDirectory(prefix="lmbench-weights-") as tmp:
            target = Path(tmp) / filename
            torch.save(cpu, target)
            self.log_artifact(target, WEIGHTS_ARTIFACT_DIR)
        return f"{WEIGHTS_ARTIFACT_DIR}/{filename}"


class NullTracker:
    """The tracker used when tracking is off: same interface as ``RunTracker``, does nothing."""

    def __init__(
        self, *args: Any, log_weights: bool = False, log_report: bool = False, **kwargs: Any
    ) -> None:
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.tracking_uri: str | None = None
        self.artifact_uri: str | None = None
        self.status: str | None = None
        self.log_weights = log_weights
        self.log_report = log_report

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return False

    def start(self) -> Self:
        return self

    def end(self, status: RunStatus = "FINISHED") -> None:
        return None

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        return None

    def log_config(
        self, config: Mapping[str, Any], artifact_file: str = CONFIG_ARTIFACT
    ) -> dict[str, str]:
        return {}

    def log_epoch_history(self, history: Mapping[str, Iterable[Any]], step_offset: int = 0) -> int:
        return 0

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> int:
        return 0

    def log_text(self, text: str, artifact_file: str) -> None:
        return None

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        return None

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        return None

    def log_figure(self, figure: Any, artifact_file: str = "figure.png", dpi: int = 120) -> None:
        return None

    def log_state_dict(self, state_dict: Mapping[str, Any], name: str = "model") -> str | None:
        return None
