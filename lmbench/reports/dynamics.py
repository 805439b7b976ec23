"""Report section 3: training dynamics rebuilt from the per-epoch metric histories in the store.

For each dataset the *representative* LM run is the FINISHED run (with a ``train_loss``
history) whose primary test value is the median of them (the lower median for an even count,
ties by run id); its ``train_loss``, ``val_loss``, ``mu`` and ``epoch_time_s`` histories are
drawn with the seed's four-panel ``plot_train_report``. Where Adam runs exist too, the
representative Adam run's loss is drawn against cumulative epoch time beside LM's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from lmbench.plotting import plot_train_report
from lmbench.reports.document import Section
from lmbench.reports.figures import report_style, subplots
from lmbench.reports.labels import MU_LABEL, run_loss_label
from lmbench.reports.numbers import fmt, fmt_int
from lmbench.reports.tables import Table
from lmbench.tracking.schema import (
    METHOD_ADAM,
    METHOD_LM,
    METRIC_BEST_VAL_LOSS,
    METRIC_EPOCHS,
    PARAM_DAMPING_COEF,
    PARAM_HIDDEN,
    PARAM_MU_INIT,
    SERIES_EPOCH_TIME,
    SERIES_MU,
    SERIES_TRAIN_LOSS,
    SERIES_VAL_LOSS,
    TAG_STOP_REASON,
    metric_column,
    param_column,
    tag_column,
    test_metric,
)

HistoryLoader = Callable[[Sequence[str], Sequence[str]], dict[str, dict[str, pd.Series]]]
HISTORY_KEYS = (SERIES_TRAIN_LOSS, SERIES_VAL_LOSS, SERIES_MU, SERIES_EPOCH_TIME)


def representative_runs(
    runs: pd.DataFrame, method: str, histories: dict[str, dict[str, pd.Series]]
) -> dict[str, pd.Series]:
    """Per dataset, the FINISHED run of ``method`` with the median primary value (see module)."""
    chosen: dict[str, pd.Series] = {}
    ok = runs[(runs["method"] == method) & (runs["status"] == "FINISHED")]
    for dataset, group in ok.groupby("dataset", sort=True):
        group = group[[bool(histories.get(r, {}).get(SERIES_TRAIN_LOSS) is not None)
                       for r in group["run_id"]]]
        if group.empty:
            continue
        # ties broken by the run name (it carries the config digest), so a rerun of the same
        # sweep picks the same configuration; the run ID only separates exact repeats
        name = tag_column("mlflow.runName")
        names = group[name] if name in group else pd.Series("", index=group.index)
        ordered = group.assign(_v=group["primary_value"].fillna(np.inf), _n=names.fillna("")
                               ).sort_values(["_v", "_n", "run_id"], kind="stable")
        chosen[str(dataset)] = ordered.iloc[(len(ordered) - 1) // 2]
    return chosen


def seed_history(series: dict[str, pd.Series]) -> dict[str, list[float]]:
    """The seed's ``{"loss", "val", "mu", "time"}`` from metric histories (step = epoch)."""
    loss = series[SERIES_TRAIN_LOSS].sort_index()
    steps = loss.index
    time = series.get(SERIES_EPOCH_TIME, pd.Series(dtype=float)).reindex(steps).fillna(0.0)
    mu = series.get(SERIES_MU, pd.Series(dtype=float)).sort_index()
    val = series.get(SERIES_VAL_LOSS, pd.Series(dtype=float)).sort_index()
    return {
        "loss": loss.tolist(),
        "val": val.tolist(),
        "mu": mu.tolist(),
        "time": time.tolist(),
    }


def _settings(run: pd.Series) -> str:
    parts = []
    for key, label in ((PARAM_MU_INIT, "μ_init"), (PARAM_DAMPING_COEF, "demping_coef"),
                       (PARAM_HIDDEN, "hidden")):
        value = run.get(param_column(key))
        if isinstance(value, str):
            parts.append(f"{label}={value}")
    return ", ".join(parts) or "–"


