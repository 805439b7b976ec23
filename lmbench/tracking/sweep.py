"""The parent MLflow run of a --multirun (a sweep, or a named experiment): its jobs nest under it.

The multirun parent process starts it once (``lmbench.tracking.hydra_callback``), before any
job, and hands its id to the jobs in two ways: the file :data:`PARENT_RUN_FILE` in the sweep
directory (read by every job, also joblib's worker processes) and the environment variable
:data:`PARENT_RUN_ENV` (inherited by workers started afterwards). When the sweep ends the
parent gets a summary (jobs, finished, failed, killed, unfinished, counted from the store, and
skipped: jobs whose result a FINISHED run already held, see :func:`record_skipped_job`) and
ends FINISHED, or FAILED when a job failed; a sweep that stops early (a failed job stops
Hydra's sweeper before ``on_multirun_end``, or Ctrl-C) is ended at interpreter exit. When its
jobs ran in processes of this machine (the basic and joblib launchers), they are gone by then
(joblib kills its workers on Ctrl-C, before they can end their runs), so a job run still
RUNNING is ended KILLED rather than left RUNNING forever. A sweep stopped by a job's config
mistake before any job ran (:func:`record_refused_job`) deletes its parent run: it leaves no
run behind, as a single refused run leaves none.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmbench.tracking.config import TrackingConfig
from lmbench.tracking.flatten import to_plain
from lmbench.tracking.redact import redact_text
from lmbench.tracking.run import RunTracker
from lmbench.tracking.schema import (
    KIND_SWEEP,
    METRIC_SWEEP_FAILED,
    METRIC_SWEEP_FINISHED,
    METRIC_SWEEP_JOBS,
    METRIC_SWEEP_KILLED,
    METRIC_SWEEP_SKIPPED,
    METRIC_SWEEP_UNFINISHED,
    SWEEP_CONFIG_ARTIFACT,
    TAG_ERROR,
    TAG_KIND,
    TAG_PARENT_RUN_ID,
    TAG_STOP_REASON,
)

__all__ = [
    "PARENT_RUN_ENV",
    "PARENT_RUN_FILE",
    "SKIPPED_DIR",
    "SweepParent",
    "count_skipped_jobs",
    "read_parent_run_id",
    "record_refused_job",
    "record_skipped_job",
    "sweep_id_of",
]

_log = logging.getLogger(__name__)

#: Environment variable holding the running sweep's parent run id.
PARENT_RUN_ENV = "LMBENCH_PARENT_RUN_ID"
#: File in the sweep directory holding the parent run id.
PARENT_RUN_FILE = ".mlflow_parent_run_id"
#: Folder in the sweep directory where each skipped job leaves one file (a skipped job logs
#: nothing to the store, so the parent counts these files).
SKIPPED_DIR = ".lmbench_skipped"
#: File in the sweep directory saying a job's config was refused before it created a run.
REFUSED_FILE = ".lmbench_refused"


def sweep_id_of(sweep_dir: str | os.PathLike[str]) -> str:
    """The id shared by a sweep's runs: a digest of the sweep directory's absolute path."""
    return hashlib.sha256(os.path.abspath(sweep_dir).encode()).hexdigest()[:12]


def read_parent_run_id(sweep_dir: str | os.PathLike[str] | None) -> str | None:
    """The parent run id of the sweep in ``sweep_dir`` (its file, else the environment)."""
    if sweep_dir is not None:
        path = Path(sweep_dir) / PARENT_RUN_FILE
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        if text:
            return text
    return os.environ.get(PARENT_RUN_ENV) or None


def record_skipped_job(
    sweep_dir: str | os.PathLike[str], job_num: int | str, run_id: str
) -> None:
    """Note that job ``job_num`` of the sweep was skipped: ``run_id`` already holds its
    result (one file per job, so parallel workers never write the same file)."""
    folder = Path(sweep_dir) / SKIPPED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(job_num)).write_text(run_id + "\n", encoding="utf-8")


def record_refused_job(sweep_dir: str | os.PathLike[str], reason: str) -> None:
    """Note that a job of the sweep refused its config before creating a run: a sweep that
    ends with no job run then deletes its parent run too (:meth:`SweepParent.finish`)."""
    folder = Path(sweep_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REFUSED_FILE).write_text(reason + "\n", encoding="utf-8")


def count_skipped_jobs(sweep_dir: str | os.PathLike[str]) -> int:
    """How many jobs of the sweep in ``sweep_dir`` were skipped so far."""
    folder = Path(sweep_dir) / SKIPPED_DIR
    return sum(1 for path in folder.iterdir() if path.is_file()) if folder.is_dir() else 0


def _clear_skipped_jobs(sweep_dir: Path) -> None:
    folder = sweep_dir / SKIPPED_DIR
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)


class SweepParent:
    """The parent run of one multirun; :meth:`start` it before the jobs, :meth:`finish` after."""

    def __init__(
        self,
        tracking: Mapping[str, Any] | TrackingConfig,
        sweep_dir: str,
        *,
        local_jobs: bool = True,
    ) -> None:
        """``local_jobs``: the jobs run in processes of this machine that end with the sweep
        (basic, joblib launchers), so a job run still RUNNING when an unfinished sweep ends
        has no process left to end it; false for a cluster launcher, whose jobs outlive it."""
        self.tracking = TrackingConfig.from_mapping(tracking)
        self.sweep_dir = Path(sweep_dir)
        self.local_jobs = local_jobs
        self.tracker: RunTracker | None = None

    @property
    def run_id(self) -> str | None:
        return None if self.tracker is None else self.tracker.run_id

    def start(
        self,
        experiment_id: str | None,
        *,
        overrides: Sequence[str] = (),
        sweep_params: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Create the parent run (tag ``kind=sweep``), log the sweep's overrides and swept
        values as params (``sweep.overrides``, ``sweep.params.<key>``) and ``config`` as
        ``sweep_config.yaml``; publish its id to the jobs. Returns the run id (``None`` when
        tracking is off)."""
        if not self.tracking.enabled:
            return None
        sweep_id = sweep_id_of(self.sweep_dir)
        self.tracker = RunTracker(
            f"sweep-{self.tracking.experiment_name}-{sweep_id}",
            experiment_name=self.tracking.experiment_name,
            tracking_uri=self.tracking.tracking_uri,
            experiment_id=experiment_id,
            sweep_id=sweep_id,
            tags={TAG_KIND: KIND_SWEEP},
        ).start()
        params: dict[str, Any] = {"sweep.overrides": " ".join(overrides)}
        params.update({f"sweep.params.{k}": v for k, v in (sweep_params or {}).items()})
        self.tracker.log_config(params, artifact_file="sweep_params.yaml")
        if config is not None:
            import yaml

            text = yaml.safe_dump(to_plain(config), sort_keys=False, default_flow_style=False)
            self.tracker.log_text(text, SWEEP_CONFIG_ARTIFACT)
        run_id = self.tracker.run_id
        assert run_id is not None
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        _clear_skipped_jobs(self.sweep_dir)  # notes of an earlier sweep in the same directory
        (self.sweep_dir / REFUSED_FILE).unlink(missing_ok=True)
        (self.sweep_dir / PARENT_RUN_FILE).write_text(run_id + "\n", encoding="utf-8")
        os.environ[PARENT_RUN_ENV] = run_id
        atexit.register(self.finish, completed=False)
        return run_id

    def job_counts(self) -> dict[str, int]:
        """Jobs nested under the parent so far, by status (read from the store), and the jobs
        skipped because a FINISHED run already held their result (``n_jobs`` counts both)."""
        if self.tracker is None or self.tracker.run_id is None:
            return {}
        statuses = [status for _, status in self._job_runs()]
        finished = statuses.count("FINISHED")
        failed = statuses.count("FAILED")
        killed = statuses.count("KILLED")
        skipped = count_skipped_jobs(self.sweep_dir)
        return {
            METRIC_SWEEP_JOBS: len(statuses) + skipped,
            METRIC_SWEEP_FINISHED: finished,
            METRIC_SWEEP_FAILED: failed,
            METRIC_SWEEP_KILLED: killed,
            METRIC_SWEEP_UNFINISHED: len(statuses) - finished - failed - killed,
            METRIC_SWEEP_SKIPPED: skipped,
        }

    def _job_runs(self) -> list[tuple[str, str]]:
        """(run id, status) of every run nested under the parent."""
        tracker = self.tracker
        if tracker is None or tracker.run_id is None:
            return []
        client = tracker._require_client()
        runs: list[tuple[str, str]] = []
        token = None
        while True:
            page = client.search_runs(
                [tracker.experiment_id],
                filter_string=f"tags.`{TAG_PARENT_RUN_ID}` = '{tracker.run_id}'",
                max_results=1000,
                page_token=token,
            )
            runs.extend((run.info.run_id, run.info.status) for run in page)
            token = page.token
            if not token:
                break
        return runs

    def end_orphaned_jobs(self) -> list[str]:
        """End KILLED every job run still RUNNING under the parent (tagged
        ``stop_reason=interrupted``): called when an unfinished sweep of local jobs ends, whose
        processes are gone. Returns their run ids."""
        tracker = self.tracker
        if tracker is None or not self.local_jobs:
            return []
        client = tracker._require_client()
        orphans = [run_id for run_id, status in self._job_runs() if status == "RUNNING"]
        for run_id in orphans:
            client.set_tag(run_id, TAG_STOP_REASON, "interrupted")
            client.set_tag(run_id, TAG_ERROR, "the sweep stopped before this job ended "
                           "(Ctrl-C, or another job failed); its process is gone")
            client.set_terminated(run_id, status="KILLED")
        return orphans

    def finish(self, completed: bool = True) -> None:
        """Log the job counts and end the parent: FINISHED when the sweep ``completed`` and no
        job failed or was killed, else FAILED (a job failed) or KILLED. Idempotent; never
        raises (a store problem is logged as a warning)."""
        tracker = self.tracker
        if tracker is None or tracker.status is not None:
            return
        if os.environ.get(PARENT_RUN_ENV) == tracker.run_id:
            del os.environ[PARENT_RUN_ENV]
        try:
            if not completed:
                self.end_orphaned_jobs()
            counts = self.job_counts()
            tracker.log_metrics(counts)
            if counts.get(METRIC_SWEEP_FAILED):
                status = "FAILED"
            elif completed and not counts.get(METRIC_SWEEP_KILLED):
                status = "FINISHED"
            else:
                status = "KILLED"
            tracker.end(status)  # type: ignore[arg-type]
            if not counts.get(METRIC_SWEEP_JOBS) and (self.sweep_dir / REFUSED_FILE).exists():
                # a config mistake stopped the sweep before any job: leave no run behind
                tracker._require_client().delete_run(tracker.run_id)
        except Exception as exc:
            _log.warning("could not end the sweep's parent run %s: %s", tracker.run_id,
                         redact_text(str(exc)))
