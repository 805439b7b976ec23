"""MLflow models, dataset inputs, child runs, system metrics and the sweep parent run, against a
real SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from lmbench.tracking import RunTracker, schema, tracker_from_config
from lmbench.tracking.sweep import PARENT_RUN_ENV, PARENT_RUN_FILE, SweepParent, read_parent_run_id


def _tracker(store: tuple[str, str, Path], name: str, **kwargs: object) -> RunTracker:
    uri, experiment_id, _ = store
    return RunTracker(name, tracking_uri=uri, experiment_id=experiment_id, **kwargs)  # type: ignore[arg-type]


def _x(rows: int = 40, cols: int = 4) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(rows, cols)).astype(np.float32)


def _served(store, run_id: str, x: np.ndarray) -> np.ndarray:
    """The run's model as ``mlflow.pyfunc`` serves it, predicting ``x`` (it has a signature and
    an input example)."""
    uri = MlflowClient(store[0]).get_run(run_id).data.tags[schema.TAG_MODEL_URI]
    assert uri.startswith("models:/")
    mlflow.set_tracking_uri(store[0])
    try:
        model = mlflow.pyfunc.load_model(uri)
        assert model.metadata.signature is not None
        assert model.metadata.saved_input_example_info is not None
        return np.asarray(model.predict(x))
    finally:
        mlflow.set_tracking_uri(None)


def test_network_is_served_by_pyfunc_with_signature_and_example(store) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x = _x()
    with _tracker(store, "torch-model") as tracker:
        started = time.perf_counter()
        uri = tracker.log_model(net, x)
        cost = time.perf_counter() - started
    assert uri is not None and cost < 15
    with torch.no_grad():
        own = net(torch.as_tensor(x[:3])).numpy()
    np.testing.assert_allclose(_served(store, tracker.run_id, x[:3]), own, rtol=1e-6)


@pytest.mark.parametrize("library", ["xgboost", "catboost"])
def test_gbdt_model_is_served_by_pyfunc(store, library: str) -> None:
    x = _x(80).astype(np.float64)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    if library == "xgboost":
        import xgboost as xgb

        model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(x, y)
    else:
        import catboost as cb

        model = cb.CatBoostClassifier(iterations=5, depth=2, verbose=False, thread_count=1,
                                      allow_writing_files=False).fit(x, y)
    with _tracker(store, f"{library}-model") as tracker:
        assert tracker.log_model(model, x) is not None
    served = _served(store, tracker.run_id, x[:4])
    np.testing.assert_array_equal(served.reshape(-1), np.asarray(model.predict(x[:4])).reshape(-1))


def test_log_models_off_and_unknown_models_log_nothing(store) -> None:
    with _tracker(store, "no-model", log_models=False) as tracker:
        assert tracker.log_model(torch.nn.Linear(2, 1), _x(cols=2)) is None
    with _tracker(store, "odd-model") as tracker:
        assert tracker.log_model(object(), _x()) is None
    assert schema.TAG_MODEL_URI not in MlflowClient(store[0]).get_run(tracker.run_id).data.tags


def test_split_is_recorded_as_dataset_inputs_with_contexts(store) -> None:
    x, y = _x(30), _x(30, 1)
    digests = {c: f"{i}" * 64 for i, c in enumerate(("train", "validation", "test"))}
    with _tracker(store, "inputs") as tracker:
        n = tracker.log_dataset(
            "toy", {"package": "sklearn", "key": "toy"},
            {c: (x, y, digests[c]) for c in digests},
        )
    assert n == 3
    inputs = MlflowClient(store[0]).get_run(tracker.run_id).inputs.dataset_inputs
    found = {
        next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
        for i in inputs
    }
    assert set(found) == {"train", "validation", "test"}
    for context, dataset in found.items():
        assert dataset.name == "toy"
        assert digests[context].startswith(dataset.digest) and len(dataset.digest) == 36
        assert "sklearn" in dataset.source


def test_child_runs_nest_under_the_run(store) -> None:
    with _tracker(store, "parent") as tracker:
        ids = tracker.log_child_runs([
            {"run_name": f"trial{i}", "params": {"max_depth": d},
             "metrics": {"val_score": s, "skipped": float("nan")},
             "tags": {schema.TAG_KIND: schema.KIND_GRID_TRIAL}}
            for i, (d, s) in enumerate([(3, 0.5), (6, 0.7)])
        ])
    client = MlflowClient(store[0])
    runs = [client.get_run(i) for i in ids]
    assert [r.data.tags[schema.TAG_PARENT_RUN_ID] for r in runs] == [tracker.run_id] * 2
    assert [r.data.params["max_depth"] for r in runs] == ["3", "6"]
    assert [r.data.metrics["val_score"] for r in runs] == [0.5, 0.7]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert "skipped" not in runs[0].data.metrics


def test_system_metrics_are_sampled_when_asked(store) -> None:
    with _tracker(store, "sysmetrics", system_metrics_interval_s=0.2) as tracker:
        time.sleep(1.0)
    metrics = MlflowClient(store[0]).get_run(tracker.run_id).data.metrics
    assert any(k.startswith("system/") for k in metrics), sorted(metrics)


def test_system_metrics_auto_means_single_runs_only(store) -> None:
    cfg = {"tracking_uri": store[0], "system_metrics": "auto", "system_metrics_interval_s": 5}
    assert tracker_from_config(cfg).system_metrics_interval_s == 5
    assert tracker_from_config(cfg, sweep_id="abc").system_metrics_interval_s is None
    assert tracker_from_config({**cfg, "system_metrics": True},
                               sweep_id="abc").system_metrics_interval_s == 5
    with pytest.raises(ValueError, match="tracking.system_metrics"):
        tracker_from_config({**cfg, "system_metrics": "sometimes"})


def test_sweep_parent_counts_its_jobs_and_hands_its_id_over(store, tmp_path, monkeypatch):
    monkeypatch.delenv(PARENT_RUN_ENV, raising=False)
    sweep_dir = tmp_path / "sweep"
    parent = SweepParent({"tracking_uri": store[0], "experiment_name": "unit"}, str(sweep_dir))
    run_id = parent.start(store[1], overrides=["a=1,2"], sweep_params={"seed": "0,1"},
                          config={"seed": 0})
    assert (sweep_dir / PARENT_RUN_FILE).read_text().strip() == run_id
    assert read_parent_run_id(sweep_dir) == run_id
    for status in ("FINISHED", "FAILED"):
        job = _tracker(store, f"job-{status}", parent_run_id=read_parent_run_id(sweep_dir))
        job.start()
        job.end(status)  # type: ignore[arg-type]
    parent.finish()
    run = MlflowClient(store[0]).get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[schema.TAG_KIND] == schema.KIND_SWEEP
    assert run.data.params["sweep.overrides"] == "a=1,2"
    assert run.data.params["sweep.params.seed"] == "0,1"
    assert run.data.metrics[schema.METRIC_SWEEP_JOBS] == 2
    assert run.data.metrics[schema.METRIC_SWEEP_FINISHED] == 1
    assert run.data.metrics[schema.METRIC_SWEEP_FAILED] == 1
    assert PARENT_RUN_ENV not in __import__("os").environ
    parent.finish()  # idempotent