def dynamics_section(runs: pd.DataFrame, load_histories: HistoryLoader) -> Section:
    """Four-panel reports of representative LM runs, and LM vs Adam loss against time."""
    section = Section("dynamics", "Training dynamics")
    candidates = runs[runs["method"].isin([METHOD_LM, METHOD_ADAM])
                      & (runs["status"] == "FINISHED")]
    histories = load_histories(list(candidates["run_id"]), list(HISTORY_KEYS))
    lm = representative_runs(runs, METHOD_LM, histories)
    if not lm:
        section.text("No finished LM run with a per-epoch `train_loss` history in these "
                     "experiments.")
        section.missing.append(("dynamics", "no LM run with per-epoch histories"))
        return section
    section.text(
        "Representative run per dataset: the finished LM run whose primary test value is the "
        "median of that dataset's LM runs. Panels as the seed's training report: training and "
        "validation loss (the loss LM minimised, named on the axis) per epoch and per "
        "cumulative epoch time, μ per epoch and per time; epoch 0 is the state before the "
        "first step. Rebuilt from the store's metric histories (`train_loss`, `val_loss`, "
        "`mu`, `epoch_time_s`). In the table, *val loss (returned weights)* is the run's "
        "`best_val_loss` (the weights it returned, restored at the best epoch under "
        "patience); ‡ marks runs that did not log it, where the last epoch's value is shown. "
        "*Total epoch time* is the sum of the per-epoch times."
    )
    table = Table(
        "dynamics_runs",
        "Representative LM runs: settings, epochs, why they stopped, final values.",
        ["dataset", "run id", "settings", "epochs", "stop reason", "final train loss",
         "val loss (returned weights)", "final μ", "total epoch time s", "test metric"],
        align="lllrlrrrrl",
    )
    for dataset, run in lm.items():
        series = histories[run["run_id"]]
        data = seed_history(series)
        with report_style():
            figure = plot_train_report(data)
            figure.set_size_inches(8.5, 5.5)  # the seed's 11 x 7 in, smaller for the report
            loss_axis = run_loss_label(run)
            for ax, ylabel in zip(figure.axes, (loss_axis, loss_axis, MU_LABEL, MU_LABEL),
                                  strict=False):
                ax.set_ylabel(ylabel + " (log scale)" if ax.get_yscale() == "log" else ylabel)
            for ax in figure.axes[1::2]:
                ax.set_xlabel("cumulative epoch time, s")
        figure.suptitle(f"LM on {dataset} (run {run['run_id'][:8]}; {_settings(run)})")
        stem = f"dynamics_{_slug(dataset)}"
        section.figure(stem, f"LM training report, {dataset} (run {run['run_id']}).", figure)
        total_time = float(sum(data["time"]))
        best_val = run.get(metric_column(METRIC_BEST_VAL_LOSS))
        if best_val is not None and not pd.isna(best_val):
            val_text = fmt(float(best_val), 4)
            section.cite(run["run_id"], METRIC_BEST_VAL_LOSS, float(best_val))
        else:
            val_text = fmt(data["val"][-1], 4) + "‡" if data["val"] else "–"
        table.add([
            dataset, run["run_id"][:12], _settings(run), str(len(data["loss"]) - 1),
            str(run.get(tag_column(TAG_STOP_REASON)) or "–"), fmt(data["loss"][-1], 4),
            val_text,
            fmt(data["mu"][-1] if data["mu"] else math.nan, 3), fmt(total_time, 3),
            f"{run['primary_metric']} {fmt(run['primary_value'], 4)}",
        ])
        for key in HISTORY_KEYS:
            if key in series:
                section.cite(run["run_id"], f"{key}[last of {len(series[key])} steps]",
                             float(series[key].sort_index().iloc[-1]))
        section.cite(run["run_id"], f"{SERIES_EPOCH_TIME}[sum]", total_time)
        section.cite(run["run_id"], test_metric(run["primary_metric"]), run["primary_value"])
    section.table(table)
    _lm_vs_adam(section, runs, histories, lm)
    return section


