"""Report section: the study across methods, datasets and seeds (statistics in
``lmbench.reports.study``, figures in ``lmbench.reports.study_figures``).

Shown when the benchmark runs hold at least two methods. Every statement of the conclusion is
generated from a test result and says so; where n is too small for a test to reach
significance the conclusion says that instead of naming a winner.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lmbench.reports.document import Section
from lmbench.reports.method_table import method_order
from lmbench.reports.numbers import fmt, fmt_int, fmt_mean_std
from lmbench.reports.statistics import ALPHA, MIN_PAIRS, FriedmanResult, friedman
from lmbench.reports.study import (
    PairedResult,
    dataset_scores,
    normalised_scores,
    paired_wilcoxon,
    score_table,
    seed_mean_matrix,
    win_rates,
)
from lmbench.reports.study_figures import (
    cd_diagram,
    time_quality_figure,
    tuned_default_figure,
    win_rate_figure,
)
from lmbench.reports.tables import Cell, Table, bold_best
from lmbench.tracking.schema import (
    METHOD_LM,
    METRIC_N_PARAMETERS,
    METRIC_N_TIMED_OUT,
    METRIC_N_TRIALS,
    METRIC_TRAIN_TIME,
    MODEL_SIZE_INTERNAL_NODES,
    MODEL_SIZE_LEAVES,
    MODEL_SIZE_TREES,
    default_test_metric,
    metric_column,
    model_size_metric,
    test_metric,
)

#: The cost table's model-size columns, one per concept: its header and the run-table column
#: it reads. Parameters are the weights of a network and the leaf values of a tree ensemble
#: (``n_parameters``, every run has it); the tree counts are the ensembles' only (``–`` for
#: networks). Sums (``n_nodes``) and repeats of these (``model_size_n_parameters``,
#: ``model_size_n_leaf_values``) are left out.
COST_SIZE_COLUMNS = (
    ("parameters", METRIC_N_PARAMETERS),
    ("trees", metric_column(model_size_metric(MODEL_SIZE_TREES))),
    ("leaves", metric_column(model_size_metric(MODEL_SIZE_LEAVES))),
    ("internal nodes", metric_column(model_size_metric(MODEL_SIZE_INTERNAL_NODES))),
)


def has_study(runs: pd.DataFrame) -> bool:
    """Whether the benchmark runs hold finished scores of at least two methods."""
    return score_table(runs)["method"].nunique() >= 2 if not runs.empty else False


def study_section(runs: pd.DataFrame, reference: str = METHOD_LM) -> Section | None:
    """The study section, or None when fewer than two methods have finished scores."""
    scores = score_table(runs)
    if scores["method"].nunique() < 2:
        return None
    methods = method_order(set(scores["method"]))
    section = Section("study", "Study: " + ", ".join(methods) + " over "
                      f"{scores['dataset'].nunique()} datasets")
    normalised = normalised_scores(scores)
    section.text(
        f"Methods {', '.join(f'`{m}`' for m in methods)} on {scores['dataset'].nunique()} "
        f"datasets, {scores['seed'].nunique()} seeds (one FINISHED run per configuration; "
        "reruns counted once, see the run audit). Scores are the primary test metric of each "
        "task (↑ higher is better, ↓ lower is better). **Normalised score**: per dataset and "
        "seed, over the methods with a score there, (s − s_worst) / (s_best − s_worst) in the "
        "metric's direction (1 = best method, 0 = worst; 1 for all when all are equal), "
        "averaged over seeds, then over datasets (± std over datasets). **Average rank**: rank "
        "per dataset of the seed-mean score (1 = best; ties get the average rank), over the "
        "datasets where every method has a score."
    )
    section.table(_scores_table(dataset_scores(scores), methods, _other_version_cells(runs)))
    matrix = seed_mean_matrix(scores)
    result = friedman(matrix)
    section.table(_summary_table(normalised, result, methods))
    _friedman_text(section, result)
    rate, ties, pairs = win_rates(scores)
    section.table(_win_table(rate, ties, pairs))
    section.figure("study_win_rate", "Win rate of the row method over the column method over "
                   "(dataset, seed) pairs; ties count half and their number is printed.",
                   win_rate_figure(rate, ties))
    points = _time_points(runs, normalised)
    if not points.empty:
        section.figure("study_time_quality", "Training time per run (log scale) against the "
                       "normalised score, per method.", time_quality_figure(points))
    _tuned_vs_default(section, runs)
    section.table(_cost_table(runs, methods))
    comparisons = paired_wilcoxon(normalised, reference)
    section.text(conclusion(result, comparisons, reference, normalised))
    for _, run in runs[runs["status"].eq("FINISHED") & runs["primary_value"].notna()].iterrows():
        section.cite(run["run_id"], test_metric(run["primary_metric"]), run["primary_value"])
        section.cite(run["run_id"], METRIC_TRAIN_TIME, run.get(METRIC_TRAIN_TIME))
    return section


def _arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def _other_version_cells(runs: pd.DataFrame) -> set[tuple[str, str]]:
    """(dataset, method) cells holding a finished run from another code version."""
    if "code_version" not in runs:
        return set()
    other = runs[runs["code_version"].eq("other") & runs["status"].eq("FINISHED")]
    return set(zip(other["dataset"], other["method"], strict=True))


def _scores_table(summary: pd.DataFrame, methods: list[str],
                  other_version: set[tuple[str, str]]) -> Table:
    table = Table("study_scores", "Primary test metric per dataset: mean ± std over seeds (n "
                  "seeds); the best mean in bold (descriptive, not a test).",
                  ["dataset", "metric", *methods], align="ll" + "r" * len(methods))
    if other_version:
        table.notes.append("† includes runs from another code version (see the run audit).")
    for dataset, group in summary.groupby("dataset", sort=True):
        by_method = group.set_index("method")
        higher = bool(group["higher_is_better"].iloc[0])
        means = [float(by_method.at[m, "mean"]) if m in by_method.index else math.nan
                 for m in methods]
        cells = []
        for method, bold in zip(methods, bold_best(means, higher), strict=True):
            if method not in by_method.index:
                cells.append(Cell("–"))
                continue
            row = by_method.loc[method]
            mark = "†" if (dataset, method) in other_version else ""
            cells.append(Cell(f"{fmt_mean_std(row['mean'], row['std'])} ({int(row['n'])})"
                              + mark, bold))
        table.add([dataset, f"{group['metric'].iloc[0]} {_arrow(higher)}", *cells])
    return table


def _summary_table(normalised: pd.DataFrame, result: FriedmanResult,
                   methods: list[str]) -> Table:
    table = Table("study_summary", "Normalised score (mean ± std over datasets of the seed "
                  "mean) and average rank over the datasets where every method has a score.",
                  ["method", "normalised score ↑", "datasets", "average rank ↓"],
                  align="lrrr")
    per_dataset = normalised.groupby(["method", "dataset"])["normalised"].mean()
    for method in methods:
        values = per_dataset.get(method, pd.Series(dtype=float))
        spread = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        table.add([method, fmt_mean_std(float(values.mean()) if len(values) else math.nan,
                                        spread, 3),
                   fmt_int(len(values)), fmt(result.mean_ranks.get(method, math.nan), 3)])
    return table


def _friedman_text(section: Section, result: FriedmanResult) -> None:
    if not result.tested:
        section.text(f"No Friedman test: {result.reason}.")
        return
    section.text(
        f"Friedman test over N = {result.n_datasets} datasets and k = {result.k} methods: "
        f"χ² = {fmt(result.statistic, 3)}, p = {fmt(result.p_value, 3)}. Nemenyi critical "
        f"difference at α = {ALPHA}: CD = {fmt(result.cd, 3)} (mean ranks further apart than "
        "CD differ significantly; methods joined by a bar in the diagram do not)."
        + (f" With N = {result.n_datasets} < 10 datasets the χ² approximation behind the "
           "Friedman p-value is rough (Demšar 2006): read it as indicative."
           if result.n_datasets < 10 else "")
    )
    if result.nemenyi is not None:
        section.figure("study_cd_diagram", f"Critical-difference diagram (Friedman p = "
                       f"{fmt(result.p_value, 3)}, Nemenyi CD = {fmt(result.cd, 3)}).",
                       cd_diagram(result))


def _win_table(rate: pd.DataFrame, ties: pd.DataFrame, pairs: pd.DataFrame) -> Table:
    methods = list(rate.index)
    table = Table("study_win_rate", "Win rate of the row method over the column method over "
                  "(dataset, seed) pairs where both have a score (ties count ½; ties and pairs "
                  "in brackets).", ["method", *methods], align="l" + "r" * len(methods))
    for a in methods:
        cells = [a]
        for b in methods:
            if a == b:
                cells.append("–")
                continue
            n_ties = int(ties.loc[a, b])
            cells.append(f"{fmt(rate.loc[a, b], 3)} ({n_ties} tie{'' if n_ties == 1 else 's'}"
                         f" / {int(pairs.loc[a, b])})")
        table.add(cells)
    return table


def _time_points(runs: pd.DataFrame, normalised: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"].eq("FINISHED")]
    times = ok.groupby(["dataset", "method"])[METRIC_TRAIN_TIME].median()
    scores = normalised.groupby(["dataset", "method"])["normalised"].mean()
    joined = pd.concat([times, scores], axis=1).dropna().reset_index()
    order = method_order(set(joined["method"]))
    joined["method"] = pd.Categorical(joined["method"], order, ordered=True)
    return joined.sort_values(["method", "dataset"]).assign(method=lambda f: f["method"]
                                                           .astype(str))


def tuned_default_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method): seed means of the default and tuned test score, their
    improvement (positive = tuning helped) and both normalised over every entry of the
    dataset (1 = best, 0 = worst)."""
    ok = runs[runs["status"].eq("FINISHED") & runs["primary_value"].notna()]
    rows = []
    for (dataset, method), group in ok.groupby(["dataset", "method"], sort=True):
        column = metric_column(default_test_metric(str(group["primary_metric"].iloc[0])))
        if column not in group or group[column].isna().all():
            continue
        higher = bool(group["higher_is_better"].iloc[0])
        tuned, default = float(group["primary_value"].mean()), float(group[column].mean())
        rows.append({"dataset": dataset, "method": method, "metric": group["primary_metric"]
                     .iloc[0], "higher": higher, "n": int(group[column].notna().sum()),
                     "default_raw": default, "tuned_raw": tuned,
                     "improvement": (tuned - default) * (1 if higher else -1)})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for _, group in table.groupby("dataset"):
        sign = 1.0 if group["higher"].iloc[0] else -1.0
        values = np.concatenate([group["default_raw"], group["tuned_raw"]]) * sign
        low, span = values.min(), values.max() - values.min()
        for column in ("default", "tuned"):
            oriented = group[f"{column}_raw"] * sign
            table.loc[group.index, column] = 1.0 if span == 0 else (oriented - low) / span
    table["method"] = pd.Categorical(table["method"], method_order(set(table["method"])),
                                     ordered=True)
    return table.sort_values(["method", "dataset"]).assign(method=lambda f: f["method"]
                                                           .astype(str))


