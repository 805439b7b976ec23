"""Study statistics over methods × datasets × seeds (TabArena; Grinsztajn et al. 2022; Demšar 2006).

Input: benchmark runs (one per configuration, see ``lmbench.reports.dedupe``), FINISHED, with a
primary test value. Every quantity is oriented so that *better* is explicit:

* **Per-dataset score**: mean ± sample std over seeds of the primary test metric.
* **Normalised score** (Grinsztajn et al. 2022, TabArena): per dataset and seed, over the
  methods that have a score there, ``(s − worst) / (best − worst)`` with best/worst by the
  metric's direction: 1 = best method of that dataset-seed, 0 = worst; all methods equal: 1.
  Averaged over seeds per dataset, then over datasets (spread: std over datasets).
* **Average rank**: rank per dataset on the seed-mean score (1 = best, ties averaged), over the
  datasets on which every method has a score.
* **Friedman test** on those ranks and **Nemenyi** post-hoc (``scikit-posthocs``); the critical
  difference is ``CD = q_α √(k(k+1)/(6N))``, ``q_α`` the studentised range quantile / √2.
* **Win rate** of row over column: share of the (dataset, seed) pairs where both have a score
  and the row is better; equal scores (within ``TIE_TOL``) count half and are counted apart.
* **Paired Wilcoxon** signed-rank over datasets on the normalised score (commensurable across
  metrics) of the reference method against each other, Holm-adjusted; with fewer than
  ``MIN_PAIRS`` non-tied datasets no two-sided test can reach ``ALPHA`` and none is run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lmbench.reports.losses import ALPHA, MIN_PAIRS, TIE_TOL, holm
from lmbench.reports.method_table import method_order

__all__ = ["ALPHA", "MIN_PAIRS", "TIE_TOL", "FriedmanResult", "PairedResult", "average_ranks",
           "critical_difference", "dataset_scores", "friedman", "normalised_scores",
           "paired_wilcoxon", "score_table", "win_rates"]


def score_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table ``dataset, method, seed, value, metric, higher_is_better`` of the FINISHED
    runs with a primary value (seed NaN becomes -1 so that single runs still pair)."""
    ok = runs[runs["status"].eq("FINISHED") & runs["primary_value"].notna()
              & runs["method"].notna() & runs["dataset"].notna()]
    table = pd.DataFrame({
        "dataset": ok["dataset"].astype(str), "method": ok["method"].astype(str),
        "seed": pd.to_numeric(ok["seed"], errors="coerce").fillna(-1).astype(int),
        "value": ok["primary_value"].astype(float), "metric": ok["primary_metric"],
        "higher_is_better": ok["higher_is_better"].astype(bool),
    })
    return table.sort_values(["dataset", "method", "seed"], kind="stable").reset_index(drop=True)


def _oriented(scores: pd.DataFrame) -> pd.Series:
    """Scores with the sign flipped where lower is better (higher = better everywhere)."""
    return scores["value"].where(scores["higher_is_better"], -scores["value"])


def dataset_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method): metric, direction, n seeds, mean, sample std."""
    grouped = scores.groupby(["dataset", "method"], sort=True)
    out = grouped.agg(metric=("metric", "first"), higher_is_better=("higher_is_better", "first"),
                      n=("value", "size"), mean=("value", "mean"),
                      std=("value", lambda v: float(v.std(ddof=1)) if len(v) > 1 else math.nan))
    return out.reset_index()


def normalised_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, seed, method) the min-max normalised score (see the module docstring);
    dataset-seeds with fewer than two methods are left out."""
    frame = scores.assign(oriented=_oriented(scores))
    rows = []
    for (dataset, seed), block in frame.groupby(["dataset", "seed"], sort=True):
        if block["method"].nunique() < 2:
            continue
        best, worst = block["oriented"].max(), block["oriented"].min()
        span = best - worst
        for _, row in block.iterrows():
            value = 1.0 if span <= TIE_TOL else float((row["oriented"] - worst) / span)
            rows.append({"dataset": dataset, "seed": seed, "method": row["method"],
                         "normalised": value})
    return pd.DataFrame(rows, columns=["dataset", "seed", "method", "normalised"])


def seed_mean_matrix(scores: pd.DataFrame) -> pd.DataFrame:
    """Datasets × methods of the oriented seed-mean score, complete datasets only."""
    wide = scores.assign(oriented=_oriented(scores)).pivot_table(
        index="dataset", columns="method", values="oriented", aggfunc="mean")
    wide = wide[method_order(set(wide.columns))]
    return wide.dropna(axis=0, how="any")


def average_ranks(matrix: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Rank per dataset (1 = best; ties averaged) and the mean rank per method."""
    ranks = matrix.apply(lambda row: pd.Series(stats.rankdata(-row.to_numpy(), "average"),
                                               index=row.index), axis=1)
    return ranks, ranks.mean(axis=0)


def critical_difference(k: int, n_datasets: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of mean ranks for ``k`` methods on ``n_datasets``."""
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
    """Friedman χ² test (scipy) and Nemenyi p-values (scikit-posthocs) on ``matrix``."""
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
    columns = [matrix[c].to_numpy() for c in matrix.columns]
    if np.allclose(matrix.to_numpy(), matrix.to_numpy()[:, :1]):
        return FriedmanResult(k, n, 0.0, 1.0, cd, mean_ranks, None)
    result = stats.friedmanchisquare(*columns)
    import scikit_posthocs

    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(matrix.to_numpy())
    nemenyi.index = nemenyi.columns = list(matrix.columns)
    return FriedmanResult(k, n, float(result.statistic), float(result.pvalue), cd, mean_ranks,
                          nemenyi)


def win_rates(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Win rate (ties half), tie counts and pair counts of each row method against each column
    method over the (dataset, seed) pairs where both have a score."""
    wide = scores.assign(oriented=_oriented(scores)).pivot_table(
        index=["dataset", "seed"], columns="method", values="oriented", aggfunc="mean")
    methods = method_order(set(wide.columns))
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


@dataclass(frozen=True)
class PairedResult:
    """Reference against one other method over datasets (normalised score, seed mean)."""

    reference: str
    other: str
    n: int
    wins: int
    ties: int
    losses: int
    median_diff: float
    p_value: float
    p_holm: float = math.nan

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p_value)

    @property
    def significant(self) -> bool:
        return self.tested and self.p_holm < ALPHA


def paired_wilcoxon(normalised: pd.DataFrame, reference: str) -> list[PairedResult]:
    """Wilcoxon signed-rank of ``reference`` − other per dataset, Holm-adjusted together."""
    if normalised.empty or reference not in set(normalised["method"]):
        return []
    per_dataset = normalised.pivot_table(index="dataset", columns="method",
                                         values="normalised", aggfunc="mean")
    raw = []
    for other in method_order(set(per_dataset.columns) - {reference}):
        both = per_dataset[[reference, other]].dropna()
        diff = (both[reference] - both[other]).to_numpy()
        nonzero = diff[np.abs(diff) > TIE_TOL]
        p = math.nan
        if len(nonzero) >= MIN_PAIRS:
            p = float(stats.wilcoxon(nonzero, alternative="two-sided").pvalue)
        raw.append(PairedResult(
            reference, other, len(diff), int((diff > TIE_TOL).sum()),
            len(diff) - len(nonzero), int((diff < -TIE_TOL).sum()),
            float(np.median(diff)) if len(diff) else math.nan, p))
    adjusted = holm([r.p_value for r in raw])
    return [PairedResult(**{**r.__dict__, "p_holm": p}) for r, p in zip(raw, adjusted,
                                                                         strict=True)]
