"""The statistics every report section uses: ranks, Friedman/Nemenyi, paired signed-rank tests
with Holm's correction, and win rates (Demšar 2006; TabArena).

Paired differences are oriented so that a positive difference favours the first method.
A difference within ``TIE_TOL`` is a tie. The two-sided Wilcoxon signed-rank test (scipy,
zeros dropped) is run only with at least ``MIN_PAIRS`` non-tied pairs: with fewer, no exact
two-sided p can fall below ``ALPHA`` (p >= 2 / 2**n), and the p-value is NaN (not tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05
MIN_PAIRS = 6
TIE_TOL = 1e-9


def rank_scores(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Rank 1 = best, ties averaged, NaN ranked last."""
    return values.rank(ascending=not higher_is_better, method="average", na_option="bottom")


def average_ranks(matrix: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Per row (dataset) of oriented scores (higher = better), the methods' ranks, and the mean
    rank per method."""
    ranks = matrix.apply(rank_scores, axis=1)
    return ranks, ranks.mean(axis=0)


def critical_difference(k: int, n_datasets: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of mean ranks, ``q_α √(k(k+1)/(6N))`` with ``q_α`` the
    studentised range quantile / √2, for ``k`` methods on ``n_datasets``."""
    if k < 2 or n_datasets < 1:
        return math.nan
    q_alpha = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q_alpha * math.sqrt(k * (k + 1) / (6.0 * n_datasets))


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over complete datasets, with the Nemenyi post-hoc."""

    k: int
    n_datasets: int
    statistic: float
    p_value: float
    cd: float
    mean_ranks: pd.Series
    nemenyi: pd.DataFrame | None
    reason: str = ""

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p_value)


def friedman(matrix: pd.DataFrame, alpha: float = ALPHA) -> FriedmanResult:
    """Friedman χ² test (scipy) and Nemenyi p-values (scikit-posthocs) on ``matrix``
    (datasets × methods of oriented scores, no missing cells)."""
    k, n = matrix.shape[1], matrix.shape[0]
    _, mean_ranks = average_ranks(matrix) if n else (None, pd.Series(dtype=float))
    cd = critical_difference(k, n, alpha)
    if k < 3:
        return FriedmanResult(k, n, math.nan, math.nan, cd, mean_ranks, None,
                              f"the Friedman test needs at least 3 methods (here {k})")
    if n < 2:
        return FriedmanResult(k, n, math.nan, math.nan, cd, mean_ranks, None,
                              f"the Friedman test needs at least 2 datasets on which every "
                              f"method has a score (here {n})")
    if np.allclose(matrix.to_numpy(), matrix.to_numpy()[:, :1]):
        return FriedmanResult(k, n, 0.0, 1.0, cd, mean_ranks, None)
    result = stats.friedmanchisquare(*[matrix[c].to_numpy() for c in matrix.columns])
    import scikit_posthocs

    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(matrix.to_numpy())
    nemenyi.index = nemenyi.columns = list(matrix.columns)
    return FriedmanResult(k, n, float(result.statistic), float(result.pvalue), cd, mean_ranks,
                          nemenyi)


@dataclass(frozen=True)
class SignedRank:
    """Counts over paired differences and their Wilcoxon signed-rank p (NaN: not tested)."""

    n: int
    wins: int
    ties: int
    losses: int
    p_value: float

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p_value)


def signed_rank(diff: np.ndarray, higher_is_better: bool = True) -> SignedRank:
    """Wins/ties/losses of the first method (``diff`` = first − second; with
    ``higher_is_better`` False a negative difference is a win) and the two-sided Wilcoxon
    signed-rank p on the non-tied differences (NaN with fewer than ``MIN_PAIRS``)."""
    diff = np.asarray(diff, dtype=float)
    better = diff if higher_is_better else -diff
    wins, losses = int((better > TIE_TOL).sum()), int((better < -TIE_TOL).sum())
    nonzero = diff[np.abs(diff) > TIE_TOL]
    p = math.nan
    if len(nonzero) >= MIN_PAIRS:
        p = float(stats.wilcoxon(nonzero, alternative="two-sided").pvalue)
    return SignedRank(len(diff), wins, len(diff) - wins - losses, losses, p)


def paired_outcome(mine: pd.Series, theirs: pd.Series) -> str:
    """'win', 'tie', 'loss' or 'n too small' of ``mine`` against ``theirs`` (oriented scores
    per seed, higher = better) on the seeds both have: a win or loss needs a Wilcoxon p <
    ``ALPHA`` (unadjusted); all pairs tied is a tie."""
    diff = (mine - theirs).dropna().to_numpy(dtype=float)
    test = signed_rank(diff)
    if test.wins + test.losses == 0:
        return "tie" if test.n else "n too small"
    if not test.tested:
        return "n too small"
    if test.p_value >= ALPHA:
        return "tie"
    return "win" if float(np.median(diff[np.abs(diff) > TIE_TOL])) > 0 else "loss"


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (statsmodels; capped at 1, monotone in p); NaN entries
    stay NaN and do not count as tests."""
    values = np.asarray(pvalues, dtype=float)
    adjusted = np.full(len(values), math.nan)
    tested = ~np.isnan(values)
    if tested.any():
        adjusted[tested] = multipletests(values[tested], method="holm")[1]
    return [float(p) for p in adjusted]


def win_rate_matrix(wide: pd.DataFrame, methods: Sequence[str]
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Win rate (ties half), tie counts and pair counts of each row method over each column
    method, over the rows of ``wide`` (oriented scores, one column per method) where both have
    a score."""
    methods = list(methods)
    rate = pd.DataFrame(np.nan, index=methods, columns=methods)
    ties = pd.DataFrame(0, index=methods, columns=methods)
    pairs = pd.DataFrame(0, index=methods, columns=methods)
    for a in methods:
        for b in methods:
            if a == b:
                continue
            both = wide[[a, b]].dropna()
            diff = (both[a] - both[b]).to_numpy()
            n_ties = int((np.abs(diff) <= TIE_TOL).sum())
            wins = int((diff > TIE_TOL).sum())
            pairs.loc[a, b], ties.loc[a, b] = len(diff), n_ties
            if len(diff):
                rate.loc[a, b] = (wins + 0.5 * n_ties) / len(diff)
    return rate, ties, pairs
