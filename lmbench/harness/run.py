"""``lmbench-run``: the Hydra app. One job per config; --multirun sweeps; +experiment=NAME
applies a named overlay from experiments/. Tracking goes to MLflow (embedded SQLite store by
default)."""

from __future__ import annotations

import logging
import os
import signal
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lmbench.harness.job_checks import CONFIG_ERROR_STATUS, JobConfigError
from lmbench.harness.jobs import JobOutcome, run_job
from lmbench.harness.signals import stop_signals_as_interrupt
from lmbench.paths import CONF_DIR
from lmbench.tracking.sweep import (
    read_parent_run_id,
    record_refused_job,
    record_skipped_job,
    sweep_id_of,
)

#: The conventional exit status of a process ended by Ctrl-C (128 + SIGINT).
INTERRUPTED_EXIT_STATUS = 128 + signal.SIGINT
#: What ``lmbench-run`` prints on Ctrl-C instead of a traceback.
INTERRUPTED_MESSAGE = (
    "lmbench-run: interrupted; unfinished runs are recorded as KILLED. Run the same command "
    "again to resume: jobs already FINISHED in the store are skipped."
)
_log = logging.getLogger("lmbench")


def _sweep_id() -> str | None:
    """Jobs of one --multirun share an id derived from the sweep directory."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return sweep_id_of(hydra_cfg.sweep.dir)


def _parent_run_id() -> str | None:
    """A --multirun job's parent: the sweep's run (``lmbench.tracking.sweep``); none for a
    single run."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return read_parent_run_id(hydra_cfg.sweep.dir)


def _show_progress(cfg: DictConfig) -> bool:
    setting = cfg.get("progress", "auto")
    if setting == "auto":
        return HydraConfig.get().mode != RunMode.MULTIRUN
    return bool(setting)


def _report_skipped(outcome: JobOutcome) -> None:
    """One line for a job that trained nothing; a --multirun job also leaves a note in the
    sweep directory for the sweep's parent run to count."""
    _log.info(
        "skipped %s on %s: run %s already FINISHED this configuration (config_hash %s, "
        "%s=%.4g); resume=false trains it again",
        outcome.method, outcome.dataset, outcome.run_id, outcome.config_hash,
        outcome.primary_metric, outcome.primary_value,
    )
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN and outcome.run_id is not None:
        record_skipped_job(hydra_cfg.sweep.dir, hydra_cfg.job.num, outcome.run_id)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def app(cfg: DictConfig) -> float:
    """Run one job; returns the primary test metric (for Hydra sweepers). SIGTERM (what
    schedulers send) stops it like Ctrl-C and exits with status 143. A config that cannot run
    prints one line naming the key and exits with status 2, before any run is created."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline machines: no pings
    try:
        with stop_signals_as_interrupt():
            outcome = run_job(cfg, sweep_id=_sweep_id(), parent_run_id=_parent_run_id(),
                              progress=_show_progress(cfg))
    except JobConfigError as exc:
        print(f"lmbench-run: {exc}", file=sys.stderr)
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            record_refused_job(hydra_cfg.sweep.dir, str(exc))
        raise SystemExit(CONFIG_ERROR_STATUS) from None
    if outcome.skipped:
        _report_skipped(outcome)
        return outcome.primary_value
    _log.info(
        "%s on %s: %s=%.4g (%s params, %.1fs) run_id=%s",
        outcome.method, outcome.dataset, outcome.primary_metric, outcome.primary_value,
        outcome.n_parameters, outcome.train_time_s, outcome.run_id,
    )
    return outcome.primary_value


def main() -> None:
    """``lmbench-run``: the Hydra app. Ctrl-C ends it with one line saying how to resume (the
    interrupted runs, and a sweep's parent run, are recorded as KILLED) and status 130."""
    try:
        app()
    except KeyboardInterrupt:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT_STATUS) from None


if __name__ == "__main__":
    main()
