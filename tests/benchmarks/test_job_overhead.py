"""Job overhead: one small LM job end to end through the harness (``run_job``: data split,
MLflow run with params, tags, epoch histories, training-report figure, weights, metrics) into a
temporary SQLite store. Reports overhead = job wall time - training time in ``extra_info``:
as the harness logs it (``wall_time_s - train_time_s``) and around the whole call (run start,
final metrics and run end included).

    .venv/bin/pytest tests/benchmarks/test_job_overhead.py --benchmark-only
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from lmbench.harness.jobs import run_job
from lmbench.tracking import get_client
from lmbench.tracking.schema import METRIC_TRAIN_TIME, METRIC_WALL_TIME

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
#: One job of ``+experiment=quick``.
OVERRIDES = ["dataset=iris", "model=mlp_tiny", "trainer.mu_init=10", "trainer.demping_coef=10",
             "trainer.max_epochs=60", "trainer.patience=8", "progress=false",
             "resume=false"]  # the same job every round: train it each time


def test_small_lm_job_overhead(benchmark, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*OVERRIDES, f"tracking.tracking_uri={uri}",
                                           "tracking.experiment_name=overhead"])
    run_job(cfg)  # creates the store and imports everything a job touches
    calls: list[tuple[float, str, float]] = []

    def job() -> None:
        started = time.perf_counter()
        outcome = run_job(cfg)
        calls.append((time.perf_counter() - started, str(outcome.run_id), outcome.train_time_s))

    benchmark.pedantic(job, rounds=5, iterations=1)
    client = get_client(uri)
    logged, total = [], []
    for wall, run_id, train in calls:
        metrics = client.get_run(run_id).data.metrics
        assert metrics[METRIC_TRAIN_TIME] == pytest.approx(train)
        logged.append(metrics[METRIC_WALL_TIME] - metrics[METRIC_TRAIN_TIME])
        total.append(wall - train)
    benchmark.extra_info.update({
        "train_time_s": statistics.median(c[2] for c in calls),
        "overhead_logged_s": statistics.median(logged),  # wall_time_s - train_time_s
        "overhead_total_s": statistics.median(total),  # the whole run_job call - train
    })
    assert statistics.median(total) < 5.0  # a sanity bound, not the goal (< 1 s on 2 cores)
