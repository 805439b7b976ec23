"""The scale-free comparison and per-dataset tests of ``lmbench.reports.statistics``, against
values computed by hand (log ratios, extra error, improvability, win/tie/loss counts) and an
independent resampling of the bootstrap."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmbench.reports.statistics import (
    ERROR_FLOOR,
    bootstrap_median_interval,
    dataset_outcome_counts,
    error_of,
    extra_error,
    improvability,
    log_error_ratios,
    one_error_points,
    paired_outcome,
)


def test_error_is_one_minus_a_bounded_score_and_the_rmse_itself():
    assert error_of(0.9, higher_is_better=True) == pytest.approx(0.1)
    assert error_of(3.5, higher_is_better=False) == 3.5


def test_log_ratios_by_hand_with_the_floor_and_missing_cells():
    errors = pd.DataFrame({"lm": [0.1, 0.0, 0.2], "xgboost": [0.2, 0.01, math.nan]},
                          index=["a", "b", "c"])
    ratios = log_error_ratios(errors, "lm")
    assert list(ratios.columns) == ["xgboost"]
    assert ratios.at["a", "xgboost"] == pytest.approx(math.log(2.0))
    assert ratios.at["b", "xgboost"] == pytest.approx(math.log(0.01 / ERROR_FLOOR))
    assert math.isnan(ratios.at["c", "xgboost"])
    with pytest.raises(ValueError, match="reference method 'adam'"):
        log_error_ratios(errors, "adam")


def test_extra_error_is_exp_of_the_median_log_ratio_minus_one():
    ratios = pd.DataFrame({"adam": [math.log(2), math.log(2), math.log(4), math.log(0.5)]})
    (result,) = extra_error(ratios)
    assert result.n == 4
    assert result.median_log_ratio == pytest.approx(math.log(2))  # median of the middle two
    assert result.extra == pytest.approx(1.0)  # twice LM's error: +100%
    assert result.low <= result.median_log_ratio <= result.high
    assert result.extra_low == pytest.approx(math.expm1(result.low))


def test_bootstrap_interval_contains_the_median_and_matches_a_resampling_by_hand():
    values = [0.3, -0.1, 0.2, 0.5, 0.0, 0.25, 0.1]
    low, high = bootstrap_median_interval(values, n_resamples=4000, seed=3)
    assert low <= float(np.median(values)) <= high
    rng = np.random.default_rng(3)
    medians = [float(np.median(rng.choice(values, len(values)))) for _ in range(4000)]
    assert (low, high) == pytest.approx((np.quantile(medians, 0.025),
                                         np.quantile(medians, 0.975)), abs=0.051)
    assert bootstrap_median_interval(values, seed=1) == bootstrap_median_interval(values, seed=1)
    assert bootstrap_median_interval([0.4] * 5) == (0.4, 0.4)
    assert all(math.isnan(v) for v in bootstrap_median_interval([]))


def test_improvability_by_hand():
    errors = pd.DataFrame({"lm": [0.1, 0.0, 0.2], "xgboost": [0.05, 0.1, math.nan],
                           "adam": [0.2, 0.1, 0.4]}, index=["a", "b", "c"])
    gaps = improvability(errors)
    assert gaps.loc["a"].to_dict() == pytest.approx({"lm": 0.5, "xgboost": 0.0, "adam": 0.75})
    assert gaps.loc["b"].to_dict() == pytest.approx({"lm": 0.0, "xgboost": 1.0, "adam": 1.0})
    assert gaps.at["c", "lm"] == 0.0 and gaps.at["c", "adam"] == pytest.approx(0.5)
    assert math.isnan(gaps.at["c", "xgboost"])


def test_per_dataset_t_test_needs_five_seeds_and_matches_scipy():
    mine = pd.Series([0.90, 0.91, 0.93, 0.92, 0.95])
    theirs = pd.Series([0.88, 0.90, 0.90, 0.91, 0.93])
    p = stats.ttest_rel(mine, theirs).pvalue
    assert p < 0.05
    assert paired_outcome(mine, theirs, "t") == "win"
    assert paired_outcome(theirs, mine, "t") == "loss"
    assert paired_outcome(mine, theirs) == "n too small"  # Wilcoxon: 5 seeds never reach 0.05
    assert paired_outcome(mine[:4], theirs[:4], "t") == "n too small"
    assert paired_outcome(mine, mine.copy(), "t") == "tie"
    noisy = pd.Series([0.95, 0.85, 0.93, 0.86, 0.92])
    assert stats.ttest_rel(noisy, theirs).pvalue >= 0.05
    assert paired_outcome(noisy, theirs, "t") == "tie"
    with pytest.raises(ValueError, match="test must be one of"):
        paired_outcome(mine, theirs, "sign")


def test_win_tie_loss_counts_per_pair_by_hand():
    seeds = range(5)
    rows = {("d1", s): {"lm": 0.9 + 0.01 * s, "adam": 0.8 + 0.01 * s + 0.001 * (s % 2)}
            for s in seeds}  # lm always ~0.1 better: a win
    rows |= {("d2", s): {"lm": 0.5, "adam": 0.5} for s in seeds}  # equal: a tie
    rows |= {("d3", s): {"lm": 0.5, "adam": 0.6 + 0.001 * s} for s in range(3)}  # 3 seeds
    wide = pd.DataFrame.from_dict(rows, orient="index")
    wide.index = pd.MultiIndex.from_tuples(wide.index)
    counts = dataset_outcome_counts(wide, ["lm", "adam"]).set_index(["method", "versus"])
    assert counts.loc[("lm", "adam")].to_dict() == {"win": 1, "tie": 1, "loss": 0,
                                                    "n too small": 1}
    assert counts.loc[("adam", "lm")].to_dict() == {"win": 0, "tie": 1, "loss": 1,
                                                    "n too small": 1}


def test_one_error_moves_an_accuracy_by_100_over_n_points():
    assert one_error_points(30) == pytest.approx(100 / 30)
    assert one_error_points(1000) == pytest.approx(0.1)
    assert math.isnan(one_error_points(math.nan))
