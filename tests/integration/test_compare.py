"""lmbench-compare against a real temporary MLflow store: its default experiment and what it
says about a sweep of one method."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmbench.harness.compare import main as compare_main
from lmbench.harness.report import DEFAULT_EXPERIMENT
from lmbench.tracking import RunTracker


def _lm_run(uri: str, experiment: str, seed: int, hidden: list[int], n_parameters: int) -> None:
    with RunTracker(f"lm-iris-{seed}-{hidden}", experiment_name=experiment, tracking_uri=uri,
                    dataset_hash="hash-iris", device="cpu",
                    tags={"method": "lm", "dataset": "iris", "task": "multiclass",
                          "model": "mlp"}) as tracker:
        tracker.log_config({"seed": seed, "trainer": {"name": "lm", "runner": "lm"},
                            "model": {"hidden": hidden}})
        tracker.log_metrics({"test_accuracy": 0.9 + 0.01 * seed, "n_parameters": n_parameters,
                             "train_time_s": 0.5})


def test_without_experiment_it_reads_lmbench_runs_default_and_a_one_method_sweep_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for seed in (0, 1):
        _lm_run(uri, DEFAULT_EXPERIMENT, seed, [8], 67)
        _lm_run(uri, DEFAULT_EXPERIMENT, seed, [16], 131)
    _lm_run(uri, "elsewhere", 0, [4], 35)  # not read: the default experiment exists
    compare_main(["--tracking-uri", uri])
    out = capsys.readouterr().out
    assert "| iris | accuracy ↑ | lm | 0.905 ± 0.005774 (4) | 67 (8) / 131 (16) |" in out
    assert "One method (`lm`) in these runs" in out
    assert "| versus |" not in out and "rank |" not in out and "mean rank" not in out
