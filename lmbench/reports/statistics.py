"""The statistics every report section uses: ranks, Friedman/Nemenyi, paired signed-rank tests
with Holm's correction, and win rates (Demšar 2006; TabArena).

Paired differences are oriented so that a positive difference favours the first method.
A difference within ``TIE_TOL`` is a tie. The two-sided Wilcoxon signed-rank test (scipy,
zeros dropped) is run only with at least ``MIN_PAIRS`` non-tied pairs: with fewer, no exact
two-sided p can fall below ``ALPHA`` (p >= 2 / 2**n), and the p-value is NaN (not tested).
Per-dataset tests over seeds can also use the paired t-test (``MIN_SEEDS_T`` seeds).

Scale-free comparison (beside the normalised score): per dataset the log ratio of each
method's error to the reference's (error = 1 − AUC or accuracy, or the RMSE), the median over
datasets with a percentile bootstrap interval (*extra error* = exp(median) − 1), and
TabArena's improvability 1 − best error / error.
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
#: Seeds a per-dataset paired t-test needs (the Wilcoxon test needs ``MIN_PAIRS``).
MIN_SEEDS_T = 5
PAIRED_TESTS = ("wilcoxon", "t")


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


def paired_outcome(mine: pd.Series, theirs: pd.Series, test: str = "wilcoxon") -> str:
    """'win', 'tie', 'loss' or 'n too small' of ``mine`` against ``theirs`` (oriented scores
    per seed, higher = better) on the seeds both have: a win or loss needs a two-sided p <
    ``ALPHA`` (unadjusted); all pairs tied is a tie.

    ``test``: ``wilcoxon`` (signed-rank; needs ``MIN_PAIRS`` non-tied seeds, since with fewer no
    exact p reaches ``ALPHA``) or ``t`` (paired t-test over seeds; needs ``MIN_SEEDS_T``
    seeds: the test that can decide a dataset with 5 seeds)."""
    if test not in PAIRED_TESTS:
        raise ValueError(f"test must be one of {PAIRED_TESTS}, got {test!r}")
    diff = (mine - theirs).dropna().to_numpy(dtype=float)
    if test == "t":
        return _t_outcome(diff)
    ranked = signed_rank(diff)
    if ranked.wins + ranked.losses == 0:
        return "tie" if ranked.n else "n too small"
    if not ranked.tested:
        return "n too small"
    if ranked.p_value >= ALPHA:
        return "tie"
    return "win" if float(np.median(diff[np.abs(diff) > TIE_TOL])) > 0 else "loss"


def _t_outcome(diff: np.ndarray) -> str:
    """``paired_outcome`` with the paired t-test over seeds."""
    moved = np.abs(diff) > TIE_TOL
    if not moved.any():
        return "tie" if len(diff) else "n too small"
    if len(diff) < MIN_SEEDS_T:
        return "n too small"
    if np.ptp(diff) <= TIE_TOL:  # the same difference on every seed: t is infinite, p = 0
        return "win" if float(diff[0]) > 0 else "loss"
    p = float(stats.ttest_1samp(diff, 0.0).pvalue)
    if math.isnan(p) or p >= ALPHA:
        return "tie"
    return "win" if float(np.mean(diff)) > 0 else "loss"


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


# ---------------------------------------------------------------------- scale-free comparison
#: Errors below this count as this in a log ratio (a perfect score has no finite ratio).
ERROR_FLOOR = 1e-3
#: Bootstrap resamples of the median log ratio, and the interval's coverage.
N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
#: A test set on which one row moves a classification score by more than this many points
#: (of 100) is flagged as small.
ONE_ERROR_POINTS = 1.0


def error_of(value: float, higher_is_better: bool) -> float:
    """The error behind a primary score: ``1 − score`` for a score in [0, 1] where higher is
    better (AUC, accuracy), the value itself where lower is better (RMSE)."""
    return 1.0 - float(value) if higher_is_better else float(value)


def log_error_ratios(errors: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Datasets × (methods other than ``reference``) of ``log(error_method / error_reference)``
    (positive: the method's error is larger than the reference's). Errors are floored at
    ``ERROR_FLOOR``; NaN where either error is missing."""
    if reference not in errors.columns:
        raise ValueError(f"reference method {reference!r} has no errors; methods: "
                         f"{list(errors.columns)}")
    floored = errors.astype(float).clip(lower=ERROR_FLOOR)
    others = [c for c in errors.columns if c != reference]
    return np.log(floored[others].div(floored[reference], axis=0))


