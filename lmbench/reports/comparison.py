"""Method comparison from tracked runs: mean ± std per dataset, ranks and win/tie/loss.

Win rule (``lmbench.reports.statistics.paired_outcome``): on each dataset the two methods'
primary test scores are paired by seed and tested with the two-sided Wilcoxon signed-rank test
(differences within ``TIE_TOL`` dropped). A *win* or *loss* needs p < ``ALPHA``; equal scores
and non-significant differences are *ties*; with fewer than ``MIN_PAIRS`` non-tied seeds no
two-sided test can reach ``ALPHA``, and the dataset is counted as *n too small* (neither a win
nor a tie).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from lmbench.reports.labels import width_label
from lmbench.reports.numbers import MISSING, fmt, fmt_int
from lmbench.reports.statistics import ALPHA, MIN_PAIRS, paired_outcome, rank_scores
from lmbench.reports.tables import markdown_table
from lmbench.tracking.schema import METHOD_LM, PARAM_HIDDEN, param_column

#: The outcomes of one method against another on one dataset.
OUTCOMES = ("win", "tie", "loss", "n too small")
#: The run-table column of the hidden widths a run's network had (single-configuration runs).
WIDTH_COLUMN = param_column(PARAM_HIDDEN)
#: Said under a size column where some cell lists a size per hidden widths.
SIZES_PER_WIDTH_NOTE = ("Where a method's runs on a dataset trained networks of several "
                        "hidden widths, the size of each is listed (widths in brackets): a "
                        "mean of different networks' sizes is no network's size.")


def model_sizes(runs: pd.DataFrame) -> tuple[tuple[str, float], ...]:
    """The model sizes of ``runs``, one per network: with several hidden widths
    (``model.hidden``) among them, ``(widths, median size)`` per widths, smallest first; else
    ``(("", median size),)`` over the runs (one network, up to what tuning selected); ``()``
    without sizes."""
    sizes = pd.to_numeric(runs["n_parameters"], errors="coerce")
    if WIDTH_COLUMN in runs and runs[WIDTH_COLUMN].dropna().nunique() > 1:
        per_width = sizes.groupby(runs[WIDTH_COLUMN].map(width_label)).median().dropna()
        return tuple(sorted(((str(w), float(s)) for w, s in per_width.items()),
                            key=lambda pair: (pair[1], pair[0])))
    return (("", float(sizes.median())),) if sizes.notna().any() else ()


def format_model_sizes(sizes: tuple[tuple[str, float], ...]) -> str:
    """``2,026`` for one network; ``266 (8) / 530 (16)`` for one per hidden widths."""
    if not sizes:
        return MISSING
    if len(sizes) == 1:
        return fmt_int(sizes[0][1])
    return " / ".join(f"{fmt_int(size)} ({widths})" for widths, size in sizes)


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
            "model_sizes": model_sizes(good),
            "train_time_s": float(good["train_time_s"].mean()) if n else math.nan,
        })
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    summary["rank"] = math.nan
    for index in summary.groupby("dataset").groups.values():
        group = summary.loc[index]
        summary.loc[index, "rank"] = rank_scores(group["mean"],
                                                 bool(group["higher_is_better"].iloc[0]))
    return summary


def _oriented_by_seed(runs: pd.DataFrame, dataset: str, method: str) -> pd.Series:
    ok = runs[(runs["dataset"] == dataset) & (runs["method"] == method)
              & runs["status"].eq("FINISHED") & runs["primary_value"].notna()]
    values = ok.groupby(ok["seed"].fillna(-1))["primary_value"].mean().astype(float)
    higher = bool(ok["higher_is_better"].iloc[0]) if len(ok) else True
    return values if higher else -values


def win_tie_loss(runs: pd.DataFrame, method: str = METHOD_LM) -> pd.DataFrame:
    """Counts of win/tie/loss/n too small of ``method`` against each other method, over
    datasets (per-seed runs, not the summary: the test pairs seeds)."""
    rows = []
    others = sorted(set(runs["method"].dropna()) - {method})
    datasets = sorted(set(runs["dataset"].dropna()))
    for other in others:
        counts = dict.fromkeys(OUTCOMES, 0)
        for dataset in datasets:
            mine = _oriented_by_seed(runs, dataset, method)
            theirs = _oriented_by_seed(runs, dataset, other)
            if mine.empty or theirs.empty:
                continue
            counts[paired_outcome(mine, theirs)] += 1
        rows.append({"method": method, "versus": other, **counts})
    return pd.DataFrame(rows, columns=["method", "versus", *OUTCOMES])


@dataclass(frozen=True)
class ComparisonResult:
    """The numbers behind the comparison table (issue: LM vs GBDT vs Adam)."""

    summary: pd.DataFrame
    mean_ranks: pd.Series
    wtl: pd.DataFrame
    #: The method whose win/tie/loss against the others ``wtl`` counts.
    reference: str = METHOD_LM

    def to_markdown(self, digits: int = 4) -> str:
        """Per-dataset table (mean ± std, size, time, rank), mean ranks and win/tie/loss; with
        fewer than two methods, or without the reference method, a sentence instead of the
        tables that would compare nothing."""

        def num(value: float, significant: int | None) -> str:
            return fmt(value, significant, group_below=math.inf)

        methods = list(dict.fromkeys(self.summary["method"]))
        compared = len(methods) >= 2
        rows = []
        for _, row in self.summary.iterrows():
            direction = "↑" if row["higher_is_better"] else "↓"
            failed = f", {int(row['n_failed'])} failed" if row["n_failed"] else ""
            rows.append([
                row["dataset"], f"{row['metric']} {direction}", row["method"],
                f"{num(row['mean'], digits)} ± {num(row['std'], digits)} "
                f"({int(row['n'])}{failed})",
                format_model_sizes(row["model_sizes"]), num(row["train_time_s"], 2),
                *([num(row["rank"], 1)] if compared else []),
            ])
        scores = pd.DataFrame(rows, columns=[
            "dataset", "metric", "method", "mean ± std (n)", "params / leaves", "train s",
            *(["rank"] if compared else []),
        ])
        per_width = ([SIZES_PER_WIDTH_NOTE, ""]
                     if self.summary["model_sizes"].map(len).gt(1).any() else [])
        parts = [markdown_table(scores), "", *per_width]
        if not compared:
            return "\n".join([*parts,
                f"One method (`{methods[0]}`) in these runs: ranks and win/tie/loss compare "
                "methods with each other, so there are none. Add runs of another method to "
                "the experiment to compare."])
        ranks = pd.DataFrame(
            [[m, fmt(r, decimals=2)] for m, r in self.mean_ranks.items()],
            columns=["method", "mean rank"],
        )
        parts += [markdown_table(ranks), ""]
        if self.reference not in methods:
            return "\n".join([*parts,
                f"No win/tie/loss: it counts `{self.reference}` against each other method, "
                f"and these runs hold no `{self.reference}` (methods: "
                + ", ".join(f"`{m}`" for m in methods) + "; pick one with --reference)."])
        wtl = self.wtl[["method", "versus", *OUTCOMES]]
        return "\n".join([
            *parts, markdown_table(wtl), "",
            f"Win rule: two-sided Wilcoxon signed-rank over seeds, p < {ALPHA}; 'n too "
            f"small': fewer than {MIN_PAIRS} seeds with a difference.",
        ])


def compare_methods(runs: pd.DataFrame, reference: str = METHOD_LM) -> ComparisonResult:
    """Summary per dataset and method, mean rank per method, and win/tie/loss of ``reference``."""
    summary = summarize(runs)
    if summary.empty:
        raise ValueError("no runs to compare: the experiment has no runs with a primary metric")
    mean_ranks = summary.groupby("method")["rank"].mean().sort_values()
    return ComparisonResult(summary, mean_ranks, win_tie_loss(runs, reference), reference)

