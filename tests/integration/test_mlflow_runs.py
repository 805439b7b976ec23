"""What MLflow users expect of the app's runs: sweeps as parent runs with nested jobs (also with
the joblib launcher), servable models, dataset inputs, tuning trials as child runs, GBDT runs tagged
with their own model, the returned weights' validation loss."""

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from lmbench.tracking import schema


def _runs(run_app, experiment: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(run_app.store)
    return mlflow.search_runs(experiment_names=[experiment])


def _kind(runs: pd.DataFrame) -> pd.Series:
    column = "tags." + schema.TAG_KIND
    return runs[column] if column in runs else pd.Series([None] * len(runs), index=runs.index)


def test_joblib_sweep_nests_its_jobs_and_a_failed_job_fails_the_parent(run_app):
    # the cache job fails while training (its engine cannot use a folder under /proc); the
    # in-memory job never uses the folder
    done = run_app("--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   "dataset=iris", "model=mlp_tiny", "trainer.max_epochs=3",
                   "trainer.engine=in_memory,cache", "trainer.temp_folder=/proc/lmbench",
                   "tracking.experiment_name=sw", expect_ok=False)
    assert done.returncode != 0
    runs = _runs(run_app, "sw")
    parent = runs[_kind(runs) == schema.KIND_SWEEP]
    jobs = runs[_kind(runs) != schema.KIND_SWEEP]
    assert len(parent) == 1 and len(jobs) == 2
    parent_id = parent["run_id"].iloc[0]
    assert (jobs["tags." + schema.TAG_PARENT_RUN_ID] == parent_id).all()
    assert sorted(jobs["status"]) == ["FAILED", "FINISHED"]
    row = parent.iloc[0]
    assert row["status"] == "FAILED"
    assert row["metrics." + schema.METRIC_SWEEP_JOBS] == 2
    assert row["metrics." + schema.METRIC_SWEEP_FAILED] == 1
    assert "trainer.engine=in_memory,cache" in row["params.sweep.overrides"]
    artifacts = {a.path for a in MlflowClient(run_app.store).list_artifacts(parent_id)}
    assert schema.SWEEP_CONFIG_ARTIFACT in artifacts


def test_single_lm_run_has_no_parent_a_served_model_inputs_and_returned_val_loss(run_app):
    run_app("dataset=iris", "model=mlp_tiny", "trainer.max_epochs=30", "trainer.patience=2",
            "tracking.experiment_name=one")
    runs = _runs(run_app, "one")
    assert len(runs) == 1
    run = MlflowClient(run_app.store).get_run(runs["run_id"].iloc[0])
    assert schema.TAG_PARENT_RUN_ID not in run.data.tags
    contexts = sorted(
        t.value for i in run.inputs.dataset_inputs for t in i.tags if t.key == "mlflow.data.context"
    )
    assert contexts == ["test", "train", "validation"]
    assert all(i.dataset.name == "iris" for i in run.inputs.dataset_inputs)
    # the returned weights' validation loss is the best epoch's, not the last epoch's
    history = MlflowClient(run_app.store).get_metric_history(run.info.run_id, "val_loss")
    by_epoch = {m.step: m.value for m in history}
    best = run.data.metrics[schema.METRIC_BEST_VAL_LOSS]
    assert best == min(by_epoch.values())
    if "best_epoch" in run.data.metrics:
        assert best == by_epoch[int(run.data.metrics["best_epoch"])]
    # the model is served by pyfunc and predicts like the weights artifact
    x = np.asarray(
        [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32
    )
    model = mlflow.pyfunc.load_model(run.data.tags[schema.TAG_MODEL_URI])
    served = np.asarray(model.predict(x))
    network = mlflow.pytorch.load_model(run.data.tags[schema.TAG_MODEL_URI])
    import torch

    weights = torch.load(
        MlflowClient(run_app.store).download_artifacts(run.info.run_id, "weights/model.pt"),
        weights_only=True,
    )
    network.load_state_dict(weights)
    with torch.no_grad():
        np.testing.assert_allclose(served, network(torch.as_tensor(x)).numpy(), rtol=1e-6)


def test_tunings_nest_trials_gbdt_has_its_own_model_lm_tuned_gets_a_report(run_app):
    for trainer in ("xgboost", "lm_tuned", "tlm"):
        run_app("dataset=iris", f"trainer={trainer}", "trainer.budget=quick",
                "tuning.n_samples=2", "tracking.experiment_name=tuning")
    runs = _runs(run_app, "tuning")
    kind = _kind(runs)
    jobs = runs[kind.isna()]
    trials = runs[kind == schema.KIND_TUNING_TRIAL]
    assert len(jobs) == 3
    client = MlflowClient(run_app.store)
    for _, job in jobs.iterrows():
        mine = trials[trials["tags." + schema.TAG_PARENT_RUN_ID] == job["run_id"]]
        assert len(mine) == job["metrics." + schema.METRIC_N_TRIALS] == 3
        assert job["metrics." + schema.METRIC_N_TIMED_OUT] == 0
        assert mine["metrics." + schema.METRIC_VAL_SCORE].notna().all()
        assert (mine["tags." + schema.TAG_SELECTED] == "true").sum() == 1
        assert (mine["tags." + schema.TAG_TIMED_OUT] == "false").all()
        origin = mine.set_index("tags." + schema.TAG_TRIAL)["tags." + schema.TAG_TRIAL_ORIGIN]
        assert origin.sort_index().tolist() == [schema.TRIAL_ORIGIN_DEFAULT] + [
            schema.TRIAL_ORIGIN_SAMPLED] * 2
        default = mine[mine["tags." + schema.TAG_TRIAL] == "0"].iloc[0]
        assert job["metrics." + schema.METRIC_DEFAULT_VAL_SCORE] == default[
            "metrics." + schema.METRIC_VAL_SCORE]
        # the tuned and the default models' test scores, side by side
        assert 0 <= job["metrics." + schema.test_metric("accuracy")] <= 1
        assert 0 <= job["metrics." + schema.default_test_metric("accuracy")] <= 1
        assert mlflow.pyfunc.load_model(job["tags." + schema.TAG_MODEL_URI]) is not None
    xgb = jobs[jobs["tags.method"] == "xgboost"].iloc[0]
    assert xgb["tags." + schema.TAG_MODEL] == "xgboost"
    model_params = [c for c in runs.columns if c.startswith("params.model.")]
    assert all(pd.isna(xgb[c]) for c in model_params)
    lm = jobs[jobs["tags.method"] == "lm"].iloc[0]
    assert lm["metrics." + schema.METRIC_BEST_VAL_LOSS] > 0
    artifacts = {a.path for a in client.list_artifacts(lm["run_id"])}
    assert schema.TRAINING_REPORT_ARTIFACT in artifacts


def test_a_tuning_logs_its_trials_as_tuning_json_under_a_name_with_its_model_tag(run_app):
    run_app("dataset=iris", "trainer=adam", "trainer.budget=quick", "tuning.n_samples=1",
            "tracking.experiment_name=tuning_artifact")
    runs = _runs(run_app, "tuning_artifact")
    job = runs[_kind(runs).isna()].iloc[0]
    assert job["tags." + schema.TAG_MODEL] == "mlp_grid"
    assert job["tags.mlflow.runName"].startswith("adam-iris-mlp_grid-s0-")
    client = MlflowClient(run_app.store)
    artifacts = {a.path for a in client.list_artifacts(job["run_id"])}
    assert schema.TUNING_ARTIFACT == "tuning.json" and "grid_search.json" not in artifacts
    tuning = mlflow.artifacts.load_dict(f"runs:/{job['run_id']}/{schema.TUNING_ARTIFACT}")
    assert len(tuning["trials"]) == 2 and tuning["selected_trial"] in (0, 1)
