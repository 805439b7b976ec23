"""Study statistics over methods × datasets × seeds (TabArena; Grinsztajn et al. 2022; Demšar 2006).

Input: benchmark runs (one per configuration, see ``lmbench.reports.dedupe``), FINISHED, with a
primary test value. The tests, ranks and win rates are ``lmbench.reports.statistics``'; this
module shapes the score tables they take. Every quantity is oriented so that *better* is
explicit:

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

from lmbench.reports.method_table import method_order
from lmbench.reports.statistics import ALPHA, TIE_TOL, holm, signed_rank, win_rate_matrix

__all__ = ["PairedResult", "dataset_scores", "normalised_scores", "paired_wilcoxon",
           "score_table", "seed_mean_matrix", "win_rates"]


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


def win_rates(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Win rate (ties half), tie counts and pair counts of each row method against each column
    method over the (dataset, seed) pairs where both have a score."""
    wide = scores.assign(oriented=_oriented(scores)).pivot_table(
        index=["dataset", "seed"], columns="method", values="oriented", aggfunc="mean")
    return win_rate_matrix(wide, method_order(set(wide.columns)))


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
        test = signed_rank(diff)
        raw.append(PairedResult(
            reference, other, test.n, test.wins, test.ties, test.losses,
            float(np.median(diff)) if len(diff) else math.nan, test.p_value))
    adjusted = holm([r.p_value for r in raw])
    return [PairedResult(**{**r.__dict__, "p_holm": p}) for r, p in zip(raw, adjusted,
                                                                         strict=True)]
