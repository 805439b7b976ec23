"""A real ``lmbench-run`` stopped from outside (Ctrl-C, a scheduler's SIGTERM) keeps what it
trained in the store, removes the cache engine's temp folder and exits like a killed process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient

LONG_RUN = ("dataset=iris", "model=mlp_tiny", "trainer.max_epochs=100000",
            "trainer.patience=null", "trainer.min_error=null", "progress=false")


def _start(tmp_path: Path, *overrides: str) -> tuple[subprocess.Popen, str]:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lmbench.harness.run", *LONG_RUN, *overrides],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return process, store


def _epochs_in_store(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            row = connection.execute(
                "select count(*) from metrics where key = 'train_loss'"
            ).fetchone()
        return int(row[0])
    except sqlite3.Error:  # not created yet, or busy
        return 0


def _wait_for_epochs(process: subprocess.Popen, db: Path, at_least: int,
                     timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"lmbench-run ended early:\n{process.stdout.read()[-3000:]}")
        if (n := _epochs_in_store(db)) >= at_least:
            return n
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"no {at_least} epochs in the store after {timeout}s")


def _stop(process: subprocess.Popen, sig: int) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, output


def _only_run(store: str):
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("lmbench")
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def test_an_interrupted_run_keeps_its_epochs_and_last_weights(tmp_path):
    process, store = _start(tmp_path)
    seen = _wait_for_epochs(process, tmp_path / "mlflow.db", at_least=150)
    _, output = _stop(process, signal.SIGINT)
    client, run = _only_run(store)
    assert run.info.status == "KILLED", output[-3000:]
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert len(steps) >= seen and sorted(steps) == list(range(len(steps)))
    assert [a.path for a in client.list_artifacts(run.info.run_id, "weights")] == [
        "weights/model.pt"
    ]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"history_seed.json", "config.yaml", "error.txt"} <= artifacts
    assert run.data.tags["stop_reason"] == "interrupted"


def test_sigterm_cleans_the_cache_folder_marks_the_run_killed_and_exits_143(tmp_path):
    cache = tmp_path / "cache"
    process, store = _start(tmp_path, "trainer=lm_cache", f"trainer.temp_folder={cache}",
                            "trainer.batch_size=32")
    _wait_for_epochs(process, tmp_path / "mlflow.db", at_least=20)
    assert list(cache.glob("lmbench-cache-*")), "the cache engine made no temp folder"
    code, output = _stop(process, signal.SIGTERM)
    assert code == 143, output[-3000:]
    assert not cache.exists() or not list(cache.glob("lmbench-cache-*"))
    _, run = _only_run(store)
    assert run.info.status == "KILLED"
    assert "SIGTERM" in run.data.tags["error"]


def test_ctrl_c_under_the_joblib_launcher_marks_the_jobs_and_the_sweep_killed(tmp_path):
    # Ctrl-C in a terminal signals the whole process group: the sweep and joblib's workers
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lmbench.harness.run", "--multirun", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", *LONG_RUN, "seed=0,1,2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    _wait_for_epochs(process, tmp_path / "mlflow.db", at_least=20)
    os.killpg(process.pid, signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    assert process.returncode == 130, output[-3000:]
    lines = output.strip().splitlines()
    assert lines[-1].startswith("lmbench-run: interrupted") and "same command" in lines[-1]
    assert len(lines) < 30 and "Traceback" not in output, output[-3000:]
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("lmbench").experiment_id])
    statuses = {run.data.tags.get("kind", "job"): set() for run in runs}
    for run in runs:
        statuses[run.data.tags.get("kind", "job")].add(run.info.status)
    assert statuses == {"sweep": {"KILLED"}, "job": {"KILLED"}}, statuses
