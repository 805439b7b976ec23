"""Study statistics on hand-made score tables, checked against independent references:
scipy's Friedman test, ranks and win rates counted by hand, Demšar's critical-difference
table, the dedupe rule and the 'n too small' wording."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmbench.reports.comparison import win_tie_loss
from lmbench.reports.dedupe import deduplicate
from lmbench.reports.statistics import average_ranks, critical_difference, friedman, paired_outcome
from lmbench.reports.study import (
    normalised_scores,
    paired_wilcoxon,
    score_table,
    seed_mean_matrix,
    win_rates,
)
from lmbench.reports.study_section import conclusion, study_section, tuned_default_table


def runs_from(values: dict[tuple[str, str], list[float]], higher=True, **extra) -> pd.DataFrame:
    """One FINISHED run per (dataset, method, seed) with the given primary values."""
    rows = []
    for (dataset, method), scores in values.items():
        for seed, score in enumerate(scores):
            rows.append({"run_id": f"{dataset}-{method}-{seed}", "status": "FINISHED",
                         "method": method, "dataset": dataset, "seed": seed,
                         "primary_metric": "accuracy" if higher else "rmse",
                         "higher_is_better": higher, "primary_value": score,
                         "task": "multiclass" if higher else "regression",
                         "n_parameters": 10.0, "train_time_s": 1.0 + seed, **extra})
    return pd.DataFrame(rows)


# three methods on four datasets, one seed; higher is better
TABLE = {("d1", "lm"): [0.9], ("d1", "xgboost"): [0.8], ("d1", "adam"): [0.7],
         ("d2", "lm"): [0.6], ("d2", "xgboost"): [0.6], ("d2", "adam"): [0.5],
         ("d3", "lm"): [0.7], ("d3", "xgboost"): [0.9], ("d3", "adam"): [0.8],
         ("d4", "lm"): [0.95], ("d4", "xgboost"): [0.85], ("d4", "adam"): [0.75]}


def test_ranks_by_hand_with_ties_averaged():
    ranks, mean = average_ranks(seed_mean_matrix(score_table(runs_from(TABLE))))
    assert ranks.loc["d2"].to_dict() == {"lm": 1.5, "xgboost": 1.5, "adam": 3.0}
    assert ranks.loc["d3"].to_dict() == {"lm": 3.0, "xgboost": 1.0, "adam": 2.0}
    assert mean.to_dict() == pytest.approx({"lm": (1 + 1.5 + 3 + 1) / 4,
                                            "xgboost": (2 + 1.5 + 1 + 2) / 4,
                                            "adam": (3 + 3 + 2 + 3) / 4})


def test_lower_is_better_ranks_the_smallest_first():
    runs = runs_from({("r", "lm"): [1.0], ("r", "xgboost"): [2.0]}, higher=False)
    ranks, _ = average_ranks(seed_mean_matrix(score_table(runs)))
    assert ranks.loc["r"].to_dict() == {"lm": 1.0, "xgboost": 2.0}


def test_friedman_matches_scipy_and_cd_matches_demsar_table():
    matrix = seed_mean_matrix(score_table(runs_from(TABLE)))
    result = friedman(matrix)
    reference = stats.friedmanchisquare(*[matrix[c] for c in matrix.columns])
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.statistic == pytest.approx(reference.statistic)
    # Demšar 2006, Table 5: q_0.05 = 2.343 (k = 3), 2.728 (k = 5)
    assert critical_difference(3, 4) == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 4)),
                                                      abs=2e-3)
    assert critical_difference(5, 10) == pytest.approx(2.728 * math.sqrt(5 * 6 / 60), abs=2e-3)
    assert result.nemenyi.shape == (3, 3)


def test_friedman_needs_three_methods():
    two = {k: v for k, v in TABLE.items() if k[1] != "adam"}
    result = friedman(seed_mean_matrix(score_table(runs_from(two))))
    assert not result.tested and "at least 3 methods" in result.reason


def test_win_rate_counts_ties_half_and_shows_them():
    runs = runs_from({("d", "lm"): [0.9, 0.5, 0.7, 0.6], ("d", "xgboost"): [0.8, 0.5, 0.9, 0.6]})
    rate, ties, pairs = win_rates(score_table(runs))
    # lm: win, tie, loss, tie over 4 seeds -> (1 + 0.5 * 2) / 4
    assert rate.loc["lm", "xgboost"] == pytest.approx(0.5)
    assert rate.loc["xgboost", "lm"] == pytest.approx(0.5)
    assert ties.loc["lm", "xgboost"] == 2 and pairs.loc["lm", "xgboost"] == 4


def test_normalised_score_formula():
    runs = runs_from({("d", "lm"): [0.9, 0.5], ("d", "xgboost"): [0.7, 0.5],
                      ("d", "adam"): [0.5, 0.5]})
    table = normalised_scores(score_table(runs)).set_index(["seed", "method"])["normalised"]
    assert table[(0, "lm")] == 1.0 and table[(0, "adam")] == 0.0
    assert table[(0, "xgboost")] == pytest.approx(0.5)
    assert (table.loc[1] == 1.0).all()  # all equal: every method is best


def test_equal_scores_are_ties_and_few_seeds_are_not_called():
    same = pd.Series([0.5, 0.6, 0.7])
    assert paired_outcome(same, same.copy()) == "tie"
    assert paired_outcome(same + 0.1, same) == "n too small"  # 3 seeds: no test can say
    many = pd.Series(np.linspace(0.5, 0.9, 8))
    assert paired_outcome(many + 0.1, many) == "win"
    runs = runs_from({("d", "lm"): [0.9, 0.9], ("d", "xgboost"): [0.9, 0.9]})
    counts = win_tie_loss(runs).iloc[0]
    assert (counts["win"], counts["tie"], counts["n too small"]) == (0, 1, 0)


def test_conclusion_says_n_is_too_small_instead_of_calling_a_winner():
    scores = score_table(runs_from(TABLE))
    comparisons = paired_wilcoxon(normalised_scores(scores), "lm")
    assert [c.other for c in comparisons] == ["xgboost", "adam"]
    assert not any(c.tested for c in comparisons)
    text = conclusion(friedman(seed_mean_matrix(scores)), comparisons, "lm",
                      normalised_scores(scores))
    assert "too few for a Wilcoxon signed-rank test" in text and "no winner is called" in text
    assert "is better" not in text


def test_wilcoxon_over_enough_datasets_matches_scipy_and_names_the_winner():
    values = {}
    for i in range(8):
        values[(f"d{i}", "lm")] = [0.9]
        values[(f"d{i}", "xgboost")] = [0.5 + 0.01 * i]
        values[(f"d{i}", "adam")] = [0.4]
    scores = score_table(runs_from(values))
    normalised = normalised_scores(scores)
    result = paired_wilcoxon(normalised, "lm")[0]
    per = normalised.pivot_table(index="dataset", columns="method", values="normalised")
    assert result.p_value == pytest.approx(stats.wilcoxon(per["lm"] - per["xgboost"]).pvalue)
    text = conclusion(friedman(seed_mean_matrix(scores)), [result], "lm", normalised)
    assert "`lm` is better" in text


def test_dedupe_keeps_latest_finished_per_config_hash():
    runs = pd.DataFrame([
        {"run_id": "a", "status": "FINISHED", "start_time": 1, "tags.config_hash": "h1"},
        {"run_id": "b", "status": "FINISHED", "start_time": 3, "tags.config_hash": "h1"},
        {"run_id": "c", "status": "FAILED", "start_time": 2, "tags.config_hash": "h1"},
        {"run_id": "d", "status": "FINISHED", "start_time": 1, "tags.config_hash": "h2"},
        {"run_id": "e", "status": "FAILED", "start_time": 1, "tags.config_hash": "h3"},
    ]).assign(method="lm", dataset="d", seed=0)
    result = deduplicate(runs)
    assert sorted(result.runs["run_id"]) == ["b", "d", "e"]
    assert (result.dropped_finished, result.dropped_unfinished) == (1, 1)


def test_dedupe_without_hash_uses_method_dataset_seed_and_settings():
    runs = pd.DataFrame([
        {"run_id": "a", "seed": 0, "params.trainer.mu_init": "1", "start_time": 1},
        {"run_id": "b", "seed": 0, "params.trainer.mu_init": "1", "start_time": 2},
        {"run_id": "c", "seed": 0, "params.trainer.mu_init": "10", "start_time": 1},
        {"run_id": "d", "seed": 1, "params.trainer.mu_init": "1", "start_time": 1},
    ]).assign(method="lm", dataset="d", status="FINISHED")
    assert sorted(deduplicate(runs).runs["run_id"]) == ["b", "c", "d"]


def test_tuned_vs_default_improvement_is_signed_by_direction():
    runs = runs_from({("r", "lm"): [1.0, 1.2], ("r", "xgboost"): [2.0, 2.0]}, higher=False)
    runs["metrics.default_test_rmse"] = [1.5, 1.5, 1.8, 1.8]
    table = tuned_default_table(runs).set_index("method")
    assert table.loc["lm", "improvement"] == pytest.approx(1.5 - 1.1)  # lower rmse: better
    assert table.loc["xgboost", "improvement"] == pytest.approx(1.8 - 2.0)
    assert table.loc["lm", "tuned"] == 1.0 and table.loc["xgboost", "tuned"] == 0.0


def test_study_section_only_with_two_methods():
    assert study_section(runs_from({("d", "lm"): [0.9]})) is None
    runs = runs_from(TABLE).assign(code_version="reference")
    runs.loc[runs["run_id"] == "d1-adam-0", "code_version"] = "other"
    section = study_section(runs)
    scores = next(t for t in section.tables if t.name == "study_scores").to_markdown()
    assert "| d1 | accuracy ↑ | **0.9 (1)** | 0.8 (1) | 0.7 (1)† |" in scores
    win = next(t for t in section.tables if t.name == "study_win_rate").to_markdown()
    assert "0.625 (1 tie / 4)" in win  # lm over xgboost: win, tie, loss, win -> 2.5 / 4
    names = [t.name for t in section.tables]
    assert {"study_scores", "study_summary", "study_win_rate", "study_cost"} <= set(names)
    stems = [f.stem for f in section.figures]
    assert "study_cd_diagram" in stems and "study_time_quality" in stems


def test_cost_table_has_one_clearly_named_column_per_size_concept():
    runs = runs_from({("d1", "lm"): [0.9, 0.8], ("d1", "xgboost"): [0.7, 0.6]})
    lm, xgb = runs["method"] == "lm", runs["method"] == "xgboost"
    runs.loc[lm, "n_parameters"] = [457.0, 458.0]
    runs.loc[lm, "metrics.model_size_n_parameters"] = [457.0, 458.0]
    runs.loc[xgb, "n_parameters"] = [594.0, 594.0]
    for count, value in (("n_trees", 110.0), ("n_leaves", 594.0), ("n_internal_nodes", 439.0),
                         ("n_nodes", 1033.0), ("n_leaf_values", 594.0)):
        runs.loc[xgb, f"metrics.model_size_{count}"] = value
    cost = next(t for t in study_section(runs).tables if t.name == "study_cost").to_markdown()
    header = cost.splitlines()[0]
    assert header == ("| method | runs | train s (median) | train s (total) | parameters (median) "
                      "| trees (median) | leaves (median) | internal nodes (median) | trials "
                      "| timed-out trials |")
    assert "model_size" not in cost
    assert "| lm | 2 | 1.5 | 3 | 457.5 | – | – | – |" in cost
    assert "| xgboost | 2 | 1.5 | 3 | 594 | 110 | 594 | 439 |" in cost