def bootstrap_median_interval(values: Sequence[float], n_resamples: int = N_BOOTSTRAP,
                              confidence: float = CONFIDENCE, seed: int = 0
                              ) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``values`` (resampled with replacement,
    ``n_resamples`` times, a fixed seed so a report is reproducible); NaN without values."""
    data = np.asarray([v for v in values if not math.isnan(float(v))], dtype=float)
    if len(data) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(0, len(data), (n_resamples, len(data)))], axis=1)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(medians, tail)), float(np.quantile(medians, 1.0 - tail))


@dataclass(frozen=True)
class ExtraError:
    """One method against the reference over datasets: the median log error ratio, its
    bootstrap interval, and both as *extra error* ``exp(·) − 1`` (0.1: 10% more error)."""

    method: str
    n: int
    median_log_ratio: float
    low: float
    high: float

    @property
    def extra(self) -> float:
        return math.expm1(self.median_log_ratio)

    @property
    def extra_low(self) -> float:
        return math.expm1(self.low)

    @property
    def extra_high(self) -> float:
        return math.expm1(self.high)


def extra_error(ratios: pd.DataFrame) -> list[ExtraError]:
    """Per column of ``log_error_ratios``: median over datasets and its bootstrap interval."""
    out = []
    for method in ratios.columns:
        values = ratios[method].dropna().to_numpy(dtype=float)
        low, high = bootstrap_median_interval(values)
        out.append(ExtraError(str(method), len(values),
                              float(np.median(values)) if len(values) else math.nan, low, high))
    return out


def improvability(errors: pd.DataFrame) -> pd.DataFrame:
    """Per dataset (row) and method (column), TabArena's improvability ``1 − best / error``:
    the share of a method's error the best method on that dataset avoids (0 for the best;
    0 when the error is 0; NaN where the method has no error)."""
    values = errors.astype(float)
    best = values.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - values.rtruediv(best, axis=0)
    return out.where(values > 0, 0.0).where(values.notna())


def dataset_outcome_counts(per_seed: pd.DataFrame, methods: Sequence[str], test: str = "t"
                           ) -> pd.DataFrame:
    """For every ordered pair of ``methods``, over datasets: how many the row method wins,
    ties and loses at p < ``ALPHA`` (``paired_outcome`` over seeds per dataset with ``test``;
    the t-test by default, since 5 seeds cannot give a Wilcoxon p below 0.05), and on how many
    no test can decide ('n too small'). ``per_seed``: oriented scores (higher = better)
    indexed by (dataset, seed), one column per method."""
    rows = []
    datasets = per_seed.index.get_level_values(0).unique()
    for a in methods:
        for b in methods:
            if a == b:
                continue
            counts = {"win": 0, "tie": 0, "loss": 0, "n too small": 0}
            for dataset in datasets:
                block = per_seed.loc[dataset, [a, b]].dropna()
                if block.empty:
                    continue
                counts[paired_outcome(block[a], block[b], test)] += 1
            rows.append({"method": a, "versus": b, **counts})
    return pd.DataFrame(rows, columns=["method", "versus", "win", "tie", "loss", "n too small"])


def one_error_points(n_test_rows: float) -> float:
    """Points (of 100) by which one misclassified test row moves an accuracy-like score:
    ``100 / n`` (NaN without a row count)."""
    if n_test_rows is None or math.isnan(float(n_test_rows)) or n_test_rows <= 0:
        return math.nan
    return 100.0 / float(n_test_rows)
