"""A resumable study through the real app and a real SQLite store: re-running a multirun trains
nothing already FINISHED and a FAILED job is trained again; standalone jobs (paper check,
limits) are tagged and skipped too, ``resume=false`` trains anyway; and the config hash of
composed configs ignores settings the job never reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import mlflow
import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow import MlflowClient

from lmbench.harness.jobs import run_job
from lmbench.harness.resume import job_config_hash
from lmbench.harness.run import CONF_DIR
from lmbench.harness.runners import runner_name
from lmbench.tracking import schema

SWEEP = ("--multirun", "dataset=iris", "model=mlp_tiny", "trainer.max_epochs=3", "seed=0,1",
         "tracking.experiment_name=resume")
SKIPPED = re.compile(r"skipped lm on iris: run (\w+) already FINISHED")


def _runs(store: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(store)
    try:
        return mlflow.search_runs(experiment_names=["resume"])
    finally:
        mlflow.set_tracking_uri(None)


def _split(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the benchmark runs, the sweep parents newest first)."""
    kind = runs.get(schema.tag_column(schema.TAG_KIND), pd.Series(index=runs.index, dtype=object))
    parents = runs[kind == schema.KIND_SWEEP].sort_values("start_time", ascending=False)
    return runs[kind.isna()], parents


def _sweep_metrics(parents: pd.DataFrame) -> dict[str, float]:
    row = parents.iloc[0]
    assert row["status"] == "FINISHED"
    names = (schema.METRIC_SWEEP_JOBS, schema.METRIC_SWEEP_FINISHED, schema.METRIC_SWEEP_SKIPPED)
    return {name: row[schema.metric_column(name)] for name in names}


def test_a_rerun_trains_only_what_is_not_finished(run_app):
    run_app(*SWEEP)
    jobs, parents = _split(_runs(run_app.store))
    hash_column = schema.tag_column(schema.TAG_CONFIG_HASH)
    assert len(jobs) == 2 and (jobs["status"] == "FINISHED").all()
    assert jobs[hash_column].str.fullmatch(r"[0-9a-f]{16}").all()
    assert jobs[hash_column].nunique() == 2
    assert _sweep_metrics(parents) == {"n_jobs": 2, "n_finished": 2, "n_skipped": 0}

    second = run_app(*SWEEP)
    jobs_after, parents = _split(_runs(run_app.store))
    assert len(jobs_after) == 2  # nothing trained, nothing logged
    skipped = SKIPPED.findall(second.stdout + second.stderr)
    assert sorted(skipped) == sorted(jobs["run_id"])
    assert _sweep_metrics(parents) == {"n_jobs": 2, "n_finished": 0, "n_skipped": 2}

    failed = jobs[jobs["params.seed"] == "1"].iloc[0]
    MlflowClient(run_app.store).set_terminated(failed["run_id"], "FAILED")
    third = run_app(*SWEEP)
    jobs_now, parents = _split(_runs(run_app.store))
    new = jobs_now[~jobs_now["run_id"].isin(jobs["run_id"])]
    assert len(new) == 1 and new.iloc[0]["status"] == "FINISHED"
    assert new.iloc[0][hash_column] == failed[hash_column]  # exactly the failed job again
    kept = jobs[jobs["params.seed"] == "0"]["run_id"].tolist()
    assert SKIPPED.findall(third.stdout + third.stderr) == kept
    assert _sweep_metrics(parents) == {"n_jobs": 2, "n_finished": 1, "n_skipped": 1}


def _compose(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_the_job_hash_ignores_what_the_job_never_reads():
    def digest(*overrides: str) -> str:
        cfg = _compose(*overrides)
        return job_config_hash(cfg, runner_name(cfg))

    lm = digest("trainer=lm", "model=mlp_small")
    assert digest("trainer=lm", "model=mlp_tiny") != lm  # LM trains cfg.model
    assert digest("trainer=lm", "model=mlp_small", "tracking=none", "+tags.purpose=x") == lm
    assert digest("trainer=xgboost", "model=mlp_tiny") == digest("trainer=xgboost")
    check = digest("job=paper_check")
    assert digest("job=paper_check", "dataset=iris") == check
    assert digest("job=paper_check", "seed=1") != check


def test_a_paper_check_is_tagged_and_skipped_with_its_outcome(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = ("job=paper_check", "job.starts=2", "job.max_epochs=50",
                 f"tracking.tracking_uri={store}", "tracking.experiment_name=checks")
    first = run_job(_compose(*overrides))
    assert not first.skipped and first.run_id is not None
    tags = MlflowClient(store).get_run(first.run_id).data.tags
    assert tags[schema.TAG_CONFIG_HASH] == first.config_hash
    again = run_job(_compose(*overrides))
    assert again.skipped and again.run_id == first.run_id
    assert again.primary_metric == schema.METRIC_SUCCESS_RATE
    assert again.primary_value == first.primary_value
    assert again.n_parameters == first.n_parameters
    client = MlflowClient(store)
    experiment_id = client.get_experiment_by_name("checks").experiment_id
    assert len(client.search_runs([experiment_id])) == 1
    forced = run_job(_compose(*overrides, "resume=false"))
    assert not forced.skipped and forced.run_id != first.run_id
    assert len(client.search_runs([experiment_id])) == 2


def test_a_limits_point_is_tagged_and_skipped(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = ("job=limits", "job.budget=1KB",  # over budget: predicted and logged, not run
                 f"tracking.tracking_uri={store}", "tracking.experiment_name=limits")
    first = run_job(_compose(*overrides))
    run = MlflowClient(store).get_run(first.run_id)
    assert run.data.tags[schema.TAG_CONFIG_HASH] == first.config_hash
    assert run.data.tags[schema.TAG_KIND] == schema.KIND_LIMITS
    again = run_job(_compose(*overrides))
    assert again.skipped and again.run_id == first.run_id
    assert again.method == schema.KIND_LIMITS and again.dataset == "in_memory_primal"
    assert not run_job(_compose(*overrides, "job.budget=2KB")).skipped


def test_two_sweeps_into_one_store_at_once_train_each_configuration_once(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONUNBUFFERED": "1"}
    sweep = [sys.executable, "-m", "lmbench.harness.run", "--multirun", "dataset=iris",
             "model=mlp_tiny", "trainer.max_epochs=300", "trainer.patience=null",
             "trainer.min_error=null", "trainer.mu_init=1,10,100", "tracking.experiment_name=two"]
    processes = [subprocess.Popen(sweep, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("two").experiment_id])
    jobs = [run for run in runs if run.data.tags.get(schema.TAG_KIND) != schema.KIND_SWEEP]
    hashes = [run.data.tags[schema.TAG_CONFIG_HASH] for run in jobs]
    assert len(hashes) == len(set(hashes)) == 3, "a configuration was trained twice"
    assert {run.info.status for run in jobs} == {"FINISHED"}
    parents = [run for run in runs if run.data.tags.get(schema.TAG_KIND) == schema.KIND_SWEEP]
    assert len(parents) == 2
    assert sum(run.data.metrics[schema.METRIC_SWEEP_SKIPPED] for run in parents) == 3
    # each sweep has its own folder (the launching process's id after the time)
    folders = [path.parent for path in tmp_path.glob("multirun/*/*/.mlflow_parent_run_id")]
    assert len(set(folders)) == 2 and all(len(list(f.glob("[0-9]"))) == 3 for f in folders)
