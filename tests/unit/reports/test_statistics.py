"""The shared statistics module: Holm via statsmodels, signed-rank counts, ranks, win rates."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmbench.reports.statistics import (
    MIN_PAIRS,
    holm,
    rank_scores,
    signed_rank,
    win_rate_matrix,
)


def holm_by_hand(pvalues):
    """Holm's step-down adjustment written out (the reports' former implementation)."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def test_holm_matches_the_step_down_rule_exactly_with_nan_left_out():
    rng = np.random.default_rng(0)
    cases = [[], [math.nan], [0.5], [0.3, 0.3, 0.3], [1.0, 1.0], [0.0, 0.0, 0.5],
             [0.02, 0.02, 0.01, 0.9, math.nan]]
    cases += [[float(p) if rng.random() > 0.2 else math.nan for p in rng.random(n) ** 3]
              for n in range(1, 30)]
    for pvalues in cases:
        adjusted = holm(pvalues)
        expected = holm_by_hand(pvalues)
        assert [math.isnan(p) for p in adjusted] == [math.isnan(p) for p in pvalues]
        assert [p for p in adjusted if not math.isnan(p)] == [
            p for p in expected if not math.isnan(p)]


def test_holm_is_capped_at_one_and_monotone_in_p():
    pvalues = [0.6, 0.9, 0.2, 0.01]
    adjusted = holm(pvalues)
    assert max(adjusted) == 1.0
    order = np.argsort(pvalues)
    assert list(np.array(adjusted)[order]) == sorted(adjusted)


def test_signed_rank_counts_and_tests_only_with_enough_pairs():
    diff = np.array([0.1, 0.2, -0.05, 0.0, 0.3, 0.4, 0.25])
    result = signed_rank(diff)
    assert (result.n, result.wins, result.ties, result.losses) == (7, 5, 1, 1)
    assert result.p_value == pytest.approx(stats.wilcoxon(diff[diff != 0]).pvalue)
    flipped = signed_rank(diff, higher_is_better=False)
    assert (flipped.wins, flipped.losses, flipped.p_value) == (1, 5, result.p_value)
    few = signed_rank(diff[: MIN_PAIRS - 1])
    assert not few.tested and few.n == MIN_PAIRS - 1


def test_ranks_average_ties_and_put_missing_last():
    values = pd.Series([0.9, 0.9, math.nan, 0.5], index=list("abcd"))
    assert rank_scores(values).to_dict() == {"a": 1.5, "b": 1.5, "c": 4.0, "d": 3.0}
    assert rank_scores(values, higher_is_better=False).to_dict() == {
        "a": 2.5, "b": 2.5, "c": 4.0, "d": 1.0}


def test_win_rate_counts_ties_half_over_shared_rows():
    wide = pd.DataFrame({"a": [1.0, 2.0, 3.0, math.nan], "b": [0.0, 2.0, 4.0, 1.0]})
    rate, ties, pairs = win_rate_matrix(wide, ["a", "b"])
    assert rate.loc["a", "b"] == pytest.approx((1 + 0.5) / 3)
    assert rate.loc["b", "a"] == pytest.approx((1 + 0.5) / 3)
    assert ties.loc["a", "b"] == 1 and pairs.loc["a", "b"] == 3
    assert math.isnan(rate.loc["a", "a"])
