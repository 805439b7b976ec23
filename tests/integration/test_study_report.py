"""The study section from a real MLflow store (sqlite), filled with the plain mlflow API and the
schema's names: sections, figures (PDF and 200-dpi PNG), dedupe of a rerun, trials left out."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import mlflow
import pytest
from matplotlib.image import imread

from lmbench.harness.report import main as report_main
from lmbench.reports.numbers import fmt_mean_std
from lmbench.tracking import schema

DATASETS = {"iris": ("multiclass", "accuracy"), "diabetes": ("regression", "rmse"),
            "wine": ("multiclass", "accuracy")}
QUALITY = {"lm": 0.02, "xgboost": 0.0, "catboost": -0.02}  # accuracy offset per method


def _log(client: mlflow.MlflowClient, experiment_id: str, method: str, dataset: str,
         seed: int, *, start: int, config_hash: str | None = None, value: float | None = None,
         kind: str | None = None, parent: str | None = None) -> str:
    task, metric = DATASETS[dataset]
    base = 0.9 if metric == "accuracy" else 50.0
    sign = 1.0 if metric == "accuracy" else -100.0
    score = value if value is not None else base + sign * QUALITY[method] + 0.001 * seed
    tags = {schema.TAG_METHOD: method, schema.TAG_DATASET: dataset, schema.TAG_TASK: task,
            schema.TAG_PRIMARY_METRIC: metric, schema.TAG_GIT_COMMIT: "a" * 40,
            schema.TAG_GIT_DIRTY: "false",
            schema.TAG_CONFIG_HASH: config_hash or f"{method}-{dataset}-{seed}"}
    if method == "lm":
        tags[schema.TAG_LOSS] = "cross_entropy" if task == "multiclass" else "mse"
    if kind:
        tags[schema.TAG_KIND] = kind
    if parent:
        tags[schema.TAG_PARENT_RUN_ID] = parent
    run = client.create_run(experiment_id, start_time=start, tags=tags)
    run_id = run.info.run_id
    client.log_param(run_id, schema.PARAM_SEED, str(seed))
    client.log_param(run_id, "trainer.name", method)
    for name, number in ((schema.test_metric(metric), score),
                         (schema.default_test_metric(metric), score - sign * 0.01),
                         (schema.METRIC_TRAIN_TIME, {"lm": 2.0, "xgboost": 0.5,
                                                     "catboost": 5.0}[method] + seed),
                         (schema.METRIC_N_PARAMETERS, 100.0), (schema.METRIC_N_TRIALS, 4.0),
                         (schema.METRIC_N_TIMED_OUT, 0.0)):
        client.log_metric(run_id, name, number)
    client.set_terminated(run_id, "FINISHED", end_time=start + 1)
    return run_id


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("study-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("study")
    ids: dict = {"runs": []}
    start = 1_700_000_000_000
    for dataset in DATASETS:
        for method in QUALITY:
            for seed in range(2):
                start += 1000
                ids["runs"].append(_log(client, experiment_id, method, dataset, seed,
                                        start=start))
    # a rerun of one configuration (same config hash), later: it replaces the first
    ids["rerun"] = _log(client, experiment_id, "lm", "iris", 0, start=start + 5000,
                        config_hash="lm-iris-0", value=0.99)
    ids["replaced"] = ids["runs"][0]
    ids["trial"] = _log(client, experiment_id, "lm", "iris", 0, start=start + 6000,
                        kind=schema.KIND_TUNING_TRIAL, parent=ids["rerun"], value=0.1)
    out = folder / "report"
    report_main(["--experiment", "study", "--tracking-uri", uri, "--out", str(out)])
    return {**ids, "out": out, "md": (out / "report.md").read_text()}


def test_study_sections_and_tables(built: dict) -> None:
    md = built["md"]
    assert "## 1. Study: lm, xgboost, catboost over 3 datasets" in md
    for table in ("study_scores", "study_summary", "study_win_rate", "study_tuned_vs_default",
                  "study_cost"):
        assert (built["out"] / "tables" / f"{table}.tex").is_file(), table
    assert "Friedman test over N = 3 datasets and k = 3 methods" in md
    assert "no winner is called" in md  # 3 datasets: too few for a Wilcoxon verdict
    assert "`lm`: tuning improved the test score on 3 of 3 datasets (0 worse, 0 equal)" in md
    assert "Per-dataset comparison: lm vs xgboost vs catboost" in md
    # sections without data (limits, performance, paper checks, sensitivity) are not shown
    for absent in ("Memory and time limits", "Performance", "Paper", "sensitivity"):
        assert f". {absent}" not in md


def test_figures_are_pdf_and_200_dpi_png(built: dict) -> None:
    figures = built["out"] / "figures"
    for stem in ("study_cd_diagram", "study_win_rate", "study_time_quality",
                 "study_tuned_vs_default"):
        assert (figures / f"{stem}.pdf").stat().st_size > 0, stem
        assert (figures / f"{stem}.png").stat().st_size > 0, stem
    height, width = imread(figures / "study_time_quality.png").shape[:2]
    assert (width, height) == (round(6.4 * 200), round(3.6 * 200))


def test_rerun_is_counted_once_and_trials_are_not_results(built: dict) -> None:
    md = built["md"]
    assert "Duplicates dropped: 1 benchmark runs" in md
    with Path(built["out"], "runs.csv").open() as fh:
        run_ids = {row["run_id"] for row in csv.DictReader(fh)}
    assert built["rerun"] in run_ids
    assert built["replaced"] not in run_ids and built["trial"] not in run_ids
    assert f"| study | {built['replaced']} | lm | iris | 0 | FINISHED |" in md  # listed, not hidden
    scores = md[md.index("tables/study_scores.tex"):]
    iris = next(line for line in scores.splitlines() if line.startswith("| iris |"))
    rerun_and_seed_1 = [0.99, 0.9 + QUALITY["lm"] + 0.001]  # not the replaced run's 0.92
    expected = fmt_mean_std(statistics.fmean(rerun_and_seed_1), statistics.stdev(rerun_and_seed_1))
    assert f"**{expected} (2)**" in iris