def _tuned_vs_default(section: Section, runs: pd.DataFrame) -> None:
    table_data = tuned_default_table(runs)
    if table_data.empty:
        section.text("Tuned against default: no run logged the default configuration's test "
                     "score (`default_test_<metric>`).")
        return
    table = Table("study_tuned_vs_default", "Default configuration against the tuned one: "
                  "seed-mean test score, and the improvement from tuning (positive = better).",
                  ["method", "dataset", "metric", "default", "tuned", "improvement", "seeds"],
                  align="lllrrrr")
    for _, row in table_data.iterrows():
        table.add([row["method"], row["dataset"], f"{row['metric']} {_arrow(row['higher'])}",
                   fmt(row["default_raw"], 4), fmt(row["tuned_raw"], 4),
                   fmt(row["improvement"], 3), fmt_int(row["n"])])
    section.table(table)
    lines = []
    for method, group in table_data.groupby("method", sort=False):
        better = int((group["improvement"] > 0).sum())
        worse = int((group["improvement"] < 0).sum())
        lines.append(f"- `{method}`: tuning improved the test score on {better} of {len(group)} "
                     f"datasets ({worse} worse, {len(group) - better - worse} equal); mean "
                     f"normalised score {fmt(group['default'].mean(), 3)} (default) → "
                     f"{fmt(group['tuned'].mean(), 3)} (tuned).")
    section.text("\n".join(lines))
    section.figure("study_tuned_vs_default", "Default (hatched) and tuned configuration per "
                   "method: mean over datasets of the test score normalised per dataset over "
                   "all default and tuned entries.", tuned_default_figure(table_data))


