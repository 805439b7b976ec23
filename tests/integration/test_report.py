"""lmbench-report against a real temporary MLflow store: the tables say what the runs say.

The store is filled with ``RunTracker`` directly (fast): LM / XGBoost / Adam benchmark runs with
per-epoch histories, a FAILED run, a run from another commit, limits and performance runs in
their own experiments, and a real paper check (XOR, 3 starts) through ``run_paper_checks``.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lmbench.harness.report import main as report_main
from lmbench.harness.runners.paper_check import run_paper_checks
from lmbench.reports.numbers import fmt_mean_std
from lmbench.tracking import RunTracker, tracker_from_config

OTHER_COMMIT = "0123456789abcdef0123456789abcdef01234567"
LM_IRIS = {0: 0.90, 1: 0.94, 2: 0.97}
XGB_IRIS = {0: 0.80, 1: 0.81, 2: 0.82}
LM_DIABETES = {0: 55.0, 1: 57.5, 2: 60.0}
XGB_DIABETES = {0: 40.0, 1: 41.0, 2: 42.0}


def _bench_run(uri: str, method: str, dataset: str, seed: int, value: float, *,
               mu: float = 10.0, history: bool = True, tags: dict | None = None) -> str:
    task, metric = ("multiclass", "accuracy") if dataset == "iris" else ("regression", "rmse")
    config = {"seed": seed, "trainer": {"name": method}, "model": {"hidden": [16]}}
    if method == "lm":
        config["trainer"].update({"runner": "lm", "mu_init": mu, "demping_coef": 10})
    with RunTracker(f"{method}-{dataset}-{seed}", experiment_name="bench", tracking_uri=uri,
                    dataset_hash=f"hash-{dataset}", device="cpu",
                    tags={"method": method, "dataset": dataset, "task": task,
                          "model": "mlp_small", **(tags or {})}) as tracker:
        tracker.log_config(config)
        if history:
            n = 6 + seed
            series = {
                "train_loss": [1.0 / (e + 1) ** 2 for e in range(n)],
                "val_loss": [1.2 / (e + 1) for e in range(n)],
                "epoch_time_s": [0.0] + [0.01 * (seed + 1)] * (n - 1),
            }
            if method == "lm":
                series["mu"] = [mu * 10.0 ** -e for e in range(n)]
            tracker.log_epoch_history(series)
        tracker.log_metrics({f"test_{metric}": value, "n_parameters": 131 + seed,
                             "train_time_s": 0.5 + seed, "wall_time_s": 1.0 + seed})
        return tracker.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("report-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    ids: dict = {"uri": uri, "folder": folder, "bench": []}
    for seed in range(3):
        ids["bench"] += [
            _bench_run(uri, "lm", "iris", seed, LM_IRIS[seed], mu=(1.0, 10.0)[seed % 2]),
            _bench_run(uri, "xgboost", "iris", seed, XGB_IRIS[seed], history=False),
            _bench_run(uri, "adam", "iris", seed, 0.9),
            _bench_run(uri, "lm", "diabetes", seed, LM_DIABETES[seed]),
            _bench_run(uri, "xgboost", "diabetes", seed, XGB_DIABETES[seed], history=False),
        ]
    ids["stale"] = _bench_run(uri, "adam", "diabetes", 0, 70.0, tags={"git_commit": OTHER_COMMIT})
    with pytest.raises(RuntimeError), RunTracker(
        "lm-iris-broken", experiment_name="bench", tracking_uri=uri,
        tags={"method": "lm", "dataset": "iris", "task": "multiclass"},
    ) as tracker:
        ids["failed"] = tracker.run_id
        raise RuntimeError("Cholesky exploded on purpose")
    ids["limits"] = []
    for engine, n_params, peak in (("in_memory_primal", 1000, 3e8), ("streaming", 9000, 2e9)):
        with RunTracker(f"limits-{engine}", experiment_name="limits", tracking_uri=uri,
                        tags={"kind": "limits", "engine": engine, "device": "cpu"}) as t:
            t.log_config({"n_params": n_params, "n_rows": 2000, "n_outputs": 3,
                          "chunk_rows": 512, "dtype": "float32"})
            t.log_metrics({"peak_memory_bytes": peak, "predicted_memory_bytes": peak / 1.25,
                           "epoch_time_s": 0.5, "predicted_flops": 1e9,
                           "time_jacobian_s": 0.2, "time_system_s": 0.2, "time_solve_s": 0.1})
            ids["limits"].append(t.run_id)
    ids["performance"] = []
    for n_params in (100, 1000):
        for impl, seconds in (("lmbench", 1.0), ("torch_levenberg_marquardt", 2.0),
                              ("floor", 0.25)):
            with RunTracker(f"perf-{impl}-{n_params}", experiment_name="performance",
                            tracking_uri=uri,
                            tags={"kind": "performance", "implementation": impl}) as t:
                t.log_config({"n_params": n_params, "n_residuals": 5000})
                t.log_metrics({"epoch_time_s": seconds * n_params / 100,
                               "peak_memory_bytes": 1e8, "ratio_to_floor": seconds / 0.25,
                               "ratio_to_reference": seconds / 2.0})
                ids["performance"].append(t.run_id)
    cfg = OmegaConf.create({
        "seed": 0, "threads": 1, "device": "cpu", "tags": {},
        "job": {"name": "paper_check", "runner": "paper_check", "problem": "xor",
                "starts": 3, "max_epochs": 100},
        "tracking": {"tracking_uri": uri, "experiment_name": "paper_checks"},
    })
    outcome = run_paper_checks(cfg, lambda **kw: tracker_from_config(cfg.tracking, **kw))
    ids["paper"] = outcome
    return ids


@pytest.fixture(scope="module")
def report(store: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    outs = []
    for name in ("first", "second"):
        out = tmp_path_factory.mktemp(name) / "bench"
        report_main(["--experiment", "bench", "--tracking-uri", store["uri"], "--out",
                     str(out), "--dpi", "40"])
        outs.append(out)
    return {"out": outs[0], "again": outs[1], "md": (outs[0] / "report.md").read_text()}


def test_regeneration_is_byte_identical(report: dict) -> None:
    first, again = report["out"], report["again"]
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert {"report.md", "runs.csv"} <= {str(p) for p in files}
    assert sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file()) == files
    for path in files:
        assert (first / path).read_bytes() == (again / path).read_bytes(), path
    tex = (first / "tables" / "comparison_scores.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\pm" in tex
    assert {p.suffix for p in (first / "figures").iterdir()} == {".png", ".pdf"}


def test_comparison_table_shows_the_runs_values(report: dict) -> None:
    md = report["md"]
    lm = list(LM_IRIS.values())
    xgb = list(XGB_DIABETES.values())
    lm_cell = f"{fmt_mean_std(statistics.fmean(lm), statistics.stdev(lm))} (3, 1 failed)"
    xgb_cell = f"{fmt_mean_std(statistics.fmean(xgb), statistics.stdev(xgb))} (3)"
    md = md[md.index("tables/comparison_scores.tex"):]  # the comparison, not the study table
    iris_row = next(line for line in md.splitlines() if line.startswith("| iris | accuracy"))
    assert f"**{lm_cell}**" in iris_row  # best accuracy on iris, bold; the failed run counted
    diabetes_row = next(line for line in md.splitlines()
                        if line.startswith("| diabetes | rmse"))
    assert f"**{xgb_cell}**" in diabetes_row  # lower rmse wins
    assert "70 (1)†" in diabetes_row  # the adam run from another commit is marked
    # three seeds: no two-sided Wilcoxon test can reach 0.05, so nothing is called
    wtl = re.search(r"\| lm \| xgboost \| (\d) \| (\d) \| (\d) \| (\d) \|", md)
    assert wtl and wtl.groups() == ("0", "0", "0", "2")


def test_runs_csv_traces_every_run_with_commit_and_dataset_hash(store: dict, report: dict):
    with (report["out"] / "runs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    ids = set(store["bench"]) | {store["stale"], store["failed"], *store["limits"],
                                 *store["performance"], store["paper"].run_id}
    assert {r["run_id"] for r in rows} == ids
    value = {(r["run_id"], r["quantity"]): r for r in rows if r["section"] == "comparison"}
    first_lm = store["bench"][0]
    assert math.isclose(float(value[(first_lm, "test_accuracy")]["value"]), LM_IRIS[0])
    assert value[(first_lm, "test_accuracy")]["dataset_hash"] == "hash-iris"
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", value[(first_lm, "test_accuracy")]["git_commit"])
    stale = [r for r in rows if r["run_id"] == store["stale"]]
    assert {r["git_commit"] for r in stale} == {OTHER_COMMIT}
    assert {r["code_version"] for r in stale} == {"other"}
    failed = [r for r in rows if r["run_id"] == store["failed"]]
    assert [(r["section"], r["value"]) for r in failed] == [("runs", "FAILED")]


def test_failed_and_stale_runs_are_reported_not_dropped(store: dict, report: dict) -> None:
    md = report["md"]
    assert store["failed"] in md and "RuntimeError: Cholesky exploded on purpose" in md
    audit = md.split("Runs from another code version")[1]
    assert store["stale"] in audit and OTHER_COMMIT[:12] in audit


def test_sections_from_histories_limits_performance_and_paper_checks(store, report):
    md, out = report["md"], report["out"]
    for stem in ("dynamics_iris", "dynamics_diabetes", "lm_vs_adam", "sensitivity_mu_damping",
                 "sensitivity_width", "limits", "performance", "paper_checks"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 0, stem
    # sensitivity: iris LM seeds 0, 2 have mu 1, seed 1 has mu 10; value = last val loss
    row = next(line for line in md.splitlines()
               if line.startswith("| iris | val MSE (on probabilities) | 10 |"))
    assert "0.1714 (1)" in row  # 1.2 / 7: seed 1 logged 7 epochs
    assert "| streaming | cpu | float32 | 9,000 | 6,000 | 512 | 1907 | 1526 | 1.25 |" in md
    assert "beyond" in md and "within" in md
    assert "| lmbench | 1,000 | 5,000 | 1 | 10 |" in md
    paper = store["paper"].extra_metrics
    xor = next(line for line in md.splitlines() if line.startswith("| xor | 2-3-1 tanh"))
    assert f"{100 * paper['success_rate']:.3g}%" in xor
    assert "reported by the torch-levenberg-marquardt README" in md
    assert "not checked" in md


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "absent.db"
    with pytest.raises(SystemExit) as exit_info:
        report_main(["--experiment", "quick", "--tracking-uri", f"sqlite:///{db}",
                     "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert not db.exists() and not (tmp_path / "out").exists()
