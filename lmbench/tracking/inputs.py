"""A run's dataset split as MLflow dataset inputs (``mlflow.log_input`` in the client API), and
MLflow's system-metrics sampler for one run.

Each split is an ``mlflow.data`` numpy dataset named after the dataset, with the split's content
hash as digest (cut to the 36 characters MLflow's store accepts; the full hash stays in the
run's ``dataset_hash`` tag and the ``dataset_hashes.json`` artifact), the packaged source
(``package:key`` of ``conf/dataset``) and context ``train`` / ``validation`` / ``test``. One
``log_inputs`` call per run (~0.05 s).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from mlflow.utils.validation import MAX_DATASET_DIGEST_SIZE

from lmbench.tracking.redact import redact_text

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["MAX_DIGEST_LENGTH", "SystemMetrics", "log_split_inputs"]

_log = logging.getLogger(__name__)

#: The longest dataset digest MLflow's store accepts (36 in MLflow 3).
MAX_DIGEST_LENGTH = MAX_DATASET_DIGEST_SIZE
#: MLflow's input tag holding a dataset's role in the run.
CONTEXT_TAG = "mlflow.data.context"


def log_split_inputs(
    client: MlflowClient,
    run_id: str,
    name: str,
    source: Mapping[str, Any],
    splits: Mapping[str, tuple[np.ndarray, np.ndarray, str]],
) -> int:
    """Log ``splits`` (``context -> (x, y, content hash)``) as dataset inputs of the run; the
    number logged."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.entities import DatasetInput, InputTag

    dataset_source = CodeDatasetSource({str(k): str(v) for k, v in source.items()})
    inputs = []
    for context, (x, y, digest) in splits.items():
        dataset = from_numpy(
            np.asarray(x),
            targets=np.asarray(y),
            source=dataset_source,
            name=name,
            digest=str(digest)[:MAX_DIGEST_LENGTH],
        )
        inputs.append(
            DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(CONTEXT_TAG, context)])
        )
    if inputs:
        client.log_inputs(run_id, datasets=inputs)
    return len(inputs)


class SystemMetrics:
    """MLflow's system-metrics monitor (psutil CPU / memory / disk / network, NVIDIA GPU when
    ``pynvml`` is present) for one run, logged as ``system/*`` metrics every
    ``interval_s`` seconds. A job shorter than one interval logs no sample."""

    def __init__(self, tracking_uri: str, run_id: str, interval_s: float = 10.0) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.interval_s = float(interval_s)
        self._monitor: Any = None

    def start(self) -> None:
        """Start sampling in a daemon thread; a sampler that cannot start is a warning."""
        try:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            self._monitor = SystemMetricsMonitor(
                self.run_id,
                sampling_interval=self.interval_s,
                samples_before_logging=1,
                tracking_uri=self.tracking_uri,
            )
            self._monitor.start()
        except Exception as exc:
            _log.warning("system metrics are not logged: %s", redact_text(str(exc)))
            self._monitor = None

    def stop(self) -> None:
        """Stop sampling and flush what was sampled; idempotent."""
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            try:
                monitor.finish()
            except Exception as exc:
                _log.warning("could not stop the system metrics sampler: %s", redact_text(str(exc)))