def _cost_table(runs: pd.DataFrame, methods: list[str]) -> Table:
    ok = runs[runs["status"].eq("FINISHED")]
    table = Table("study_cost", "Cost per method over its finished runs: training time "
                  "(median and total, seconds; tuning included), model size (medians over "
                  "runs: parameters are a network's weights and a tree ensemble's leaf values; "
                  "trees, leaves and internal nodes are the tree ensembles' own), tuning "
                  "trials.",
                  ["method", "runs", "train s (median)", "train s (total)",
                   *[f"{name} (median)" for name, _ in COST_SIZE_COLUMNS], "trials",
                   "timed-out trials"],
                  align="l" + "r" * (5 + len(COST_SIZE_COLUMNS)))
    for method in methods:
        mine = ok[ok["method"] == method]
        time = mine[METRIC_TRAIN_TIME].astype(float)
        trials = _metric_sum(mine, METRIC_N_TRIALS)
        timed_out = _metric_sum(mine, METRIC_N_TIMED_OUT)
        sizes = [pd.to_numeric(mine[column], errors="coerce").median() if column in mine
                 else math.nan for _, column in COST_SIZE_COLUMNS]
        table.add([method, fmt_int(len(mine)), fmt(time.median(), 3), fmt(time.sum(), 4),
                   *[fmt(size, 4) for size in sizes], fmt_int(trials), fmt_int(timed_out)])
    return table


