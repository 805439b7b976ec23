"""Report section 2: sensitivity of LM to ``mu_init`` × ``demping_coef`` and to the width.

Runs: method ``lm`` with a ``trainer.mu_init`` param (single-configuration LM jobs, e.g. the
``lm_sweep`` or ``quick`` experiments). The value of a run is its validation loss (the loss
the run minimised, its ``loss`` tag: MSE, cross-entropy, ..., on the validation split) for the
weights it returned: at ``best_epoch`` when validation patience restored the best weights, else
at the last epoch — the ``best_val_loss`` metric where the run logged it, else read from the
``val_loss`` history. The table and figures name that loss. A dataset whose runs logged no
validation loss, or minimised different losses (values that cannot be averaged), uses the
primary test metric instead, and the table says so. A cell is the mean over the runs in it
(seeds and the other swept settings).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from lmbench.reports.document import Section
from lmbench.reports.figures import report_style, subplots
from lmbench.reports.labels import (
    DAMPING_COEF_LABEL,
    MU_INIT_LABEL,
    run_loss_label,
    spans_decades,
    width_label,
)
from lmbench.reports.numbers import fmt
from lmbench.reports.tables import Cell, Table, bold_best
from lmbench.tracking.schema import (
    METHOD_LM,
    METRIC_BEST_EPOCH,
    METRIC_BEST_VAL_LOSS,
    PARAM_DAMPING_COEF,
    PARAM_HIDDEN,
    PARAM_MU_INIT,
    SERIES_VAL_LOSS,
    metric_column,
    param_column,
    test_metric,
)

HistoryLoader = Callable[[Sequence[str], Sequence[str]], dict[str, dict[str, pd.Series]]]

MU = param_column(PARAM_MU_INIT)
DAMPING = param_column(PARAM_DAMPING_COEF)
WIDTH = param_column(PARAM_HIDDEN)
#: Prefix of the ``value`` column for a validation loss: ``val `` + the loss with its unit.
VAL_PREFIX = "val "
#: Characters per line of a colour bar's label: wrapped to stay beside its own panel.
COLORBAR_LABEL_WIDTH = 24


def _width_key(label: str) -> tuple[int, list[float], str]:
    parts = label.split("-")
    try:
        return (len(parts), [float(p) for p in parts], label)
    except ValueError:
        return (len(parts), [], label)


def sensitivity_values(runs: pd.DataFrame, load_histories: HistoryLoader) -> pd.DataFrame:
    """One row per LM run: dataset, status, mu, damping, width, value and what the value is."""
    if MU not in runs:
        return pd.DataFrame()
    lm = runs[(runs["method"] == METHOD_LM) & runs[MU].notna()].copy()
    if lm.empty:
        return pd.DataFrame()
    lm["mu"] = pd.to_numeric(lm[MU], errors="coerce")
    lm["damping"] = pd.to_numeric(lm.get(DAMPING), errors="coerce")
    lm["width"] = [width_label(v) for v in lm.get(WIDTH, pd.Series("?", index=lm.index))]
    finished = lm[lm["status"] == "FINISHED"]
    histories = load_histories(list(finished["run_id"]), [SERIES_VAL_LOSS])
    val = []
    for _, run in lm.iterrows():
        series = histories.get(run["run_id"], {}).get(SERIES_VAL_LOSS)
        logged = run.get(metric_column(METRIC_BEST_VAL_LOSS))  # the returned weights' value
        val.append(float(logged) if logged is not None and not pd.isna(logged) else
                   _returned_value(series, run.get(metric_column(METRIC_BEST_EPOCH))))
    lm["val_value"] = val
    lm["value"] = math.nan
    lm["quantity"] = ""
    lm["is_val_loss"] = False
    for _, group in lm.groupby("dataset", sort=True):
        ok = group[group["status"] == "FINISHED"]
        losses = {run_loss_label(run) for _, run in ok.iterrows()}
        use_val = not ok.empty and ok["val_value"].notna().all() and len(losses) == 1
        idx = group.index
        lm.loc[idx, "is_val_loss"] = use_val
        if use_val:
            lm.loc[idx, "value"] = group["val_value"]
            lm.loc[idx, "quantity"] = VAL_PREFIX + losses.pop()
        else:
            lm.loc[idx, "value"] = group["primary_value"]
            lm.loc[idx, "quantity"] = f"test {group['primary_metric'].iloc[0]}"  # as shown
        lm.loc[idx, "higher_is_better"] = (not use_val) and bool(
            group["higher_is_better"].iloc[0]
        )
    lm.loc[lm["status"] != "FINISHED", "value"] = math.nan
    return lm


def _returned_value(series: pd.Series | None, best_epoch: object) -> float:
    if series is None or series.empty:
        return math.nan
    if best_epoch is not None and not pd.isna(best_epoch) and int(best_epoch) in series.index:
        return float(series.loc[int(best_epoch)])
    return float(series.iloc[-1])


def sensitivity_section(runs: pd.DataFrame, load_histories: HistoryLoader) -> Section:
    """Heatmaps and tables of the validation loss over mu_init × demping_coef and width."""
    section = Section("sensitivity", "Hyper-parameter sensitivity of LM")
    values = sensitivity_values(runs, load_histories)
    if values.empty:
        section.text(
            "No single-configuration LM runs (method `lm` with a `trainer.mu_init` param) in "
            "these experiments; run `lmbench-run +experiment=lm_sweep` to produce them."
        )
        section.missing.append(("sensitivity", "no LM sweep runs"))
        return section
    section.text(
        "Value per run: the validation loss of the weights the run returned (at `best_epoch` "
        "when validation patience restored them, else the last epoch), read from its "
        "`val_loss` history; lower is better. It is the loss the run minimised, computed on "
        "the validation split, and the `value` column names it with its unit (`val MSE`, "
        "`val cross-entropy`, ...). Where a dataset's runs logged no validation loss, or "
        "minimised different losses, the primary test metric is used and the `value` column "
        "says so. Each cell is the mean over its runs (seeds and the settings not on the "
        "axes), with the number of runs in brackets; the best cell of each dataset is bold."
    )
    for axes, name, caption in (
        (("mu", "damping"), "sensitivity_mu_damping", "μ_init × demping_coef"),
        (("width", "mu"), "sensitivity_width", "hidden widths × μ_init"),
    ):
        table, figure = _grid(values, axes, name, caption, section)
        section.table(table)
        section.figure(name, f"Sensitivity over {caption}, one panel per dataset.", figure)
    for _, run in values.iterrows():
        if run["status"] != "FINISHED":
            continue
        section.cite(run["run_id"], MU, run["mu"])
        section.cite(run["run_id"], DAMPING, run["damping"])
        section.cite(run["run_id"], WIDTH, run["width"])
        quantity = f"{SERIES_VAL_LOSS}_returned" if run["is_val_loss"] else (
            test_metric(run["quantity"].removeprefix("test ")))
        section.cite(run["run_id"], quantity, run["value"])
    return section


def _axis_values(values: pd.Series, axis: str) -> list:
    unique = [v for v in values.dropna().unique()]
    if axis == "width":
        return sorted(unique, key=_width_key)
    return sorted(unique)


def _axis_text(axis: str, value: object) -> str:
    if axis == "width":
        return str(value)
    return fmt(float(value), 4)  # type: ignore[arg-type]


def _grid(
    values: pd.DataFrame, axes: tuple[str, str], name: str, caption: str, section: Section
) -> tuple[Table, Figure]:
    row_axis, col_axis = axes
    labels = {"mu": "μ_init", "damping": "demping_coef", "width": "width"}
    columns = _axis_values(values[col_axis], col_axis)
    table = Table(
        name,
        f"LM sensitivity over {caption}: mean value per cell (runs).",
        ["dataset", "value", labels[row_axis],
         *[f"{labels[col_axis]}={_axis_text(col_axis, c)}" for c in columns]],
        align="lll" + "r" * len(columns),
    )
    datasets = sorted(values["dataset"].unique())
    panels: list[tuple[str, list, list, np.ndarray, str]] = []
    for dataset in datasets:
        group = values[values["dataset"] == dataset]
        rows = _axis_values(group[row_axis], row_axis)
        cols_here = _axis_values(group[col_axis], col_axis)
        grid = np.full((len(rows), len(cols_here)), np.nan)
        counts = np.zeros_like(grid, dtype=int)
        failed = np.zeros_like(grid, dtype=int)
        for i, r in enumerate(rows):
            for j, c in enumerate(cols_here):
                cell = group[(group[row_axis] == r) & (group[col_axis] == c)]
                ok = cell[cell["status"] == "FINISHED"]["value"].dropna()
                counts[i, j] = len(ok)
                failed[i, j] = len(cell) - len(ok)
                if len(ok):
                    grid[i, j] = float(ok.mean())
        higher = bool(group["higher_is_better"].iloc[0])
        flat_bold = bold_best(list(grid.ravel()), higher)
        bold = np.array(flat_bold, dtype=bool).reshape(grid.shape)
        quantity = group["quantity"].iloc[0]
        for i, r in enumerate(rows):
            cells: list[Cell | str] = [dataset, quantity, _axis_text(row_axis, r)]
            for c in columns:
                if c not in cols_here:
                    cells.append("–")
                    continue
                j = cols_here.index(c)
                if counts[i, j] == 0:
                    state = "failed" if failed[i, j] else "missing"
                    cells.append(Cell(state))
                    section.missing.append((
                        "sensitivity",
                        f"`{dataset}` {labels[row_axis]}={_axis_text(row_axis, r)}, "
                        f"{labels[col_axis]}={_axis_text(col_axis, c)}: {state}",
                    ))
                    continue
                text = f"{fmt(grid[i, j], 4)} ({counts[i, j]}"
                text += f", {failed[i, j]} failed)" if failed[i, j] else ")"
                cells.append(Cell(text, bool(bold[i, j])))
            table.add(cells)
        panels.append((dataset, rows, cols_here, grid, quantity))
    axis_labels = {"mu": MU_INIT_LABEL, "damping": DAMPING_COEF_LABEL,
                   "width": "hidden layer widths"}
    return table, _heatmaps(panels, axis_labels[row_axis], axis_labels[col_axis], row_axis,
                            col_axis)


def colorbar_label(quantity: str, log_scale: bool) -> str:
    """A heatmap's colour-bar label: the quantity with its unit (``val MSE ...`` ->
    ``validation MSE ...``), wrapped to ``COLORBAR_LABEL_WIDTH`` characters a line so that it
    stays within its panel's height instead of running into the next panel."""
    label = ("validation " + quantity.removeprefix(VAL_PREFIX)
             if quantity.startswith(VAL_PREFIX) else quantity)
    label += ", log scale" if log_scale else ""
    return textwrap.fill(label, COLORBAR_LABEL_WIDTH, break_on_hyphens=False)


