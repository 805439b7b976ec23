"""One benchmark job: the runner ``cfg.job`` names, every number logged to the tracker.

Plain Python over a config mapping (Hydra's ``DictConfig`` in practice), so tests can call
``run_job`` without the Hydra CLI. Dataset runners (``lm``, ``search``) run here inside one run
on a prepared split (seeding, dataset hashes, tags, peak memory and the final metrics are
logged here); standalone runners (``limits``, ``paper_check``) open their own runs. Every job
run is tagged ``config_hash``; a job whose hash already has a FINISHED run in the experiment
trains nothing and returns that run's outcome (``resume=false`` turns this off;
``lmbench.harness.resume``; concurrent jobs: ``lmbench.tracking.resume.claim_configuration``).
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from lmbench.bench.memory import PeakMemory
from lmbench.data import PreparedDataset, prepare_dataset
from lmbench.harness.context import DatasetJob, logged_config, method_label, model_tag
from lmbench.harness.job_checks import check_job_config
from lmbench.harness.outcome import JobOutcome, run_name
from lmbench.harness.reproducibility import seed_everything
from lmbench.harness.resume import finished_outcome, job_config_hash, resume_enabled
from lmbench.harness.runners import load_runner, runner_name, runner_spec
from lmbench.tracking import Tracker, schema, tracker_from_config
from lmbench.tracking.resume import claim_configuration, find_finished_run

__all__ = ["JobOutcome", "run_job", "run_name"]


def run_job(
    cfg: DictConfig,
    *,
    sweep_id: str | None = None,
    parent_run_id: str | None = None,
    progress: bool = False,
) -> JobOutcome:
    """Run the job ``cfg`` describes with the runner ``cfg.job.runner`` names.

    ``train`` (the default job) prepares the split, trains with ``cfg.trainer`` (one LM run, or
    a method's tuning: lm_tuned, xgboost, catboost, adam, tlm), scores the test split once and
    logs it all; ``limits`` measures an engine (no dataset); ``paper_check`` runs a
    published-results problem over many random starts. ``parent_run_id`` nests the run under a
    sweep's run.
    With ``cfg.resume`` (default true) a job whose ``config_hash`` already has a FINISHED run
    logs nothing and returns that run's outcome (``skipped`` set, ``run_id`` that run's); the
    lookup and the training happen under the configuration's claim, so a job of the same
    configuration in another process waits and then skips. A config that cannot run raises
    :class:`~lmbench.harness.job_checks.JobConfigError` before the store is touched.
    """
    check_job_config(cfg)
    name = runner_name(cfg)
    digest = job_config_hash(cfg, name)
    if not resume_enabled(cfg):
        return _run(cfg, name, digest, sweep_id, parent_run_id, progress)
    # the claim makes lookup and training one step: a concurrent job of this configuration
    # (another sweep into the same store) waits, then finds this one's FINISHED run
    with claim_configuration(cfg.get("tracking"), digest):
        finished = find_finished_run(cfg.get("tracking"), digest)
        if finished is not None:
            return finished_outcome(finished, digest)
        return _run(cfg, name, digest, sweep_id, parent_run_id, progress)


def _run(
    cfg: DictConfig,
    name: str,
    digest: str,
    sweep_id: str | None,
    parent_run_id: str | None,
    progress: bool,
) -> JobOutcome:
    """Run job ``cfg`` with runner ``name``, its runs tagged ``config_hash = digest``."""
    run = load_runner(name)
    hash_tag = {schema.TAG_CONFIG_HASH: digest}
    if not runner_spec(name).on_dataset:
        outcome = run(cfg, sweep_id=sweep_id, parent_run_id=parent_run_id, tags=hash_tag)
        outcome.config_hash = digest
        return outcome
    started = time.perf_counter()
    seed = int(cfg.seed)
    seed_everything(seed, threads=int(cfg.get("threads", 1)))
    data = prepare_dataset(
        cfg.dataset,
        seed=seed,
        val_fraction=float(cfg.split.val_fraction),
        test_fraction=float(cfg.split.test_fraction),
        max_rows=cfg.split.max_rows,
        max_train_rows=cfg.split.get("max_train_rows"),
        max_eval_rows=cfg.split.get("max_eval_rows"),
    )
    method = method_label(cfg.trainer)
    tags = {
        schema.TAG_METHOD: method,
        schema.TAG_DATASET: data.name,
        schema.TAG_TASK: data.task,
        schema.TAG_MODEL: model_tag(cfg),
        **{str(k): str(v) for k, v in (cfg.get("tags") or {}).items()},
        **hash_tag,
    }
    tracker = tracker_from_config(
        cfg.tracking,
        run_name=run_name(cfg, method, data.name),
        sweep_id=sweep_id,
        parent_run_id=parent_run_id,
        device=str(cfg.get("device", "cpu")),
        dataset_hash=data.hash,
        tags=tags,
    )
    with tracker, PeakMemory() as memory:
        tracker.log_config(logged_config(cfg))
        tracker.log_dict(data.hashes, schema.DATASET_HASHES_ARTIFACT)
        log_dataset_inputs(tracker, cfg, data)
        outcome = run(DatasetJob(cfg, data, tracker, progress))
        outcome.run_id = getattr(tracker, "run_id", None)
        outcome.config_hash = digest
        wall = time.perf_counter() - started
        tracker.log_metrics(
            {
                **{schema.test_metric(k): v for k, v in outcome.test_metrics.items()},
                **outcome.extra_metrics,
                schema.METRIC_N_PARAMETERS: outcome.n_parameters,
                schema.METRIC_TRAIN_TIME: outcome.train_time_s,
                schema.METRIC_WALL_TIME: wall,
                schema.METRIC_PEAK_RSS: memory.peak_bytes,
            }
        )
        tracker.set_tags(
            {
                schema.TAG_PRIMARY_METRIC: outcome.primary_metric,
                **({schema.TAG_STOP_REASON: outcome.stop_reason} if outcome.stop_reason else {}),
            }
        )
    return outcome


def log_dataset_inputs(tracker: Tracker, cfg: DictConfig, data: PreparedDataset) -> int:
    """The split as the run's dataset inputs (train / validation / test), digests = the split
    hashes, source = ``cfg.dataset.source`` (package and key) and the whole split's hash."""
    source_cfg = cfg.dataset.get("source") or {}
    source = {
        "package": str(source_cfg.get("package", "")),
        "key": str(source_cfg.get("key", "")),
        schema.TAG_DATASET_HASH: data.hash,
    }
    return tracker.log_dataset(data.name, source, {
        schema.INPUT_CONTEXT_TRAIN: (data.x_train, data.y_train, data.hashes["train"]),
        schema.INPUT_CONTEXT_VALIDATION: (data.x_val, data.y_val, data.hashes["val"]),
        schema.INPUT_CONTEXT_TEST: (data.x_test, data.y_test, data.hashes["test"]),
    })
