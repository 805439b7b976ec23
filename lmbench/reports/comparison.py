"""Method comparison from tracked runs: mean ± std per dataset, ranks and win/tie/loss.

Tie rule: two methods tie on a dataset when the 95% t-intervals of their mean primary metric
(over seeds) overlap; otherwise the better mean wins. With a single seed there is no interval,
so every comparison on that dataset is a tie (reported, not hidden).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from lmbench.reports.numbers import fmt
from lmbench.reports.tables import markdown_table
from lmbench.tracking.schema import METHOD_LM


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, method): n, mean, std, 95% half-width, parameters, train time.

    Only FINISHED runs with a primary value enter the statistics; ``n_failed`` counts the others
    so that they are reported, not silently dropped.
    """
    ok = runs["status"].eq("FINISHED") & runs["primary_value"].notna()
    rows = []
    for (dataset, method), group in runs.groupby(["dataset", "method"], sort=True):
        good = group[ok.loc[group.index]]
        values = good["primary_value"].astype(float)
        n = len(values)
        std = float(values.std(ddof=1)) if n > 1 else math.nan
        half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
        rows.append({
            "dataset": dataset,
            "method": method,
            "task": group["task"].iloc[0],
            "metric": group["primary_metric"].iloc[0],
            "higher_is_better": bool(group["higher_is_better"].iloc[0]),
            "n": n,
            "n_failed": int(len(group) - n),
            "mean": float(values.mean()) if n else math.nan,
            "std": std,
            "ci95": half,
            "n_parameters": float(good["n_parameters"].median()) if n else math.nan,
            "train_time_s": float(good["train_time_s"].mean()) if n else math.nan,
        })
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    summary["rank"] = math.nan
    for index in summary.groupby("dataset").groups.values():
        summary.loc[index, "rank"] = _ranks(summary.loc[index])
    return summary


def _ranks(group: pd.DataFrame) -> pd.Series:
    ascending = not bool(group["higher_is_better"].iloc[0])
    return group["mean"].rank(ascending=ascending, method="average", na_option="bottom")


def _outcome(a: pd.Series, b: pd.Series) -> str:
    """'win', 'tie' or 'loss' of a against b on one dataset, by the interval-overlap rule."""
    if any(math.isnan(v) for v in (a["mean"], b["mean"], a["ci95"], b["ci95"])):
        return "tie"
    low_a, high_a = a["mean"] - a["ci95"], a["mean"] + a["ci95"]
    low_b, high_b = b["mean"] - b["ci95"], b["mean"] + b["ci95"]
    if low_a <= high_b and low_b <= high_a:
        return "tie"
    a_better = a["mean"] > b["mean"] if a["higher_is_better"] else a["mean"] < b["mean"]
    return "win" if a_better else "loss"


def win_tie_loss(summary: pd.DataFrame, method: str = METHOD_LM) -> pd.DataFrame:
    """Counts of win/tie/loss of ``method`` against each other method, over datasets."""
    rows = []
    others = sorted(set(summary["method"]) - {method})
    for other in others:
        counts = {"win": 0, "tie": 0, "loss": 0}
        for _, group in summary.groupby("dataset"):
            mine = group[group["method"] == method]
            theirs = group[group["method"] == other]
            if mine.empty or theirs.empty:
                continue
            counts[_outcome(mine.iloc[0], theirs.iloc[0])] += 1
        rows.append({"method": method, "versus": other, **counts})
    return pd.DataFrame(rows, columns=["method", "versus", "win", "tie", "loss"])


@dataclass(frozen=True)
class ComparisonResult:
    """The numbers behind the comparison table (issue: LM vs GBDT vs Adam)."""

    summary: pd.DataFrame
    mean_ranks: pd.Series
    wtl: pd.DataFrame

    def to_markdown(self, digits: int = 4) -> str:
        """Per-dataset table (mean ± std, size, time, rank), mean ranks and win/tie/loss."""

        def num(value: float, significant: int | None) -> str:
            return fmt(value, significant, group_below=math.inf)

        rows = []
        for _, row in self.summary.iterrows():
            direction = "↑" if row["higher_is_better"] else "↓"
            failed = f", {int(row['n_failed'])} failed" if row["n_failed"] else ""
            rows.append([
                row["dataset"], f"{row['metric']} {direction}", row["method"],
                f"{num(row['mean'], digits)} ± {num(row['std'], digits)} "
                f"({int(row['n'])}{failed})",
                num(row["n_parameters"], None), num(row["train_time_s"], 2),
                num(row["rank"], 1),
            ])
        scores = pd.DataFrame(rows, columns=[
            "dataset", "metric", "method", "mean ± std (n)", "params / leaves", "train s",
            "rank",
        ])
        ranks = pd.DataFrame(
            [[m, fmt(r, decimals=2)] for m, r in self.mean_ranks.items()],
            columns=["method", "mean rank"],
        )
        wtl = self.wtl[["method", "versus", "win", "tie", "loss"]]
        return "\n".join([
            markdown_table(scores), "", markdown_table(ranks), "", markdown_table(wtl), "",
            "Tie rule: overlapping 95% t-intervals of the mean over seeds.",
        ])


def compare_methods(runs: pd.DataFrame, reference: str = METHOD_LM) -> ComparisonResult:
    """Summary per dataset and method, mean rank per method, and win/tie/loss of ``reference``."""
    summary = summarize(runs)
    if summary.empty:
        raise ValueError("no runs to compare: the experiment has no runs with a primary metric")
    mean_ranks = summary.groupby("method")["rank"].mean().sort_values()
    return ComparisonResult(summary, mean_ranks, win_tie_loss(summary, reference))

