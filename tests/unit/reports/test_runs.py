"""load_runs: the run table read with mlflow.search_runs, the primary metric from its tag."""

import math

import pytest
from mlflow import MlflowClient

from lmbench.reports.runs import RUN_COLUMNS, load_runs


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=str(tmp_path / "art"))

    def add(tags, metrics, status="FINISHED", seed="0"):
        run = client.create_run(experiment, tags=tags)
        client.log_param(run.info.run_id, "seed", seed)
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id, status)
        return run.info.run_id

    ids = {
        # tagged by the harness: the tag names the metric, even where it is not the task's
        "tagged": add({"method": "lm", "dataset": "d", "task": "binary",
                       "primary_metric": "accuracy"}, {"test_accuracy": 0.8, "test_roc_auc": 0.9}),
        # an older store, or a run that failed before the tag was set: computed from the task
        "untagged": add({"method": "adam", "dataset": "d", "task": "regression"},
                        {"test_rmse": 2.0}, status="FAILED", seed="1"),
        "sweep": add({"kind": "sweep"}, {}),
    }
    return uri, ids


def test_primary_metric_comes_from_the_tag_and_falls_back_to_the_task(store):
    uri, ids = store
    runs = load_runs("e", uri).set_index("run_id")
    assert ids["sweep"] not in runs.index
    tagged, untagged = runs.loc[ids["tagged"]], runs.loc[ids["untagged"]]
    assert (tagged["primary_metric"], tagged["primary_value"]) == ("accuracy", 0.8)
    assert tagged["higher_is_better"]
    assert (untagged["primary_metric"], untagged["primary_value"]) == ("rmse", 2.0)
    assert not untagged["higher_is_better"]


def test_columns_keep_the_search_runs_layout(store):
    uri, ids = store
    runs = load_runs("e", uri)
    assert list(runs.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert {"metrics.test_rmse", "params.seed", "tags.primary_metric"} <= set(runs.columns)
    assert runs["start_time"].dtype.kind == "i"
    assert list(runs["method"]) == ["adam", "lm"] and list(runs["seed"]) == [1, 0]  # sorted
    untagged = runs.set_index("run_id").loc[ids["untagged"]]
    assert math.isnan(untagged["metrics.test_accuracy"])
    assert untagged["tags.primary_metric"] != untagged["tags.primary_metric"]  # NaN
