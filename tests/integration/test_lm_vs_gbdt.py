"""The comparison experiment's quick variant through the real app: all five methods on every
task type, the documented metrics in the store, and the comparison table built from it."""

import mlflow

from lmbench.reports import compare_methods, load_runs
from lmbench.tracking import schema

DOCUMENTED = {
    "binary": ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc"],
    "multiclass": ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc"],
    "regression": ["rmse", "mae", "r2"],
}


def test_quick_comparison_runs_every_method_on_every_task(run_app):
    run_app("+experiment=lm_vs_gbdt_quick", "seed=0", "tuning.n_samples=1")
    mlflow.set_tracking_uri(run_app.store)
    runs = load_runs("lm_vs_gbdt_quick", run_app.store)
    assert len(runs) == 15 and (runs["status"] == "FINISHED").all()
    assert set(runs["method"]) == {"lm", "xgboost", "catboost", "adam", "tlm"}
    assert set(runs["tags." + schema.TAG_TIER]) == {"quick"}
    assert set(runs["task"]) == {"binary", "multiclass", "regression"}
    for _, run in runs.iterrows():
        for metric in DOCUMENTED[run["task"]]:
            assert run[f"metrics.test_{metric}"] == run[f"metrics.test_{metric}"], (
                run["method"], run["dataset"], metric)  # not NaN
        assert run["n_parameters"] > 0 and run["train_time_s"] > 0
        assert run["metrics." + schema.METRIC_N_TRIALS] == 2  # the default + 1 sampled
        primary = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}[run["task"]]
        default = run["metrics." + schema.default_test_metric(primary)]
        assert default == default, (run["method"], run["dataset"])  # not NaN
    result = compare_methods(runs)
    assert set(result.summary["dataset"]) == {"iris", "breast_cancer", "diabetes"}
    assert len(result.wtl) == 4  # lm against each of the other four methods
    table = result.to_markdown()
    for method in ("lm", "xgboost", "catboost", "adam", "tlm"):
        assert f"| {method} |" in table