def _lm_vs_adam(
    section: Section, runs: pd.DataFrame, histories: dict[str, dict[str, pd.Series]],
    lm: dict[str, pd.Series],
) -> None:
    adam = representative_runs(runs, METHOD_ADAM, histories)
    both = [d for d in lm if d in adam]
    if not both:
        section.text(
            "LM vs Adam loss against time: no dataset has finished runs of both `lm` and "
            "`adam` with per-epoch histories in these experiments (add `trainer=adam` runs)."
        )
        section.missing.append(("dynamics", "no Adam runs for the loss-vs-time comparison"))
        return
    section.text(
        "LM vs Adam: training (solid) and validation (dashed) loss of the last epoch's weights "
        "against cumulative epoch time. Adam's curve is its selected tuning trial only (its "
        "other Optuna trials are not on the time axis); its first "
        "point is after one epoch, LM's is the initial state."
    )
    table = Table(
        "lm_vs_adam",
        "LM vs Adam (representative runs): epochs, final losses and total epoch time.",
        ["dataset", "method", "run id", "epochs", "last train loss", "last-epoch val loss",
         "total epoch time s"],
        align="lll" + "r" * 4,
    )
    n = len(both)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    with report_style():
        fig, axes = subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows),
                                 squeeze=False, constrained_layout=True)
        for ax, dataset in zip(axes.ravel(), both, strict=False):
            for method, run, color in ((METHOD_LM, lm[dataset], "tab:blue"),
                                       (METHOD_ADAM, adam[dataset], "tab:orange")):
                series = histories[run["run_id"]]
                loss = series[SERIES_TRAIN_LOSS].sort_index()
                time = series.get(SERIES_EPOCH_TIME, pd.Series(0.0, index=loss.index))
                elapsed = time.reindex(loss.index).fillna(0.0).cumsum()
                ax.plot(elapsed.to_numpy(), loss.to_numpy(), color=color, label=method)
                val = series.get(SERIES_VAL_LOSS)
                if val is not None and not val.empty:
                    val = val.sort_index()
                    ax.plot(elapsed.reindex(val.index).to_numpy(), val.to_numpy(),
                            color=color, linestyle="--")
                table.add([
                    dataset, method, run["run_id"][:12], fmt_int(epochs_run(run, loss)),
                    fmt(float(loss.iloc[-1]), 4),
                    fmt(float(val.iloc[-1]) if val is not None and len(val) else math.nan, 4),
                    fmt(float(elapsed.iloc[-1]), 3),
                ])
                section.cite(run["run_id"], f"{SERIES_TRAIN_LOSS}[last]", float(loss.iloc[-1]))
                section.cite(run["run_id"], f"{SERIES_EPOCH_TIME}[sum]",
                             float(elapsed.iloc[-1]))
            ax.set_yscale("log")
            ax.set_xlabel("cumulative epoch time, s")
            ax.set_ylabel(run_loss_label(lm[dataset]) + " (log scale)")
            ax.set_title(dataset)
            ax.grid(True, alpha=0.3)
            ax.legend(handles=[
                Line2D([], [], color="tab:blue", label=METHOD_LM),
                Line2D([], [], color="tab:orange", label=METHOD_ADAM),
                Line2D([], [], color="black", label="training"),
                Line2D([], [], color="black", linestyle="--", label="validation"),
            ], fontsize=7)
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
    section.table(table)
    section.figure("lm_vs_adam", "Loss against cumulative epoch time, LM vs Adam.", fig)


def epochs_run(run: pd.Series, loss: pd.Series) -> int:
    """Epochs the run trained: its ``epochs`` metric (tuned runs log the selected trial's),
    else counted from its ``train_loss`` history, where LM's step 0 is the state before the
    first epoch and every other method's step 0 is its first epoch (so Adam at its 500-epoch
    cap has steps 0..499 and ran 500 epochs)."""
    logged = run.get(metric_column(METRIC_EPOCHS))
    if logged is not None and not pd.isna(logged):
        return int(logged)
    return len(loss) - 1 if run.get("method") == METHOD_LM else len(loss)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
