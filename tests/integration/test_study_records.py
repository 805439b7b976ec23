"""A tiny real sweep (Hydra app, joblib launcher, sqlite MLflow store) of the quick study: every
job run holds its trials' records and the selected hyper-parameters, and the report builds the
error-ratio section and exports those records in runs.csv."""

import csv

import pytest

from lmbench.harness.report import main as report_main
from lmbench.reports import load_runs
from lmbench.tracking import schema

SWEEP = ("+experiment=lm_vs_gbdt_quick", "trainer=lm_tuned,xgboost", "dataset=iris,diabetes",
         "seed=0",
         "tuning.n_samples=1")
TRIAL_METRICS = (schema.TRIAL_EPOCHS, schema.TRIAL_BEST_EPOCH, schema.TRIAL_FIT_TIME,
                 schema.TRIAL_TIMED_OUT, schema.TRIAL_VAL_SCORE)
SELECTED = {"lm": ("hidden", "mu_init", "demping_coef", "weight_decay"),
            "xgboost": ("max_depth", "learning_rate", "subsample")}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("records")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", "lmbench.harness.run", *SWEEP], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = folder / "report"
    report_main(["--experiment", "lm_vs_gbdt_quick", "--tracking-uri", store, "--out", str(out)])
    return {"runs": load_runs("lm_vs_gbdt_quick", store), "out": out}


def test_every_job_run_records_its_trials_and_the_selected_settings(swept):
    runs = swept["runs"]
    assert len(runs) == 4 and (runs["status"] == "FINISHED").all()
    for _, run in runs.iterrows():
        for number in (0, 1):
            for field in TRIAL_METRICS:
                value = run[schema.metric_column(schema.trial_record(number, field))]
                assert value == value, (run["method"], number, field)  # logged, not NaN
            reason = run[schema.tag_column(schema.trial_record(number, schema.TRIAL_STOP_REASON))]
            assert reason in {"max_epochs", "validation_patience", "min_error", "time_limit",
                              "mu_max", "min_gradient", "converged_ftol", "converged_xtol",
                              "converged_gtol"}, reason
            assert run[schema.metric_column(schema.trial_record(number, schema.TRIAL_EPOCHS))] >= 1
        selected = int(run[schema.metric_column(schema.METRIC_SELECTED_TRIAL)])
        assert run[schema.metric_column(schema.METRIC_EPOCHS)] == run[schema.metric_column(
            schema.trial_record(selected, schema.TRIAL_EPOCHS))]
        assert run[schema.tag_column(schema.TAG_STOP_REASON)] == run[schema.tag_column(
            schema.trial_record(selected, schema.TRIAL_STOP_REASON))]
        for name in SELECTED[run["method"]]:
            value = run[schema.param_column(schema.selected_param(name))]
            assert isinstance(value, str) and value, (run["method"], name)
        assert run[schema.metric_column(schema.METRIC_N_TEST_ROWS)] > 0
    lm = runs[runs["method"] == "lm"]
    assert set(lm[schema.tag_column(schema.TAG_ENGINE)]) == {"in_memory"}


def test_report_builds_the_error_section_and_exports_the_records(swept):
    out = swept["out"]
    md = (out / "report.md").read_text()
    assert "Study: error ratios, per-dataset tests, test sizes and model size" in md
    for table in ("study_extra_error", "study_dataset_tests", "study_test_rows",
                  "study_efficiency"):
        assert (out / "tables" / f"{table}.tex").is_file(), table
    assert (out / "figures" / "study_efficiency.png").stat().st_size > 0
    assert "| iris | multiclass | accuracy | 30 |" in md  # 150 rows x 0.2: flagged small
    with (out / "runs.csv").open() as fh:
        records = [row for row in csv.DictReader(fh) if row["section"] == "records"]
    by_run: dict[str, set[str]] = {}
    for row in records:
        by_run.setdefault(row["run_id"], set()).add(row["quantity"])
    runs = swept["runs"].set_index("run_id")
    assert set(by_run) == set(runs.index)
    for run_id, quantities in by_run.items():
        method = runs.at[run_id, "method"]
        assert {schema.selected_param(n) for n in SELECTED[method]} <= quantities
        assert {schema.trial_record(1, f) for f in (*TRIAL_METRICS, "stop_reason")} <= quantities
