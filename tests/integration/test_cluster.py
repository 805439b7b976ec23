"""The study beyond one machine: a multirun through the submitit launcher (local mode) logging to
a real MLflow tracking server backed by a real PostgreSQL, read back through the MLflow client.

Needs the ``cluster`` extra (``pip install -e '.[cluster]'``: pgserver, psycopg2-binary,
hydra-submitit-launcher); skipped without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pgserver = pytest.importorskip("pgserver", reason="the `cluster` extra is not installed")
pytest.importorskip("psycopg2", reason="the `cluster` extra is not installed")
pytest.importorskip(
    "hydra_plugins.hydra_submitit_launcher", reason="the `cluster` extra is not installed"
)

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from lmbench.tracking import schema  # noqa: E402

SERVER_START_TIMEOUT_S = 120.0
EXPERIMENT = "cluster"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _wait_for_health(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n"
                        f"{log.read_text()[-3000:]}")
        if _healthy(url):
            return
        time.sleep(0.3)
    pytest.fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT_S} s:\n"
                f"{log.read_text()[-3000:]}")


@pytest.fixture
def tracking_server() -> Iterator[tuple[str, Path]]:
    """A real PostgreSQL (pgserver) and a real ``mlflow server`` backed by it, serving artifacts;
    yields (server URL, artifacts folder). Both are stopped and their folders removed after."""
    # A short folder directly under the temp root: PostgreSQL listens on a Unix socket inside it
    # (paths are limited to ~100 characters), and pgserver, run as root, opens its parents to
    # the server's own user.
    root = Path(tempfile.mkdtemp(prefix="lmb-pg-"))
    postgres = None
    server = None
    try:
        postgres = pgserver.get_server(root / "pgdata", cleanup_mode="delete")
        postgres.psql("CREATE DATABASE mlflow;")
        backend = postgres.get_uri("mlflow").replace("postgresql://", "postgresql+psycopg2://", 1)
        artifacts = root / "artifacts"
        log = root / "server.log"
        port = _free_port()
        with log.open("w") as log_file:
            server = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                 "--serve-artifacts", "--artifacts-destination", str(artifacts)],
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        _wait_for_health(url, server, log)
        yield url, artifacts
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if postgres is not None:
            postgres.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def test_submitit_multirun_logs_to_a_postgres_backed_tracking_server(tracking_server, tmp_path):
    url, artifacts = tracking_server
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "lmbench.harness.run", "--multirun",
         "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
         "dataset=iris", "model=mlp_tiny", "trainer.max_epochs=3", "seed=0,1",
         f"tracking.experiment_name={EXPERIMENT}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The jobs really went through submitit (its job folders sit in the sweep directory)...
    assert list(tmp_path.glob("multirun/*/*/.submitit/*/*_result.pkl"))
    # ... and no local SQLite store or its lock appeared beside the launch directory.
    assert not list(tmp_path.glob("mlflow.db*"))
    assert not (tmp_path / "mlruns").exists()

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get(schema.TAG_KIND) == schema.KIND_SWEEP]
    jobs = [r for r in runs if schema.TAG_KIND not in r.data.tags]
    assert len(parents) == 1 and len(jobs) == 2, [r.info.run_name for r in runs]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics[schema.METRIC_SWEEP_JOBS] == 2
    assert parent.data.metrics[schema.METRIC_SWEEP_FINISHED] == 2
    assert "seed=0,1" in parent.data.params["sweep.overrides"]
    for job in jobs:
        assert job.info.status == "FINISHED"
        assert job.data.tags[schema.TAG_PARENT_RUN_ID] == parent.info.run_id
        assert job.data.metrics[schema.METRIC_BEST_VAL_LOSS] > 0
        assert len(client.get_metric_history(job.info.run_id, "val_loss")) >= 3
        # artifacts are proxied by the server into its artifacts destination
        assert job.info.artifact_uri.startswith("mlflow-artifacts:")
        listed = {a.path for a in client.list_artifacts(job.info.run_id)}
        assert schema.CONFIG_ARTIFACT in listed
    assert len(list(artifacts.rglob(schema.CONFIG_ARTIFACT))) == 2
    seeds = sorted(client.get_run(j.info.run_id).data.params["seed"] for j in jobs)
    assert seeds == ["0", "1"]

    # the logged model of a job loads back through the server
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    try:
        model = mlflow.pyfunc.load_model(jobs[0].data.tags[schema.TAG_MODEL_URI])
        x = np.asarray([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
        predicted = np.asarray(model.predict(x))
        assert predicted.shape[0] == 2 and np.isfinite(predicted).all()
    finally:
        mlflow.set_tracking_uri(previous)
