"""Comparison statistics on hand-made run tables: intervals, tie rule, ranks, failed runs."""

import math

import pandas as pd
import pytest
from scipy import stats

from lmbench.reports import compare_methods, summarize, win_tie_loss


def runs_table(values: dict[tuple[str, str], list[float]], task="binary", failed=()):
    rows = []
    for (dataset, method), scores in values.items():
        for seed, score in enumerate(scores):
            rows.append({
                "run_id": f"{dataset}-{method}-{seed}", "status": "FINISHED", "method": method,
                "dataset": dataset, "task": task, "seed": seed,
                "primary_metric": "roc_auc" if task == "binary" else "rmse",
                "higher_is_better": task == "binary", "primary_value": score,
                "n_parameters": 100.0, "train_time_s": 1.0,
            })
    for dataset, method in failed:
        rows.append({"run_id": f"{dataset}-{method}-x", "status": "FAILED", "method": method,
                     "dataset": dataset, "task": task, "seed": 9,
                     "primary_metric": "roc_auc", "higher_is_better": True,
                     "primary_value": math.nan, "n_parameters": math.nan,
                     "train_time_s": math.nan})
    return pd.DataFrame(rows)


def test_mean_std_and_t_interval():
    table = runs_table({("d", "lm"): [0.8, 0.9, 1.0]})
    row = summarize(table).iloc[0]
    assert row["mean"] == pytest.approx(0.9)
    assert row["std"] == pytest.approx(0.1)
    assert row["ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3))


def test_tie_rule_uses_interval_overlap_and_direction():
    table = runs_table({
        ("clear", "lm"): [0.95, 0.96, 0.97], ("clear", "xgboost"): [0.80, 0.81, 0.82],
        ("close", "lm"): [0.90, 0.95, 1.00], ("close", "xgboost"): [0.91, 0.93, 0.95],
        ("worse", "lm"): [0.50, 0.51, 0.52], ("worse", "xgboost"): [0.70, 0.71, 0.72],
    })
    wtl = win_tie_loss(summarize(table)).iloc[0]
    assert (wtl["win"], wtl["tie"], wtl["loss"]) == (1, 1, 1)
    regression = runs_table({("r", "lm"): [1.0, 1.1, 1.2], ("r", "adam"): [3.0, 3.1, 3.2]},
                            task="regression")
    assert win_tie_loss(summarize(regression)).iloc[0]["win"] == 1  # lower rmse wins


def test_ranks_average_ties_and_failed_runs_are_counted_not_dropped():
    table = runs_table(
        {("d", "lm"): [0.9, 0.9], ("d", "adam"): [0.9, 0.9], ("d", "xgboost"): [0.5, 0.6]},
        failed=[("d", "lm")],
    )
    result = compare_methods(table)
    ranks = result.summary.set_index("method")["rank"]
    assert ranks["lm"] == ranks["adam"] == 1.5 and ranks["xgboost"] == 3
    lm = result.summary.set_index("method").loc["lm"]
    assert lm["n"] == 2 and lm["n_failed"] == 1
    assert "1 failed" in result.to_markdown()


def test_single_seed_comparisons_are_ties():
    table = runs_table({("d", "lm"): [0.99], ("d", "adam"): [0.5]})
    assert win_tie_loss(summarize(table)).iloc[0]["tie"] == 1
