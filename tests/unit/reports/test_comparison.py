"""Comparison statistics on hand-made run tables: intervals, paired win rule, ranks, failed runs."""

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


def test_wins_need_a_paired_test_over_enough_seeds_and_respect_direction():
    seeds = 8
    table = runs_table({
        ("clear", "lm"): [0.95 + 0.001 * s for s in range(seeds)],
        ("clear", "xgboost"): [0.80 + 0.002 * s for s in range(seeds)],
        ("equal", "lm"): [0.9] * seeds, ("equal", "xgboost"): [0.9] * seeds,
        ("worse", "lm"): [0.50 + 0.001 * s for s in range(seeds)],
        ("worse", "xgboost"): [0.70 + 0.003 * s for s in range(seeds)],
        ("few", "lm"): [0.99, 0.99, 0.99], ("few", "xgboost"): [0.5, 0.5, 0.5],
    })
    wtl = win_tie_loss(table).iloc[0]
    assert (wtl["win"], wtl["tie"], wtl["loss"], wtl["n too small"]) == (1, 1, 1, 1)
    regression = runs_table({("r", "lm"): [1.0 + 0.1 * s for s in range(seeds)],
                             ("r", "adam"): [3.0 + 0.2 * s for s in range(seeds)]},
                            task="regression")
    assert win_tie_loss(regression).iloc[0]["win"] == 1  # lower rmse wins


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


def test_single_seed_comparisons_are_not_called():
    table = runs_table({("d", "lm"): [0.99], ("d", "adam"): [0.5]})
    counts = win_tie_loss(table).iloc[0]
    assert counts["n too small"] == 1 and counts["win"] == 0


def test_compare_table_lists_a_size_per_hidden_width_instead_of_their_mean():
    runs = runs_table({("d", "lm"): [0.9, 0.8]})
    runs["params.model.hidden"] = ["[8]", "[16]"]
    runs["n_parameters"] = [266.0, 530.0]
    table = compare_methods(runs).to_markdown()
    assert "| 266 (8) / 530 (16) |" in table and "398" not in table


def test_compare_table_of_one_method_has_no_ranks_and_no_empty_win_tie_loss():
    table = compare_methods(runs_table({("d", "lm"): [0.9, 0.8]})).to_markdown()
    assert "One method (`lm`) in these runs" in table
    assert "rank" not in table.split("One method")[0] and "| versus |" not in table


def test_compare_table_without_the_reference_method_says_why_there_is_no_win_tie_loss():
    runs = runs_table({("d", "xgboost"): [0.9, 0.8], ("d", "adam"): [0.7, 0.6]})
    table = compare_methods(runs).to_markdown()
    assert "mean rank" in table and "| versus |" not in table
    assert "these runs hold no `lm`" in table
