"""The ``limits`` runner: one engine at one size, measured in a fresh process, logged.

Settings come from ``cfg.job`` (``conf/job/limits.yaml``). The measurement runs in a subprocess
(``python -m lmbench.bench.measure``) so that every point starts from the same clean heap;
points the model says exceed ``job.budget`` are logged with their prediction and tag
``measured=skipped`` instead of being run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from lmbench.bench.measure import point_metrics, point_params
from lmbench.bench.workloads import N_INPUTS, mlp_with_params
from lmbench.core.cost_model import Problem, estimate
from lmbench.harness.outcome import JobOutcome, run_name
from lmbench.tracking import schema, tracker_from_config
from lmbench.units import format_bytes, parse_bytes

#: Composed by default but not used by this job (left out of the logged config).
UNUSED_SECTIONS = ("trainer",)


def run(
    cfg: DictConfig, *, sweep_id: str | None = None, parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> JobOutcome:
    """Predict, and measure unless over budget, one epoch of ``cfg.job.engine``; ``tags`` are
    added to the run's own (the harness's ``config_hash``)."""
    t = cfg.job
    engine = str(t.engine)
    n_outputs = int(t.n_outputs)
    n_samples = max(1, int(t.n_rows) // n_outputs)
    real_params = sum(p.numel() for p in mlp_with_params(int(t.n_params), N_INPUTS,
                                                          n_outputs).parameters())
    itemsize = 4 if str(t.dtype) == "float32" else 8
    chunk = min(int(t.chunk_samples), n_samples) if t.get("chunk_samples") else n_samples
    predicted = estimate(Problem(n_samples, n_outputs, real_params, itemsize), engine, chunk)
    budget = parse_bytes(str(t.budget))
    device = str(cfg.get("device", "cpu"))
    tags = {schema.TAG_KIND: schema.KIND_LIMITS, schema.TAG_ENGINE: engine,
            schema.TAG_METHOD: schema.KIND_LIMITS, **(tags or {})}
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    for unused in UNUSED_SECTIONS:
        config.pop(unused, None)
    with tracker_from_config(
        cfg.tracking, run_name=run_name(config, "limits", engine), sweep_id=sweep_id,
        parent_run_id=parent_run_id, device=device, tags=tags,
    ) as tracker:
        tracker.log_config(config)
        metrics: dict[str, float] = {
            schema.METRIC_PREDICTED_MEMORY: predicted.memory_bytes,
            schema.METRIC_PREDICTED_DISK: predicted.disk_bytes,
            schema.METRIC_PREDICTED_FLOPS: predicted.flops,
            schema.METRIC_BUDGET: budget,
        }
        if predicted.memory_bytes > budget:
            tracker.log_config(
                {schema.PARAM_N_PARAMS: real_params, schema.PARAM_N_ROWS: n_samples * n_outputs,
                 schema.PARAM_N_OUTPUTS: n_outputs, schema.PARAM_CHUNK_ROWS: chunk,
                 schema.PARAM_DTYPE: str(t.dtype)},
                artifact_file=schema.LIMITS_POINT_ARTIFACT,
            )
            need, have = format_bytes(predicted.memory_bytes), format_bytes(budget)
            skipped = f"skipped: predicted {need} exceeds the {have} budget"
            tracker.set_tags({schema.TAG_MEASURED: skipped})
            tracker.log_metrics(metrics)
            return JobOutcome(schema.KIND_LIMITS, engine, schema.KIND_LIMITS, {},
                              schema.METRIC_PEAK_MEMORY,
                              real_params, 0.0, run_id=tracker.run_id)
        command = [
            sys.executable, "-m", "lmbench.bench.measure", "--engine", engine,
            "--params", str(t.n_params), "--rows", str(t.n_rows), "--outputs", str(n_outputs),
            "--chunk", str(chunk), "--device", device, "--dtype", str(t.dtype),
            "--threads", str(cfg.get("threads", 1)), "--cg-max-iter", str(t.cg_max_iter),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"measurement failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        tracker.log_config(point_params(measured), artifact_file=schema.LIMITS_POINT_ARTIFACT)
        metrics.update(point_metrics(measured))
        tracker.set_tags({schema.TAG_MEASURED: "yes", schema.TAG_DEVICE_NAME: measured["device"]})
        tracker.log_metrics(metrics)
    return JobOutcome(
        method="limits",
        dataset=engine,
        task="limits",
        test_metrics={"peak_memory_bytes": measured["peak_memory_bytes"],
                      "memory_ratio": measured["memory_ratio"]},
        primary_metric="peak_memory_bytes",
        n_parameters=real_params,
        train_time_s=measured["epoch_time_s"],
        run_id=tracker.run_id,
    )