def _heatmaps(
    panels: list[tuple[str, list, list, np.ndarray, str]],
    row_label: str, col_label: str, row_axis: str, col_axis: str,
) -> Figure:
    n = len(panels)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    with report_style():
        fig, axes = subplots(
            nrows, ncols, figsize=(3.4 * ncols, 2.8 * nrows), squeeze=False,
            constrained_layout=True,
        )
        for ax, (dataset, rows, cols, grid, quantity) in zip(axes.ravel(), panels, strict=False):
            masked = np.ma.masked_invalid(grid)
            finite = grid[np.isfinite(grid)]
            norm = (LogNorm(vmin=finite.min(), vmax=finite.max())
                    if spans_decades(finite) else None)  # values spanning decades: log colours
            image = ax.imshow(masked, cmap="viridis_r", aspect="auto", norm=norm)
            ax.set_xticks(range(len(cols)), [_axis_text(col_axis, c) for c in cols])
            ax.set_yticks(range(len(rows)), [_axis_text(row_axis, r) for r in rows])
            ax.set_xlabel(col_label)
            ax.set_ylabel(row_label)
            ax.set_title(dataset)
            middle = (float(np.sqrt(finite.min() * finite.max())) if norm is not None
                      else float(np.mean([finite.min(), finite.max()])) if finite.size else 0.0)
            for i in range(grid.shape[0]):
                for j in range(grid.shape[1]):
                    value = grid[i, j]
                    text = "n/a" if math.isnan(value) else fmt(value, 3)
                    dark = not math.isnan(value) and value > middle  # viridis_r: high = dark
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
            fig.colorbar(image, ax=ax, label=colorbar_label(quantity, norm is not None))
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
    return fig