def _metric_sum(runs: pd.DataFrame, name: str) -> float:
    column = metric_column(name)
    return float(runs[column].sum()) if column in runs and runs[column].notna().any() else math.nan


def conclusion(result: FriedmanResult, comparisons: list[PairedResult], reference: str,
               normalised: pd.DataFrame) -> str:
    """The conclusion paragraph: only what the tests support, with their n and p-values. Each
    sentence names its test (Friedman/Nemenyi for the ranks, Wilcoxon signed-rank + Holm for
    the pairs); where the two disagree on a pair, the sentence says so and why."""
    parts = ["**Conclusion.**"]
    if result.tested:
        verdict = ("the methods' ranks differ significantly" if result.p_value < ALPHA
                   else "no significant difference between the methods' ranks")
        parts.append(f"Ranks (Friedman test over {result.n_datasets} datasets): p = "
                     f"{fmt(result.p_value, 3)}, {verdict} at α = {ALPHA}"
                     + (" (few datasets: indicative only)." if result.n_datasets < 10 else "."))
    else:
        parts.append(f"No Friedman test ({result.reason}).")
    if not comparisons:
        parts.append(f"`{reference}` has no normalised scores: no paired comparison.")
        return " ".join(parts)
    for c in comparisons:
        head = (f"`{c.reference}` against `{c.other}` over {c.n} datasets "
                f"(better/tied/worse on {c.wins}/{c.ties}/{c.losses}; median difference of "
                f"the normalised score {fmt(c.median_diff, 2)})")
        ranks = _nemenyi_clause(result, c.reference, c.other)
        if not c.tested:
            parts.append(f"{head}: fewer than {MIN_PAIRS} datasets with a difference, too few "
                         f"for a Wilcoxon signed-rank test to reach significance at {ALPHA}; "
                         f"no winner is called{ranks}.")
            continue
        pair = f"paired Wilcoxon signed-rank test p = {fmt(c.p_value, 3)} (Holm p = " \
               f"{fmt(c.p_holm, 3)})"
        separated = _nemenyi_separates(result, c.reference, c.other)
        if c.significant:
            winner = c.reference if c.median_diff > 0 else c.other
            if separated is False:
                parts.append(f"{head}{ranks}, although the {pair} does: `{winner}` is better "
                             f"at {ALPHA} (the paired test weighs every dataset's difference "
                             "between these two; the Nemenyi test compares mean ranks among "
                             "all methods).")
            else:
                parts.append(f"{head}: `{winner}` is better by the {pair} at {ALPHA}"
                             f"{ranks}.")
        elif separated is True:
            parts.append(f"{head}{ranks}, although the {pair} finds no significant difference "
                         f"at {ALPHA}.")
        else:
            parts.append(f"{head}: {pair}, no significant difference at {ALPHA}{ranks}.")
    return " ".join(parts)


def _nemenyi_separates(result: FriedmanResult, a: str, b: str) -> bool | None:
    """Whether the mean ranks of ``a`` and ``b`` lie further apart than the Nemenyi critical
    difference, read only after a significant Friedman test (False after a Friedman p >=
    ``ALPHA``; None: no Friedman test, no ranks for both, or no critical difference)."""
    ranks = result.mean_ranks
    if not result.tested or a not in ranks or b not in ranks or math.isnan(result.cd):
        return None
    if result.tested and result.p_value >= ALPHA:
        return False
    return abs(float(ranks[a]) - float(ranks[b])) > result.cd


def _nemenyi_clause(result: FriedmanResult, a: str, b: str) -> str:
    """``; rank gap g is inside / beyond the Nemenyi critical difference CD (mean ranks …)``,
    or nothing when the ranks of the pair are not known."""
    separated = _nemenyi_separates(result, a, b)
    if separated is None:
        return ""
    if result.tested and result.p_value >= ALPHA:
        return ("; the Friedman test finds no difference among the ranks, so no Nemenyi "
                "post-hoc comparison separates them")
    gap = abs(float(result.mean_ranks[a]) - float(result.mean_ranks[b]))
    where = "beyond" if separated else "inside"
    verdict = "separates them" if separated else "does not separate them"
    return (f"; their rank gap {fmt(gap, 3)} (mean ranks {fmt(result.mean_ranks[a], 3)} and "
            f"{fmt(result.mean_ranks[b], 3)}) is {where} the critical difference "
            f"{fmt(result.cd, 3)}, so the Nemenyi test {verdict}")
