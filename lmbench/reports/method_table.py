"""Report section: the methods' scores per dataset, cost, ranks and paired win/tie/loss (via
``compare_methods``); titled by the methods it holds."""

from __future__ import annotations

import math

import pandas as pd

from lmbench.reports.comparison import (
    OUTCOMES,
    SIZES_PER_WIDTH_NOTE,
    compare_methods,
    format_model_sizes,
)
from lmbench.reports.document import Section
from lmbench.reports.numbers import fmt, fmt_mean_std
from lmbench.reports.statistics import ALPHA, MIN_PAIRS
from lmbench.reports.tables import Cell, Table, bold_best
from lmbench.tracking.schema import (
    METHOD_LM,
    METHODS,
    METRIC_N_PARAMETERS,
    METRIC_TRAIN_TIME,
    PARAM_CONFIG_PREFIXES,
    param_column,
    test_metric,
)

#: Methods the comparison expects, in column order; others follow alphabetically.
EXPECTED_METHODS = METHODS
#: Param prefixes that make two runs of a method different configurations (not seeds).
CONFIG_PREFIXES = tuple(param_column(p) for p in PARAM_CONFIG_PREFIXES)


def method_order(methods: set[str]) -> list[str]:
    """Expected methods first (in ``EXPECTED_METHODS`` order), then the rest sorted."""
    return [m for m in EXPECTED_METHODS if m in methods] + sorted(
        methods - set(EXPECTED_METHODS)
    )


def count_configurations(group: pd.DataFrame) -> int:
    """Distinct trainer/model settings among ``group``'s runs (seeds are not settings)."""
    columns = [c for c in group.columns if c.startswith(CONFIG_PREFIXES)]
    if not columns or group.empty:
        return len(group.index[:1])
    return len(group[columns].astype(str).drop_duplicates())


