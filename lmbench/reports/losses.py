"""Report section: which loss LM should minimise on classification (MSE on a softmax head,
cross-entropy through its generalised Gauss-Newton rows, or the square-root trick).

Runs: FINISHED or not, method ``lm`` on a classification task with a ``loss`` tag (the resolved
``trainer.loss``). The section is built only when those runs hold more than one loss.

Statistics (all from the store's scalar metrics):

* per dataset × loss: mean ± std over seeds of test accuracy, test log-loss, epochs and
  training time; failed runs are counted, never averaged;
* paired comparison of two losses on a quantity: one pair per (dataset, seed) where both
  runs FINISHED with a finite value (duplicates of a pair are averaged). The difference is
  ``a - b``; a *win* of ``a`` is a pair where ``a`` is better (higher accuracy, lower log-loss),
  a *tie* a difference within ``TIE_TOL``. Test: two-sided Wilcoxon signed-rank on the
  differences (zeros dropped, scipy's default). With fewer than ``MIN_PAIRS`` non-zero
  differences no two-sided p below 0.05 is possible (exact p >= 2 / 2**n), so the test is
  not run and the section says n is too small. The p-values of every comparison in the
  section are Holm-adjusted together; a difference is called at ``ALPHA`` on the adjusted p.
  Tests, Holm and the constants are ``lmbench.reports.statistics``'.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lmbench.reports.document import Section
from lmbench.reports.figures import report_style, subplots
from lmbench.reports.numbers import fmt, fmt_mean_std
from lmbench.reports.statistics import ALPHA, MIN_PAIRS, holm, signed_rank
from lmbench.reports.tables import Cell, Table, bold_best
from lmbench.tracking.schema import (
    METHOD_LM,
    METRIC_EPOCHS,
    METRIC_TRAIN_TIME,
    TAG_LOSS,
    TAG_STOP_REASON,
    metric_column,
    tag_column,
    test_metric,
)

LOSS_COLUMN = tag_column(TAG_LOSS)
STOP_COLUMN = tag_column(TAG_STOP_REASON)
#: Short names of the engine's stop reasons in the tables.
STOP_LABELS = {"validation_patience": "patience", "mu_max": "μ_max"}
#: Display order of the losses (others follow alphabetically).
LOSS_ORDER = ("mse", "cross_entropy", "sqrt_cross_entropy", "bce", "huber")
#: quantity -> (run-table column, label, higher is better; None: not compared).
QUANTITIES: dict[str, tuple[str, str, bool | None]] = {
    "accuracy": (metric_column(test_metric("accuracy")), "test accuracy", True),
    "log_loss": (metric_column(test_metric("log_loss")), "test log-loss", False),
    "epochs": (metric_column(METRIC_EPOCHS), "epochs", None),
    "train_time_s": (METRIC_TRAIN_TIME, "train time (s)", None),
}
COMPARED = ("accuracy", "log_loss")


def _ordered(losses: object) -> list[str]:
    names = sorted({str(v) for v in losses})  # type: ignore[attr-defined]
    return [n for n in LOSS_ORDER if n in names] + [n for n in names if n not in LOSS_ORDER]


def loss_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per LM classification run with a loss tag: ids, status and the quantities."""
    columns = ["run_id", "dataset", "loss", "seed", "status", "stop_reason", *QUANTITIES]
    if runs.empty or LOSS_COLUMN not in runs:
        return pd.DataFrame(columns=columns)
    lm = runs[(runs["method"] == METHOD_LM) & (runs["task"] != "regression")
              & runs[LOSS_COLUMN].notna() & (runs[LOSS_COLUMN].astype(str) != "")]
    table = pd.DataFrame({
        "run_id": lm["run_id"], "dataset": lm["dataset"],
        "loss": lm[LOSS_COLUMN].astype(str), "seed": lm["seed"], "status": lm["status"],
        "stop_reason": (lm[STOP_COLUMN] if STOP_COLUMN in lm else pd.Series(
            None, index=lm.index, dtype=object)).fillna("").astype(str),
    })
    for key, (column, _, _) in QUANTITIES.items():
        values = lm[column] if column in lm else pd.Series(math.nan, index=lm.index)
        table[key] = pd.to_numeric(values, errors="coerce")
    return table.sort_values(["dataset", "loss", "seed", "run_id"], kind="stable").reset_index(
        drop=True)


def has_loss_comparison(runs: pd.DataFrame) -> bool:
    """Whether the runs hold LM classification runs with more than one loss."""
    return loss_table(runs)["loss"].nunique() > 1


