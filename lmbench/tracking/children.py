"""Child runs nested under a run (``mlflow.parentRunId``): one finished run per item, e.g. the
trials of a method's tuning, each written with one ``log_batch`` call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lmbench.tracking.batching import (
    METRICS_PER_BATCH,
    PARAMS_PER_BATCH,
    log_batches,
    scalar_entries,
)
from lmbench.tracking.flatten import (
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    flatten_config,
    sanitize_key,
    truncate_value,
)
from lmbench.tracking.redact import redact, redact_text
from lmbench.tracking.schema import TAG_PARENT_RUN_ID

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["log_child_runs"]


def log_child_runs(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    children: Iterable[Mapping[str, Any]],
) -> list[str]:
    """Create a FINISHED child run of ``parent_run_id`` per item (``run_name``, ``params``
    (flattened), ``metrics`` (scalars, NaN skipped), ``tags``); returns their ids."""
    from mlflow.entities import Param

    ids: list[str] = []
    for child in children:
        tags = {**dict(child.get("tags") or {}), TAG_PARENT_RUN_ID: parent_run_id}
        run = client.create_run(
            experiment_id,
            run_name=child.get("run_name"),
            tags={
                str(k): truncate_value(redact_text(str(v)), MAX_TAG_VALUE_LENGTH)
                for k, v in tags.items()
            },
        )
        run_id = run.info.run_id
        flat = flatten_config(redact(dict(child.get("params") or {})),
                              max_value_length=MAX_PARAM_VALUE_LENGTH)
        params = [Param(sanitize_key(k), v) for k, v in flat.items()]
        metrics = scalar_entries(child.get("metrics") or {}, 0)
        if len(params) <= PARAMS_PER_BATCH and len(metrics) <= METRICS_PER_BATCH:
            client.log_batch(run_id, metrics=metrics, params=params)
        else:
            log_batches(client, run_id, "params", params)
            log_batches(client, run_id, "metrics", metrics)
        client.set_terminated(run_id, "FINISHED")
        ids.append(run_id)
    return ids

