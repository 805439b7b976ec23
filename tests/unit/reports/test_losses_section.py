"""The loss-comparison section's statistics on hand-made run tables (no store)."""

import math

import pandas as pd
import pytest
from scipy import stats

from lmbench.reports.losses import (
    loss_table,
    losses_section,
    paired,
    paired_comparisons,
    summarize_losses,
)
from lmbench.reports.statistics import holm


def run(run_id, dataset, loss, seed, acc, log_loss, status="FINISHED", method="lm",
        task="multiclass", epochs=10.0, time=1.0):
    return {"run_id": run_id, "experiment": "e", "status": status, "method": method,
            "task": task, "dataset": dataset, "seed": seed, "tags.loss": loss,
            "metrics.test_accuracy": acc, "metrics.test_log_loss": log_loss,
            "metrics.epochs": epochs, "train_time_s": time}


def synthetic(n_datasets=2, n_seeds=4):
    """cross_entropy beats mse by 0.01 * (1 + i) accuracy on every pair but the first (tie)."""
    rows, i = [], 0
    for d in range(n_datasets):
        for s in range(n_seeds):
            base = 0.8 + 0.01 * s
            gain = 0.0 if i == 0 else 0.01 * (1 + i)
            rows.append(run(f"m{d}{s}", f"d{d}", "mse", s, base, 0.5, epochs=20.0, time=2.0))
            rows.append(run(f"c{d}{s}", f"d{d}", "cross_entropy", s, base + gain, 0.5 - gain,
                            epochs=10.0, time=1.0))
            i += 1
    return pd.DataFrame(rows)


def test_paired_differences_counts_and_wilcoxon():
    table = loss_table(synthetic())
    acc = paired(table, "cross_entropy", "mse", "accuracy")
    gains = [0.01 * (1 + i) for i in range(1, 8)]
    assert acc.n == 8 and (acc.wins, acc.ties, acc.losses) == (7, 1, 0)
    assert acc.mean_diff == pytest.approx(sum(gains) / 8)
    # the tie is dropped; 7 positive differences: exact two-sided p = 2 / 2**7
    assert acc.p_value == pytest.approx(2 / 2**7)
    assert acc.p_value == pytest.approx(stats.wilcoxon(gains).pvalue)
    # log-loss: lower is better, so the negative difference is a win of cross_entropy
    ll = paired(table, "cross_entropy", "mse", "log_loss")
    assert ll.mean_diff == pytest.approx(-sum(gains) / 8)
    assert (ll.wins, ll.ties, ll.losses) == (7, 1, 0)
    flipped = paired(table, "mse", "cross_entropy", "accuracy")
    assert (flipped.wins, flipped.losses) == (0, 7) and flipped.mean_diff < 0


def test_too_few_pairs_are_not_tested_and_the_section_says_so():
    table = loss_table(synthetic(n_datasets=1, n_seeds=3))
    result = paired(table, "cross_entropy", "mse", "accuracy")
    assert result.n == 3 and math.isnan(result.p_value) and not result.significant
    section = losses_section(synthetic(n_datasets=1, n_seeds=3))
    text = "\n".join(b for b in section.blocks if isinstance(b, str))
    assert "n is too small to call anything" in text
    assert "significant at" not in text.replace("not significant", "")


def test_failed_runs_are_counted_not_averaged_and_break_their_pair():
    runs = synthetic()
    runs.loc[runs["run_id"] == "c01", ["status", "metrics.test_accuracy"]] = ["FAILED", 0.0]
    table = loss_table(runs)
    summary = summarize_losses(table).set_index(["dataset", "loss"])
    row = summary.loc[("d0", "cross_entropy")]
    assert (row["n"], row["n_failed"]) == (3, 1)
    expected = [0.80, 0.82 + 0.03, 0.83 + 0.04]
    assert row["accuracy_mean"] == pytest.approx(sum(expected) / 3)
    assert row["accuracy_std"] == pytest.approx(pd.Series(expected).std())
    assert summary.loc[("d0", "mse"), "epochs_mean"] == 20.0
    assert paired(table, "cross_entropy", "mse", "accuracy").n == 7
    section = losses_section(runs)
    assert ("losses", "`d0` loss `cross_entropy`: 1 runs not finished") in section.missing


def test_stop_reasons_are_counted_per_dataset_and_loss():
    runs = synthetic()
    runs["tags.stop_reason"] = "validation_patience"
    runs.loc[runs["run_id"].isin(["c00", "c01"]), "tags.stop_reason"] = "mu_max"
    runs.loc[runs["run_id"] == "c02", "tags.stop_reason"] = "min_error"
    summary = summarize_losses(loss_table(runs)).set_index(["dataset", "loss"])
    assert summary.loc[("d0", "cross_entropy"), "stops"] == "2 μ_max, 1 min_error, 1 patience"
    assert summary.loc[("d0", "mse"), "stops"] == "4 patience"
    md = losses_section(runs).tables[1].to_markdown()
    assert "| cross_entropy | 8 |" in md and "| 5 patience, 2 μ_max, 1 min_error |" in md


def test_holm_adjustment():
    adjusted = holm([0.01, math.nan, 0.04, 0.03])
    assert adjusted[0] == pytest.approx(0.03)
    assert math.isnan(adjusted[1])
    assert adjusted[3] == pytest.approx(0.06) and adjusted[2] == pytest.approx(0.06)


def test_section_only_with_two_losses_and_only_lm_classification_runs():
    runs = synthetic()
    assert losses_section(runs[runs["tags.loss"] == "mse"]) is None
    extra = pd.DataFrame([run("x", "d0", "mse", 0, 0.1, 9.0, method="adam"),
                          run("y", "r", "mse", 0, 0.1, 9.0, task="regression")])
    assert set(loss_table(pd.concat([runs, extra]))["run_id"]) == set(runs["run_id"])
    comparisons = paired_comparisons(loss_table(runs))
    assert [(c.quantity, c.a, c.b) for c in comparisons] == [
        ("accuracy", "mse", "cross_entropy"), ("log_loss", "mse", "cross_entropy")]
    assert all(c.significant for c in comparisons)  # Holm over 2 tests: 2 * 0.0156 < 0.05
    section = losses_section(runs)
    md = section.tables[0].to_markdown()
    # d0 cross_entropy accuracies 0.80, 0.83, 0.85, 0.87; mse bold nowhere
    assert "| d0 | cross_entropy | 4 | **0.8375 ± 0.03** | **0.477 ± 0.017** |" in md
    assert "| d0 | mse | 4 | 0.815 ± 0.013 | 0.5 ± 0 | 20 ± 0 | 2 ± 0 |" in md
    summary = next(b for b in section.blocks if isinstance(b, str) and b.startswith("**Summ"))
    assert "Best mean test accuracy: `cross_entropy`" in summary
    assert "W/T/L 7/1/0 over 8 pairs" in summary