def summarize_losses(table: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, loss): n finished, n not finished, and mean/std of every quantity."""
    rows = []
    for (dataset, loss), group in table.groupby(["dataset", "loss"], sort=True):
        ok = group[group["status"] == "FINISHED"]
        row: dict[str, object] = {"dataset": dataset, "loss": loss, "n": len(ok),
                                  "n_failed": len(group) - len(ok)}
        for key in QUANTITIES:
            values = ok[key].dropna()
            row[f"{key}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        row["stops"] = stop_counts(ok["stop_reason"])
        rows.append(row)
    return pd.DataFrame(rows)


def stop_counts(reasons: pd.Series) -> str:
    """``"2 patience, 1 μ_max"``: why the runs stopped, most frequent first."""
    counts = reasons[reasons != ""].value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} {STOP_LABELS.get(str(r), str(r))}" for r, n in ordered) or "–"


@dataclass(frozen=True)
class Paired:
    """``a`` against ``b`` on one quantity over (dataset, seed) pairs."""

    quantity: str
    a: str
    b: str
    n: int
    mean_diff: float
    std_diff: float
    wins: int
    ties: int
    losses: int
    p_value: float
    p_holm: float = math.nan

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p_value)

    @property
    def significant(self) -> bool:
        return self.tested and self.p_holm < ALPHA


def paired(table: pd.DataFrame, a: str, b: str, quantity: str) -> Paired:
    """Paired differences ``a - b`` of ``quantity`` and their Wilcoxon signed-rank test."""
    higher = QUANTITIES[quantity][2]
    ok = table[(table["status"] == "FINISHED") & table[quantity].notna()]
    ok = ok[np.isfinite(ok[quantity].astype(float))]
    wide = ok.pivot_table(index=["dataset", "seed"], columns="loss", values=quantity,
                          aggfunc="mean")
    if a not in wide or b not in wide:
        return Paired(quantity, a, b, 0, math.nan, math.nan, 0, 0, 0, math.nan)
    diff = (wide[a] - wide[b]).dropna().to_numpy(dtype=float)
    test = signed_rank(diff, bool(higher))
    return Paired(
        quantity, a, b, test.n,
        float(diff.mean()) if len(diff) else math.nan,
        float(diff.std(ddof=1)) if len(diff) > 1 else math.nan,
        test.wins, test.ties, test.losses, test.p_value,
    )


def paired_comparisons(table: pd.DataFrame) -> list[Paired]:
    """Every pair of losses on accuracy and log-loss, Holm-adjusted together."""
    losses = _ordered(table["loss"].unique())
    raw = [paired(table, a, b, q) for q in COMPARED for a, b in itertools.combinations(losses, 2)]
    adjusted = holm([r.p_value for r in raw])
    return [Paired(**{**r.__dict__, "p_holm": p}) for r, p in zip(raw, adjusted, strict=True)]


def overall_means(table: pd.DataFrame) -> pd.DataFrame:
    """Per loss, the mean of each quantity over its finished runs (all datasets and seeds)."""
    ok = table[table["status"] == "FINISHED"]
    rows = []
    for loss in _ordered(table["loss"].unique()):
        mine = ok[ok["loss"] == loss]
        rows.append({"loss": loss, "n": len(mine), "stops": stop_counts(mine["stop_reason"]),
                     **{key: float(mine[key].mean()) for key in QUANTITIES}})
    return pd.DataFrame(rows)


def verdict(result: Paired) -> str:
    """One plain sentence on a paired comparison."""
    label = QUANTITIES[result.quantity][1]
    head = (f"{label}, `{result.a}` − `{result.b}`: mean paired difference "
            f"{fmt(result.mean_diff, 3)} over {result.n} dataset×seed pairs "
            f"(wins/ties/losses of `{result.a}`: {result.wins}/{result.ties}/{result.losses})")
    if not result.tested:
        return (head + f"; fewer than {MIN_PAIRS} non-tied pairs, n is too small to call "
                "anything.")
    tail = (f"; Wilcoxon signed-rank p = {fmt(result.p_value, 2)} "
            f"(Holm-adjusted {fmt(result.p_holm, 2)})")
    if not result.significant:
        return head + tail + f": no significant difference at {ALPHA}."
    higher = QUANTITIES[result.quantity][2]
    winner = result.a if (result.mean_diff > 0) == bool(higher) else result.b
    return head + tail + f": `{winner}` is better at {ALPHA}."


def losses_section(runs: pd.DataFrame) -> Section | None:
    """The loss comparison, or None when the runs hold fewer than two losses."""
    table = loss_table(runs)
    if table["loss"].nunique() < 2:
        return None
    section = Section("losses", "The loss LM minimises (classification)")
    losses = _ordered(table["loss"].unique())
    summary = summarize_losses(table)
    section.text(
        "LM runs on classification datasets grouped by the loss they minimised (tag `loss`): "
        "`mse` = softmax head with squared error on one-hot targets (the original library's "
        "way), `cross_entropy` = softmax cross-entropy through its exact generalised "
        "Gauss-Newton rows, `sqrt_cross_entropy` = one residual √CE per sample (the "
        "square-root trick of torch-levenberg-marquardt). Everything else (model, damping, "
        "patience, splits) is fixed by the experiment. Cells: mean ± std over seeds (finished "
        "runs; n in brackets); the best mean of each dataset is bold for accuracy (higher is "
        "better) and log-loss (lower is better). Log-loss is on probabilities clipped to "
        "[1e-15, 1]; epochs are LM epochs run until validation patience or `max_epochs`; time "
        "is the wall time of `fit` in seconds; *stopped by* counts the runs' stop reasons (tag "
        "`stop_reason`: validation patience, μ reaching `mu_max`, validation loss below "
        "`min_error`, `max_epochs`)."
    )
    section.table(_summary_table(summary, losses, section))
    section.table(_overall_table(overall_means(table)))
    comparisons = paired_comparisons(table)
    section.table(_paired_table(comparisons))
    section.text(_headline(table, comparisons))
    section.text("\n".join(f"- {verdict(c)}" for c in comparisons))
    section.figure("losses_by_dataset",
                   "Test accuracy, test log-loss, epochs and train time per dataset and loss "
                   "(mean ± std over seeds).", _figure(summary, losses))
    for _, run in table.iterrows():
        section.cite(run["run_id"], TAG_LOSS, run["loss"])
        section.cite(run["run_id"], TAG_STOP_REASON, run["stop_reason"])
        if run["status"] != "FINISHED":
            continue
        for key, (column, _, _) in QUANTITIES.items():
            section.cite(run["run_id"], column.removeprefix("metrics."), run[key])
    return section


def _headline(table: pd.DataFrame, comparisons: list[Paired]) -> str:
    """Per compared quantity: the loss with the best overall mean and its paired margin over
    each other loss (sign turned so that a positive margin favours the best loss)."""
    means = overall_means(table).set_index("loss")
    lines = ["**Summary.**"]
    for quantity in COMPARED:
        label, higher = QUANTITIES[quantity][1], bool(QUANTITIES[quantity][2])
        if not means[quantity].notna().any():
            lines.append(f"No finished run has a {label}.")
            continue
        best = str(means[quantity].idxmax() if higher else means[quantity].idxmin())
        parts = []
        for c in comparisons:
            if c.quantity != quantity or best not in (c.a, c.b):
                continue
            other = c.b if c.a == best else c.a
            sign = 1.0 if c.a == best else -1.0
            margin = sign * c.mean_diff * (1.0 if higher else -1.0)
            wtl = (c.wins, c.ties, c.losses) if c.a == best else (c.losses, c.ties, c.wins)
            test = (f"Wilcoxon p = {fmt(c.p_value, 2)}, Holm {fmt(c.p_holm, 2)}, "
                    + ("significant" if c.significant else "not significant")
                    + f" at {ALPHA}") if c.tested else "n too small to test"
            parts.append(f"by {fmt(margin, 3)} over `{other}` (W/T/L {wtl[0]}/{wtl[1]}/"
                         f"{wtl[2]} over {c.n} pairs; {test})")
        lines.append(f"Best mean {label}: `{best}` ({fmt(means.at[best, quantity], 4)}), "
                     + "; ".join(parts) + ".")
    if not any(c.tested for c in comparisons):
        lines.append("No comparison has enough non-tied dataset×seed pairs for a test: n is "
                     "too small to call anything.")
    elif not any(c.significant for c in comparisons):
        lines.append(f"No paired difference is significant at {ALPHA} after Holm adjustment "
                     "over all comparisons in this section.")
    lines.append("Sections on sensitivity and dynamics (where shown) pool these runs over "
                 "the losses, and each run's `val_loss` is in its own loss.")
    return " ".join(lines)


def _summary_table(summary: pd.DataFrame, losses: list[str], section: Section) -> Table:
    table = Table("losses_by_dataset",
                  "LM by loss: test accuracy, test log-loss, epochs and train time (s), "
                  "mean ± std over seeds (n).",
                  ["dataset", "loss", "n", "accuracy ↑", "log-loss ↓", "epochs", "time (s)",
                   "stopped by"],
                  align="llrrrrrl")
    for dataset, group in summary.groupby("dataset", sort=True):
        group = group.set_index("loss").reindex(losses)
        bold = {q: dict(zip(losses, bold_best(list(group[f"{q}_mean"]),
                                               bool(QUANTITIES[q][2])), strict=True))
                for q in COMPARED}
        for loss in losses:
            row = group.loc[loss]
            if pd.isna(row["n"]):
                section.missing.append(("losses", f"`{dataset}` loss `{loss}`: no runs"))
                continue
            failed = int(row["n_failed"])
            if failed:
                section.missing.append(("losses", f"`{dataset}` loss `{loss}`: {failed} "
                                                  "runs not finished"))
            n = f"{int(row['n'])}" + (f" ({failed} failed)" if failed else "")
            cells: list[Cell | str] = [dataset, loss, n]
            for key, digits in (("accuracy", 4), ("log_loss", 3), ("epochs", 3),
                                ("train_time_s", 2)):
                text = fmt_mean_std(row[f"{key}_mean"], row[f"{key}_std"], digits)
                cells.append(Cell(text, bold[key][loss]) if key in bold else text)
            table.add([*cells, row["stops"]])
    return table


def _overall_table(means: pd.DataFrame) -> Table:
    table = Table("losses_overall",
                  "LM by loss: means over every finished run (all datasets and seeds).",
                  ["loss", "runs", "accuracy ↑", "log-loss ↓", "epochs", "time (s)",
                   "stopped by"],
                  align="lrrrrrl")
    bold = {q: bold_best(list(means[q]), bool(QUANTITIES[q][2])) for q in COMPARED}
    for i, row in means.reset_index(drop=True).iterrows():
        table.add([row["loss"], str(int(row["n"])),
                   Cell(fmt(row["accuracy"], 4), bold["accuracy"][i]),
                   Cell(fmt(row["log_loss"], 3), bold["log_loss"][i]),
                   fmt(row["epochs"], 3), fmt(row["train_time_s"], 2), row["stops"]])
    return table


def _paired_table(comparisons: list[Paired]) -> Table:
    table = Table("losses_paired",
                  "Paired differences a − b over dataset×seed pairs, wins/ties/losses of a, "
                  "Wilcoxon signed-rank p (raw and Holm-adjusted).",
                  ["quantity", "a", "b", "pairs", "mean a − b", "std", "W/T/L", "p", "p Holm"],
                  align="lllrrrrrr")
    table.notes.append(f"Tests need at least {MIN_PAIRS} non-tied pairs; – means n is too "
                       "small to test.")
    for c in comparisons:
        table.add([QUANTITIES[c.quantity][1], c.a, c.b, str(c.n), fmt(c.mean_diff, 3),
                   fmt(c.std_diff, 2), f"{c.wins}/{c.ties}/{c.losses}", fmt(c.p_value, 2),
                   Cell(fmt(c.p_holm, 2), c.significant)])
    return table


def _figure(summary: pd.DataFrame, losses: list[str]) -> Figure:
    datasets = sorted(summary["dataset"].unique())
    x = np.arange(len(datasets))
    width = 0.8 / len(losses)
    panels = (("accuracy", "test accuracy (fraction correct)", False),
              ("log_loss", "test log-loss (nats per sample)", False),
              ("epochs", "epochs to stop", False),
              ("train_time_s", "train time (s, log scale)", True))
    with report_style():
        fig, axes = subplots(2, 2, figsize=(9.0, 6.0), constrained_layout=True)
        for ax, (key, label, log) in zip(axes.ravel(), panels, strict=True):
            for k, loss in enumerate(losses):
                rows = summary[summary["loss"] == loss].set_index("dataset").reindex(datasets)
                ax.errorbar(x + (k - (len(losses) - 1) / 2) * width, rows[f"{key}_mean"],
                            yerr=rows[f"{key}_std"].fillna(0.0), fmt="o", ms=4, capsize=2,
                            label=loss)
            ax.set_xticks(x, datasets, rotation=30, ha="right")
            ax.set_xlabel("dataset")
            ax.set_ylabel(label)
            if log:
                ax.set_yscale("log")
            ax.grid(axis="y", alpha=0.3)
        axes[0, 0].legend(title="loss")
    return fig
