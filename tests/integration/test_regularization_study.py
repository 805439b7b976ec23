"""The penalty study through the real app: the three LM variants and Adam on one dataset, the
Bayesian series in the store, and the report's regularisation section built from it."""

import math

import mlflow

from lmbench.reports.build import ReportOptions, build_report, render_markdown
from lmbench.reports.runs import load_runs


def test_penalty_variants_run_log_their_series_and_get_a_report_section(run_app, tmp_path):
    run_app("+experiment=lm_regularization", "dataset=penguins", "seed=0",
            "tuning.n_samples=1", "trainer.budget=quick", "hydra.launcher.n_jobs=1")
    runs = load_runs("lm_regularization", run_app.store)
    assert set(runs["method"]) == {"lm_plain", "lm", "lm_bayesian", "adam"}
    assert (runs["status"] == "FINISHED").all()
    client = mlflow.MlflowClient(run_app.store)
    by_method = {row["method"]: row["run_id"] for _, row in runs.iterrows()}
    gamma = [m.value for m in client.get_metric_history(by_method["lm_bayesian"], "gamma")]
    alpha = [m.value for m in client.get_metric_history(by_method["lm_bayesian"], "alpha")]
    finite = [g for g in gamma if math.isfinite(g)]
    assert finite and all(0 < g < runs["n_parameters"].max() for g in finite[1:])
    assert alpha[-1] > 0
    assert not client.get_metric_history(by_method["lm_plain"], "gamma")  # plain: no series
    report = build_report(ReportOptions(["lm_regularization"], tracking_uri=run_app.store,
                                        out_dir=tmp_path / "report"))
    text = render_markdown(report)
    assert "LM with a weight penalty" in text
    assert "`lm_bayesian` against `adam`" in text
    assert "| penguins | lm_bayesian |" in text
