"""The real Hydra app, a real MLflow store: what a sweep leaves behind can be read back."""

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient


def test_multirun_logs_params_epoch_metrics_and_artifacts(run_app):
    run_app("--multirun", "dataset=iris", "model=mlp_tiny", "trainer.mu_init=1,10",
            "trainer.max_epochs=8", "tracking.experiment_name=it")
    mlflow.set_tracking_uri(run_app.store)
    runs = mlflow.search_runs(experiment_names=["it"])
    parent = runs[runs["tags.kind"] == "sweep"]
    runs = runs[runs["tags.kind"] != "sweep"]
    assert len(parent) == 1 and len(runs) == 2
    assert (runs["tags.mlflow.parentRunId"] == parent["run_id"].iloc[0]).all()
    assert sorted(runs["params.trainer.mu_init"]) == ["1", "10"]
    assert (runs["status"] == "FINISHED").all()
    assert runs["tags.sweep_id"].nunique() == 1 and runs["tags.sweep_id"].notna().all()
    assert runs["tags.dataset_hash"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert runs["tags.git_commit"].notna().all()
    assert set(runs["tags.method"]) == {"lm"}
    for column in ("metrics.test_accuracy", "metrics.test_balanced_accuracy",
                   "metrics.test_f1_macro", "metrics.test_roc_auc", "metrics.n_parameters",
                   "metrics.wall_time_s", "metrics.peak_rss_bytes"):
        assert runs[column].notna().all(), column
    client = MlflowClient(run_app.store)
    for run_id, epochs in zip(runs["run_id"], runs["metrics.epochs"], strict=True):
        history = client.get_metric_history(run_id, "train_loss")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(
            range(int(epochs) + 1)
        )
        for key in ("val_loss", "mu", "epoch_time_s", "damping_trials"):
            assert client.get_metric_history(run_id, key), key
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"config.yaml", "training_report.png", "weights"} <= artifacts
        assert [a.path for a in client.list_artifacts(run_id, "weights")] == ["weights/model.pt"]


def test_failing_run_is_recorded_as_failed_and_the_error_reaches_the_user(run_app):
    # a failure found only while training (a config mistake is refused before any run)
    done = run_app("dataset=iris", "model=mlp_tiny", "trainer=lm_cache", "trainer.batch_size=32",
                   "trainer.temp_folder=/proc/lmbench", "tracking.experiment_name=bad",
                   expect_ok=False)
    assert done.returncode != 0
    assert "temp_folder='/proc/lmbench' is on a proc pseudo-filesystem" in done.stderr
    mlflow.set_tracking_uri(run_app.store)
    runs = mlflow.search_runs(experiment_names=["bad"])
    assert list(runs["status"]) == ["FAILED"]
    assert "/proc/lmbench" in runs["tags.error"].iloc[0]


def test_a_config_mistake_exits_2_in_one_line_and_leaves_no_run(run_app):
    done = run_app("dataset=iris", "trainer.engine=warp_drive", "tracking.experiment_name=bad",
                   expect_ok=False)
    assert done.returncode == 2
    assert done.stderr == ("lmbench-run: trainer.engine must be one of in_memory, streaming, "
                           "cache, matrix_free, got 'warp_drive'\n")
    assert not (Path(run_app.store.removeprefix("sqlite:///"))).exists()


@pytest.mark.parametrize("engine", ["streaming", "cache"])
def test_large_data_engines_run_through_the_app(run_app, engine, tmp_path):
    run_app("dataset=wine", "model=mlp_tiny", f"trainer.engine={engine}",
            "trainer.batch_size=32", "trainer.max_epochs=3", "tracking=none",
            f"trainer.temp_folder={tmp_path / 'cache'}")
    assert not (tmp_path / "cache").exists()
