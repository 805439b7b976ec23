"""Resumable studies: a job whose configuration already has a FINISHED run trains nothing.

Re-running a study's command (``lmbench-run +experiment=NAME``) then trains only the jobs that
are missing, FAILED, KILLED or left RUNNING by a dead process. ``resume=false`` (top-level
config key) trains every job again. The hash and the store lookup live in
``lmbench.tracking.resume``; this module says which part of the job config is hashed and turns
a stored run back into the job's outcome.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from typing import Any

from lmbench.harness.context import logged_config
from lmbench.harness.outcome import JobOutcome
from lmbench.harness.runners import runner_spec
from lmbench.tracking import schema
from lmbench.tracking.flatten import to_plain
from lmbench.tracking.resume import FinishedRun, config_hash

#: The primary metric of run kinds that do not tag one.
_KIND_PRIMARY = {schema.KIND_LIMITS: schema.METRIC_PEAK_MEMORY}


def resume_enabled(cfg: Mapping[str, Any]) -> bool:
    """The ``resume`` switch (default true); anything but a boolean is an error."""
    value = cfg.get("resume", True)
    if not isinstance(value, bool):
        raise ValueError(f"resume must be true or false, got {value!r}: resume=true skips jobs "
                         f"whose configuration already has a FINISHED run, resume=false "
                         f"trains them again")
    return value


def job_config_hash(cfg: Mapping[str, Any], runner: str) -> str:
    """The ``config_hash`` of a job run by ``runner``: the hash of the config as the job logs
    it (dataset jobs leave out a ``model`` their trainer ignores; standalone runners leave out
    their ``UNUSED_SECTIONS``), so a setting the job never reads does not make it new."""
    spec = runner_spec(runner)
    if spec.on_dataset:
        return config_hash(logged_config(cfg))
    plain = to_plain(cfg)
    assert isinstance(plain, dict)
    for unused in getattr(importlib.import_module(spec.module), "UNUSED_SECTIONS", ()):
        plain.pop(unused, None)
    return config_hash(plain)


def finished_outcome(run: FinishedRun, digest: str) -> JobOutcome:
    """The outcome a skipped job returns: what the FINISHED run ``run`` logged."""
    tags, metrics = run.tags, run.metrics
    prefix = schema.TEST_METRIC_PREFIX
    test_metrics = {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}
    primary = tags.get(schema.TAG_PRIMARY_METRIC) or _KIND_PRIMARY.get(
        tags.get(schema.TAG_KIND, ""), "")
    if primary and primary not in test_metrics and primary in metrics:
        test_metrics[primary] = metrics[primary]
    n_parameters = metrics.get(schema.METRIC_N_PARAMETERS)
    return JobOutcome(
        method=tags.get(schema.TAG_METHOD, ""),
        dataset=tags.get(schema.TAG_DATASET) or tags.get(schema.TAG_ENGINE, ""),
        task=tags.get(schema.TAG_TASK) or tags.get(schema.TAG_KIND, ""),
        test_metrics=test_metrics,
        primary_metric=primary,
        n_parameters=None if n_parameters is None else int(n_parameters),
        train_time_s=metrics.get(schema.METRIC_TRAIN_TIME, math.nan),
        run_id=run.run_id,
        stop_reason=tags.get(schema.TAG_STOP_REASON),
        config_hash=digest,
        skipped=True,
    )