def comparison_section(runs: pd.DataFrame, reference: str = METHOD_LM) -> Section:
    """Mean ± std of the primary test metric, model size, train time, ranks, win/tie/loss."""
    section = Section("comparison", "Method comparison per dataset")
    runs = runs[runs["method"].notna() & runs["dataset"].notna()]
    if runs.empty:
        section.text("No benchmark runs (runs with a `method` and a `dataset` tag) in the "
                     "experiments read.")
        section.missing.append(("comparison", "no benchmark runs"))
        return section
    result = compare_methods(runs, reference=reference)
    summary = result.summary
    methods = method_order(set(summary["method"]))
    section.title = (f"Per-dataset results of {methods[0]}" if len(methods) == 1
                     else "Per-dataset comparison: " + " vs ".join(methods))
    absent = [m for m in EXPECTED_METHODS if m not in methods]
    if absent:
        section.text(
            "No runs of " + ", ".join(f"`{m}`" for m in absent)
            + " in these experiments: the table compares "
            + ", ".join(f"`{m}`" for m in methods) + " only."
        )
        section.missing += [("comparison", f"no `{m}` runs") for m in absent]
    compared = len(methods) >= 2
    section.text(
        "Primary test metric per task (↑ higher is better, ↓ lower): mean ± sample std over "
        "the FINISHED runs of each method on each dataset (n; failed runs counted beside it); "
        "the best mean of each row in bold (descriptive: equal means are all bold, and bold "
        "is not a test)." + (
            " Ranks are per dataset (1 = best, ties averaged). Win/tie/loss pairs "
            "the two methods' scores by seed on each dataset and applies the two-sided "
            f"Wilcoxon signed-rank test: a win or loss needs p < {ALPHA} (unadjusted, per "
            "dataset); equal scores and non-significant differences are ties; with fewer "
            f"than {MIN_PAIRS} seeds that differ no such test can reach {ALPHA}, and the "
            "dataset is counted as 'n too small' instead of being called." if compared else
            f" Ranks and win/tie/loss compare methods with each other; with one method "
            f"(`{methods[0]}`) in these experiments there is nothing to rank or pair, so "
            "neither is shown."
        )
    )
    stale = _stale_cells(runs)
    configs = {
        key: count_configurations(group[group["status"] == "FINISHED"])
        for key, group in runs.groupby(["dataset", "method"], sort=True)
    }
    by_key = summary.set_index(["dataset", "method"])
    datasets = sorted(summary["dataset"].unique())

    scores = Table(
        "comparison_scores",
        "Primary test metric per dataset: mean ± std (n runs); best mean in bold.",
        ["dataset", "metric", *methods],
        align="ll" + "r" * len(methods),
    )
    cost = Table(
        "comparison_cost",
        "Model size (weights; leaf values for tree ensembles) and mean training time in "
        "seconds (for the tuned methods: the whole tuning, every Optuna trial included).",
        ["dataset", *[f"{m} {what}" for m in methods for what in ("size", "train s")]],
    )
    ranks = Table(
        "comparison_ranks",
        "Rank of each method per dataset (1 = best mean; ties averaged) and the mean rank.",
        ["dataset", *methods],
    )
    multi_config: list[str] = []
    for dataset in datasets:
        rows = [by_key.loc[(dataset, m)] if (dataset, m) in by_key.index else None
                for m in methods]
        first = next(r for r in rows if r is not None)
        higher = bool(first["higher_is_better"])
        means = [math.nan if r is None else float(r["mean"]) for r in rows]
        bold = bold_best(means, higher)
        cells = []
        for method, row, is_best in zip(methods, rows, bold, strict=True):
            if row is None:
                cells.append(Cell("missing"))
                section.missing.append(("comparison", f"`{method}` on `{dataset}`: no run"))
                continue
            text = f"{fmt_mean_std(row['mean'], row['std'])} ({int(row['n'])}"
            if row["n_failed"]:
                text += f", {int(row['n_failed'])} failed"
            text += ")" + ("†" if (dataset, method) in stale else "")
            cells.append(Cell(text, is_best))
            if configs.get((dataset, method), 1) > 1:
                multi_config.append(f"{method} on {dataset} ({configs[(dataset, method)]})")
        arrow = "↑" if higher else "↓"
        scores.add([dataset, f"{first['metric']} {arrow}", *cells])
        cost.add([dataset, *[
            v for row in rows for v in (
                ("–", "–") if row is None
                else (format_model_sizes(row["model_sizes"]), fmt(row["train_time_s"], 3))
            )
        ]])
        rank_values = [math.nan if r is None else float(r["rank"]) for r in rows]
        rank_bold = bold_best(rank_values, higher_is_better=False)
        ranks.add([dataset, *[Cell(fmt(v, 3), b)
                              for v, b in zip(rank_values, rank_bold, strict=True)]])
    mean_ranks = [float(result.mean_ranks.get(m, math.nan)) for m in methods]
    ranks.add([Cell("mean rank"), *[
        Cell(fmt(v, 3), b)
        for v, b in zip(mean_ranks, bold_best(mean_ranks, False), strict=True)
    ]])
    if summary["model_sizes"].map(len).gt(1).any():
        cost.notes.append(SIZES_PER_WIDTH_NOTE)
    if stale:
        scores.notes.append("† includes runs from another code version (see the run audit).")
    if multi_config:
        scores.notes.append(
            "Several configurations, not only seeds, enter these means (a sweep): "
            + "; ".join(multi_config) + "."
        )
    section.table(scores)
    section.table(cost)
    if compared:  # one method: nothing to rank or pair (the text above says so)
        section.table(ranks)
    if compared and reference in methods:
        wtl = Table(
            "comparison_win_tie_loss",
            f"Win/tie/loss of `{reference}` against each other method, over datasets "
            f"(paired Wilcoxon over seeds per dataset; 'n too small': fewer than {MIN_PAIRS} "
            "seeds that differ).",
            ["method", "versus", *OUTCOMES],
            align="llrrrr",
        )
        for _, row in result.wtl.iterrows():
            wtl.add([row["method"], row["versus"], *[str(row[o]) for o in OUTCOMES]])
        section.table(wtl)
    elif compared:
        section.text(f"Win/tie/loss needs `{reference}` and at least one other method.")
    for _, run in runs.iterrows():
        if run["status"] != "FINISHED":
            continue
        for quantity in ("primary_value", METRIC_N_PARAMETERS, METRIC_TRAIN_TIME):
            name = test_metric(run["primary_metric"]) if quantity == "primary_value" else quantity
            section.cite(run["run_id"], name, run[quantity])
    return section


def _stale_cells(runs: pd.DataFrame) -> set[tuple[str, str]]:
    if "code_version" not in runs:
        return set()
    other = runs[runs["code_version"] == "other"]
    return set(zip(other["dataset"], other["method"], strict=True))
