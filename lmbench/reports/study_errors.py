"""Report section: the study's scale-free comparison, per-dataset tests, test-set sizes and
parameter efficiency (statistics in ``lmbench.reports.statistics``).

Beside the normalised score of the study section (min-max per dataset, which stretches noise
where all methods lie within a fraction of a percent), every method's error is compared with
the reference's as a ratio: error = 1 − AUC or accuracy (the primary metric of classification),
or the RMSE. Per dataset ``log(error / error_reference)`` of the seed-mean errors; over datasets
its median, with a percentile bootstrap interval, read as *extra error* exp(median) − 1.
Improvability (TabArena) is 1 − best error / error per dataset, averaged over datasets.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from lmbench.reports.document import Section
from lmbench.reports.figures import report_style, subplots
from lmbench.reports.method_table import method_order
from lmbench.reports.numbers import fmt, fmt_int
from lmbench.reports.statistics import (
    ALPHA,
    CONFIDENCE,
    ERROR_FLOOR,
    MIN_SEEDS_T,
    N_BOOTSTRAP,
    ONE_ERROR_POINTS,
    ExtraError,
    dataset_outcome_counts,
    error_of,
    extra_error,
    improvability,
    log_error_ratios,
    one_error_points,
)
from lmbench.reports.study import normalised_scores, score_table
from lmbench.reports.study_figures import NORMALISED_LABEL, method_color
from lmbench.reports.tables import Table
from lmbench.tracking.schema import (
    METHOD_LM,
    METRIC_N_PARAMETERS,
    METRIC_N_TEST_ROWS,
    metric_column,
)


def seed_mean_errors(scores: pd.DataFrame) -> pd.DataFrame:
    """Datasets × methods of the seed-mean error (``error_of`` each run's primary score)."""
    errors = scores.assign(error=[error_of(v, h) for v, h in
                                  zip(scores["value"], scores["higher_is_better"], strict=True)])
    wide = errors.pivot_table(index="dataset", columns="method", values="error", aggfunc="mean")
    return wide[method_order(set(wide.columns))]


def oriented_per_seed(scores: pd.DataFrame) -> pd.DataFrame:
    """(dataset, seed) × methods of the primary score, sign flipped where lower is better."""
    oriented = scores["value"].where(scores["higher_is_better"], -scores["value"])
    wide = scores.assign(oriented=oriented).pivot_table(
        index=["dataset", "seed"], columns="method", values="oriented", aggfunc="mean")
    return wide[method_order(set(wide.columns))]


def dataset_test_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: task, primary metric, test rows (median over its runs' ``n_test_rows``),
    the points one misclassified row moves the score by, and whether that exceeds
    ``ONE_ERROR_POINTS`` (classification only: an RMSE has no per-row step)."""
    column = metric_column(METRIC_N_TEST_ROWS)
    ok = runs[runs["status"].eq("FINISHED") & runs["dataset"].notna()]
    rows = []
    for dataset, group in ok.groupby("dataset", sort=True):
        n = (float(pd.to_numeric(group[column], errors="coerce").median())
             if column in group else math.nan)
        task = str(group["task"].iloc[0])
        points = one_error_points(n) if task != "regression" else math.nan
        rows.append({"dataset": dataset, "task": task, "metric": group["primary_metric"].iloc[0],
                     "n_test_rows": n, "one_error_points": points,
                     "small": bool(points > ONE_ERROR_POINTS)})
    return pd.DataFrame(rows, columns=["dataset", "task", "metric", "n_test_rows",
                                       "one_error_points", "small"])


def efficiency_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method): median model size (weights; leaf values for tree ensembles, as
    the runs' ``n_parameters``) and the seed-mean normalised score."""
    scores = score_table(runs)
    normalised = normalised_scores(scores).groupby(["dataset", "method"])["normalised"].mean()
    ok = runs[runs["status"].eq("FINISHED")]
    sizes = ok.groupby(["dataset", "method"])[METRIC_N_PARAMETERS].median()
    joined = pd.concat([sizes, normalised], axis=1).dropna().reset_index()
    return joined[joined[METRIC_N_PARAMETERS] > 0].reset_index(drop=True)


def efficiency_figure(points: pd.DataFrame) -> Figure:
    """Normalised test score against model size (log scale): one small point per (dataset,
    method), one large point per method at its medians."""
    with report_style():
        figure, ax = subplots(figsize=(6.4, 3.6), constrained_layout=True)
        for method in method_order(set(points["method"])):
            mine = points[points["method"] == method]
            color = method_color(method)
            ax.scatter(mine[METRIC_N_PARAMETERS], mine["normalised"], s=12, alpha=0.45,
                       color=color)
            ax.scatter([mine[METRIC_N_PARAMETERS].median()], [mine["normalised"].median()],
                       s=90, color=color, edgecolor="black", label=method, zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel("model size (weights; leaf values for trees), log scale")
        ax.set_ylabel(NORMALISED_LABEL)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, title="median per method", title_fontsize=7)
    return figure


def errors_section(runs: pd.DataFrame, reference: str = METHOD_LM) -> Section | None:
    """Extra error against ``reference`` with bootstrap intervals, improvability, per-dataset
    win/tie/loss of every pair, test rows per dataset, parameter efficiency; None with fewer
    than two methods."""
    scores = score_table(runs)
    if scores["method"].nunique() < 2:
        return None
    methods = method_order(set(scores["method"]))
    section = Section("study_errors", "Study: error ratios, per-dataset tests, test sizes and "
                      "model size")
    errors = seed_mean_errors(scores)
    _extra_error(section, errors, reference, methods)
    _dataset_tests(section, scores, methods)
    _test_rows(section, runs)
    _efficiency(section, runs)
    for _, run in runs[runs["status"].eq("FINISHED")].iterrows():
        section.cite(run["run_id"], METRIC_N_PARAMETERS, run.get(METRIC_N_PARAMETERS))
        section.cite(run["run_id"], METRIC_N_TEST_ROWS,
                     run.get(metric_column(METRIC_N_TEST_ROWS)))
    return section


def _extra_error(section: Section, errors: pd.DataFrame, reference: str,
                 methods: list[str]) -> None:
    complete = errors.dropna(axis=0, how="any")
    gaps = improvability(complete)
    section.text(
        "**Scale-free comparison.** Error = 1 − score for AUC and accuracy, the RMSE itself "
        "for regression; seed means per dataset. Per dataset the log ratio log(error / "
        f"error of `{reference}`) (errors below {ERROR_FLOOR} counted as {ERROR_FLOOR}); its "
        f"median over datasets with a {round(CONFIDENCE * 100)}% percentile bootstrap interval "
        f"({N_BOOTSTRAP} resamples of the datasets), shown as *extra error* exp(median) − 1: "
        f"+10% means the method's error is typically 10% larger than `{reference}`'s, −10% "
        "smaller. An interval that contains 0 does not separate the two. **Improvability** "
        "(TabArena): 1 − best error / error per dataset, the share of the method's error the "
        f"best method avoids (0 = best), averaged over the {len(complete)} datasets where "
        "every method has a score."
    )
    table = Table("study_extra_error", f"Extra error against `{reference}` (median over "
                  f"datasets of the error ratio − 1, {round(CONFIDENCE * 100)}% bootstrap "
                  "interval) and mean improvability.",
                  ["method", "datasets", f"extra error vs {reference}", "interval",
                   "lower error than ref.", "improvability ↓"], align="lrrrrr")
    by_method = {}
    if reference in errors.columns:
        ratios = log_error_ratios(errors, reference)
        by_method = {r.method: (r, ratios[r.method].dropna()) for r in extra_error(ratios)}
    for method in methods:
        gap = fmt(float(gaps[method].mean()), 3) if method in gaps and len(gaps) else "–"
        if method == reference or method not in by_method:
            table.add([method, fmt_int(errors[method].notna().sum()),
                       "(reference)" if method == reference else "–", "–", "–", gap])
            continue
        result, values = by_method[method]
        table.add([method, fmt_int(result.n), _percent(result.extra),
                   f"[{_percent(result.extra_low)}, {_percent(result.extra_high)}]",
                   f"{int((values < 0).sum())} of {len(values)}", gap])
    section.table(table)
    lines = [extra_error_sentence(result, reference) for result, _ in by_method.values()]
    if lines:
        section.text("\n".join(f"- {line}" for line in lines))


def extra_error_sentence(result: ExtraError, reference: str) -> str:
    """One reading of an extra-error result, with its interval and whether it excludes 0."""
    if result.n == 0 or math.isnan(result.median_log_ratio):
        return f"`{result.method}`: no dataset shares an error with `{reference}`."
    direction = "larger" if result.extra > 0 else "smaller"
    separated = result.low > 0 or result.high < 0
    verdict = ("the interval excludes 0" if separated
               else "the interval contains 0: not separated from it")
    return (f"`{result.method}`: error typically {_percent(abs(result.extra))[1:]} {direction} "
            f"than `{reference}`'s (median over {result.n} datasets; "
            f"{round(CONFIDENCE * 100)}% bootstrap interval "
            f"[{_percent(result.extra_low)}, {_percent(result.extra_high)}]; {verdict}).")


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{value * 100:+.1f}%"


def _dataset_tests(section: Section, scores: pd.DataFrame, methods: list[str]) -> None:
    per_seed = oriented_per_seed(scores)
    seeds = int(scores.groupby(["dataset", "method"])["seed"].nunique().min())
    counts = dataset_outcome_counts(per_seed, methods)
    section.text(
        "**Per-dataset tests.** For each pair of methods and each dataset, the two-sided "
        f"paired t-test over seeds (at least {MIN_SEEDS_T} seeds; with 5 seeds no Wilcoxon "
        f"signed-rank p can fall below {ALPHA}) decides a win or loss at p < {ALPHA} "
        "(unadjusted, per dataset); otherwise the dataset is a tie, or 'n too small' with "
        f"fewer than {MIN_SEEDS_T} seeds (here at least {seeds} per dataset and method)."
    )
    table = Table("study_dataset_tests", "Datasets each method (row) wins, ties and loses "
                  f"against the other at p < {ALPHA} (paired t-test over seeds per dataset).",
                  ["method", "versus", "win", "tie", "loss", "n too small"], align="llrrrr")
    order = {m: i for i, m in enumerate(methods)}
    for _, row in counts.iterrows():
        if order[row["method"]] < order[row["versus"]]:
            table.add([row["method"], row["versus"],
                       *[str(int(row[o])) for o in ("win", "tie", "loss", "n too small")]])
    section.table(table)


def _test_rows(section: Section, runs: pd.DataFrame) -> None:
    sizes = dataset_test_rows(runs)
    if sizes.empty:
        return
    table = Table("study_test_rows", "Test rows per dataset and the points (of 100) one "
                  "misclassified row moves an accuracy-like score; ⚠ where that exceeds "
                  f"{fmt(ONE_ERROR_POINTS, 2)} point.",
                  ["dataset", "task", "metric", "test rows", "one row, points", "small"],
                  align="lllrrl")
    for _, row in sizes.iterrows():
        table.add([row["dataset"], row["task"], row["metric"], fmt_int(row["n_test_rows"]),
                   fmt(row["one_error_points"], 3), "⚠" if row["small"] else ""])
    section.table(table)
    small = list(sizes.loc[sizes["small"], "dataset"])
    if small:
        section.text("Small test sets (one row moves the score by more than "
                     f"{fmt(ONE_ERROR_POINTS, 2)} point): " + ", ".join(small) + ". Read "
                     "differences there against that step.")


def _efficiency(section: Section, runs: pd.DataFrame) -> None:
    points = efficiency_points(runs)
    if points.empty:
        return
    table = Table("study_efficiency", "Model size (median over datasets of the per-dataset "
                  "median: weights; leaf values for tree ensembles) and the normalised score "
                  "(median over datasets) per method.",
                  ["method", "datasets", "model size (median)", "normalised score (median)"],
                  align="lrrr")
    for method in method_order(set(points["method"])):
        mine = points[points["method"] == method]
        table.add([method, fmt_int(len(mine)), fmt_int(mine[METRIC_N_PARAMETERS].median()),
                   fmt(float(mine["normalised"].median()), 3)])
    section.table(table)
    section.figure("study_efficiency", "Parameter efficiency: normalised test score against "
                   "model size per (dataset, method); large points are each method's medians.",
                   efficiency_figure(points))


__all__ = ["dataset_test_rows", "efficiency_points", "errors_section", "extra_error_sentence",
           "oriented_per_seed", "seed_mean_errors"]
