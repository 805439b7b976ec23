"""Report sections 4 and 5: measured memory and time against the model and the seed's limits
(runs tagged ``kind=limits``), and epoch time against problem size per implementation (runs
tagged ``kind=performance``).

Schemas (produced by the limits and performance experiments; names in
``lmbench.tracking.schema``):

* limits: tags ``engine`` (in_memory_primal, in_memory_dual, streaming, cache), ``device``;
  params ``n_params``, ``n_rows``, ``n_outputs``, ``chunk_rows``, ``dtype``; metrics
  ``peak_memory_bytes``, ``predicted_memory_bytes``, ``epoch_time_s``, ``predicted_flops``,
  ``time_jacobian_s``, ``time_system_s``, ``time_solve_s``.
* performance: tag ``implementation`` (lmbench, torch_levenberg_marquardt, plain_vmap, floor);
  params ``n_params``, ``n_residuals``; metrics ``epoch_time_s``, ``peak_memory_bytes``,
  ``ratio_to_floor``, ``ratio_to_reference``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lmbench.reports.document import Section
from lmbench.reports.figures import report_style, subplots
from lmbench.reports.tables import Table, fmt, fmt_int
from lmbench.tracking.schema import (
    ENGINES,
    IMPLEMENTATIONS,
    KIND_LIMITS,
    KIND_PERFORMANCE,
    METRIC_EPOCH_TIME,
    METRIC_PEAK_MEMORY,
    METRIC_PREDICTED_FLOPS,
    METRIC_PREDICTED_MEMORY,
    METRIC_RATIO_TO_FLOOR,
    METRIC_RATIO_TO_REFERENCE,
    METRIC_TIME_JACOBIAN,
    METRIC_TIME_SOLVE,
    METRIC_TIME_SYSTEM,
    PARAM_CHUNK_ROWS,
    PARAM_DTYPE,
    PARAM_N_OUTPUTS,
    PARAM_N_PARAMS,
    PARAM_N_RESIDUALS,
    PARAM_N_ROWS,
    SEED_GPU_BYTES,
    SEED_MAX_ROWS,
    SEED_MAX_WEIGHTS,
    TAG_DEVICE,
    TAG_ENGINE,
    TAG_IMPLEMENTATION,
    metric_column,
    param_column,
    tag_column,
)

MIB = 2**20
#: Measured quantities of a limits run, as logged (metric names).
LIMITS_METRICS = (METRIC_PEAK_MEMORY, METRIC_PREDICTED_MEMORY, METRIC_EPOCH_TIME,
                  METRIC_PREDICTED_FLOPS, METRIC_TIME_JACOBIAN, METRIC_TIME_SYSTEM,
                  METRIC_TIME_SOLVE)
#: The size of a limits run's problem (param names).
LIMITS_SIZE = (PARAM_N_PARAMS, PARAM_N_ROWS, PARAM_N_OUTPUTS, PARAM_CHUNK_ROWS)
#: What a performance run logged (metric names).
PERFORMANCE_METRICS = (METRIC_EPOCH_TIME, METRIC_PEAK_MEMORY, METRIC_RATIO_TO_FLOOR,
                       METRIC_RATIO_TO_REFERENCE)


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def _ordered(values: pd.Series, order: tuple[str, ...]) -> list[str]:
    present = {str(v) for v in values.dropna().unique()}
    return [v for v in order if v in present] + sorted(present - set(order))


def _absent(section: Section, experiment: str, kind: str, what: str) -> Section:
    section.text(
        f"No {kind} runs in the store (experiment `{experiment}`, tag `kind={kind}`): "
        f"{what} cannot be shown yet."
    )
    section.missing.append((section.key, f"no `kind={kind}` runs (experiment `{experiment}`)"))
    return section


def _stale_mark(run: pd.Series) -> str:
    return "†" if run.get("code_version") == "other" else ""


# ---------------------------------------------------------------------- section 4: limits
def limits_section(runs: pd.DataFrame, experiment: str = "limits") -> Section:
    """Table and figure of measured vs predicted memory and time, with the seed's limits."""
    section = Section("limits", "Limits: memory and time against the model")
    if runs.empty:
        return _absent(section, experiment, KIND_LIMITS, "measured memory and time")
    ok = runs[runs["status"] == "FINISHED"].copy()
    section.text(
        f"Measured peak memory and epoch time of each engine against the memory model "
        f"(`predicted_memory_bytes`) and the seed's documented limits (≤ {SEED_MAX_WEIGHTS:,} "
        f"weights, ≤ {SEED_MAX_ROWS:,} samples × outputs on a 12 GB GPU). Peak "
        "memory is `peak_memory_bytes` as the limits runs measured it on their device "
        "(`lmbench/limits/`). Runs that did not finish are listed in the run audit."
    )
    if ok.empty:
        section.text("No limits run finished.")
        section.missing.append(("limits", "no finished limits run"))
        return section
    ok["engine"] = ok.get(tag_column(TAG_ENGINE))
    ok["device"] = ok.get(tag_column(TAG_DEVICE))
    for name in LIMITS_SIZE:
        ok[name] = _num(ok, param_column(name))
    ok["dtype"] = ok.get(param_column(PARAM_DTYPE))
    for name in LIMITS_METRICS:
        ok[name] = _num(ok, metric_column(name))
    ok["rows_x_outputs"] = ok["n_rows"] * ok["n_outputs"]
    engines = _ordered(ok["engine"], ENGINES)
    ok["_engine"] = ok["engine"].map({e: i for i, e in enumerate(engines)})
    ok = ok.sort_values(["_engine", "device", "n_params", "rows_x_outputs", "run_id"],
                        kind="stable", na_position="last")
    table = Table(
        "limits",
        "Measured vs predicted memory and epoch time per engine; † = other code version.",
        ["engine", "device", "dtype", "weights", "rows × outputs", "chunk rows", "peak MiB",
         "predicted MiB", "measured / predicted", "epoch s", "Jacobian s", "system s",
         "solve s", "seed limits"],
        align="lll" + "r" * 10 + "l",
    )
    for _, run in ok.iterrows():
        ratio = run["peak_memory_bytes"] / run["predicted_memory_bytes"]
        within = (run["n_params"] <= SEED_MAX_WEIGHTS
                  and run["rows_x_outputs"] <= SEED_MAX_ROWS)
        table.add([
            f"{run['engine']}{_stale_mark(run)}", str(run["device"] or "–"),
            str(run["dtype"] or "–"), fmt_int(run["n_params"]), fmt_int(run["rows_x_outputs"]),
            fmt_int(run["chunk_rows"]), fmt(run["peak_memory_bytes"] / MIB, 4),
            fmt(run["predicted_memory_bytes"] / MIB, 4), fmt(ratio, 3),
            fmt(run["epoch_time_s"], 3), fmt(run["time_jacobian_s"], 3),
            fmt(run["time_system_s"], 3), fmt(run["time_solve_s"], 3),
            "within" if within else "beyond",
        ])
        for name in LIMITS_SIZE:
            section.cite(run["run_id"], param_column(name), run[name])
        for name in LIMITS_METRICS:
            if name != METRIC_PREDICTED_FLOPS:
                section.cite(run["run_id"], name, run[name])
    section.table(table)
    summary = Table(
        "limits_summary",
        "Per engine: runs, largest problem that finished, median measured / predicted memory.",
        ["engine", "runs", "max weights", "max rows × outputs", "max peak MiB",
         "median measured / predicted", "runs beyond the seed's limits"],
    )
    for engine in engines:
        group = ok[ok["engine"] == engine]
        ratio = (group["peak_memory_bytes"] / group["predicted_memory_bytes"]).median()
        beyond = ((group["n_params"] > SEED_MAX_WEIGHTS)
                  | (group["rows_x_outputs"] > SEED_MAX_ROWS)).sum()
        summary.add([engine, fmt_int(len(group)), fmt_int(group["n_params"].max()),
                     fmt_int(group["rows_x_outputs"].max()),
                     fmt(group["peak_memory_bytes"].max() / MIB, 4), fmt(ratio, 3),
                     fmt_int(beyond)])
    section.table(summary)
    section.figure("limits", "Peak memory and epoch time against the number of weights, per "
                   "engine; hollow markers: the memory model; dotted: the seed's limits.",
                   _limits_figure(ok, engines))
    return section


def _limits_figure(ok: pd.DataFrame, engines: list[str]) -> Figure:
    with report_style():
        fig, (ax_mem, ax_time, ax_ratio) = subplots(1, 3, figsize=(11, 3.3),
                                                        constrained_layout=True)
        for i, engine in enumerate(engines):
            group = ok[ok["engine"] == engine]
            color = f"C{i}"
            ax_mem.scatter(group["n_params"], group["peak_memory_bytes"] / 2**30, color=color,
                           label=engine, s=14)
            ax_mem.scatter(group["n_params"], group["predicted_memory_bytes"] / 2**30,
                           facecolors="none", edgecolors=color, s=22)
            ax_time.scatter(group["n_params"], group["epoch_time_s"], color=color, s=14,
                            label=engine)
            ax_ratio.scatter(group["predicted_memory_bytes"] / 2**30,
                             group["peak_memory_bytes"] / 2**30, color=color, s=14,
                             label=engine)
        ax_mem.axhline(SEED_GPU_BYTES / 2**30, color="grey", linestyle=":", label="12 GB")
        for ax in (ax_mem, ax_time):
            ax.axvline(SEED_MAX_WEIGHTS, color="grey", linestyle=":")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("weights")
            ax.grid(True, alpha=0.3)
        ax_mem.set_ylabel("peak memory, GiB")
        ax_time.set_ylabel("epoch time, s")
        both = pd.concat([ok["predicted_memory_bytes"], ok["peak_memory_bytes"]]) / 2**30
        finite = both[np.isfinite(both) & (both > 0)]
        if not finite.empty:
            low, high = float(finite.min()), float(finite.max())
            ax_ratio.plot([low, high], [low, high], color="grey", linestyle="--", label="y = x")
        ax_ratio.set_xscale("log")
        ax_ratio.set_yscale("log")
        ax_ratio.set_xlabel("predicted memory, GiB")
        ax_ratio.set_ylabel("measured memory, GiB")
        ax_ratio.grid(True, alpha=0.3)
        ax_mem.legend()
    return fig


# ---------------------------------------------------------------------- section 5: performance
def performance_section(runs: pd.DataFrame, experiment: str = "performance") -> Section:
    """Epoch time vs problem size per implementation, ratios to the reference and the floor."""
    section = Section("performance", "Performance: epoch time against problem size")
    if runs.empty:
        return _absent(section, experiment, KIND_PERFORMANCE,
                       "epoch time against problem size")
    ok = runs[runs["status"] == "FINISHED"].copy()
    if ok.empty:
        section.text("No performance run finished.")
        section.missing.append(("performance", "no finished performance run"))
        return section
    ok["implementation"] = ok.get(tag_column(TAG_IMPLEMENTATION))
    for name in (PARAM_N_PARAMS, PARAM_N_RESIDUALS):
        ok[name] = _num(ok, param_column(name))
    for name in PERFORMANCE_METRICS:
        ok[name] = _num(ok, metric_column(name))
    ok["work"] = ok["n_residuals"] * ok["n_params"] ** 2
    implementations = _ordered(ok["implementation"], IMPLEMENTATIONS)
    section.text(
        "Epoch time of each implementation against the problem size; problem size on the "
        "figure's x axis is residuals × weights² (the work of forming JᵀJ). `ratio_to_floor` "
        "and `ratio_to_reference` are as the performance runs logged them: epoch time over the "
        "FLOP floor (`floor`) and over torch-levenberg-marquardt on the same problem. "
        "Cells: median over the runs of a size (count in brackets when more than one)."
    )
    table = Table(
        "performance",
        "Epoch time and ratios per implementation and problem size (medians).",
        ["implementation", "weights", "residuals", "runs", "epoch s", "peak MiB",
         "ratio to floor", "ratio to reference"],
        align="l" + "r" * 7,
    )
    order = {impl: i for i, impl in enumerate(implementations)}
    ok["_impl"] = ok["implementation"].map(order)
    grouped = ok.groupby(["n_params", "n_residuals", "_impl"], sort=True, dropna=False)
    for (_, _, _), group in grouped:
        run = group.iloc[0]
        other = "code_version" in group and bool((group["code_version"] == "other").any())
        stale = "†" if other else ""
        table.add([
            f"{run['implementation']}{stale}", fmt_int(run["n_params"]),
            fmt_int(run["n_residuals"]), fmt_int(len(group)),
            fmt(group["epoch_time_s"].median(), 4),
            fmt(group["peak_memory_bytes"].median() / MIB, 4),
            fmt(group["ratio_to_floor"].median(), 3),
            fmt(group["ratio_to_reference"].median(), 3),
        ])
    for _, run in ok.sort_values(["_impl", "n_params", "n_residuals", "run_id"]).iterrows():
        for name in (PARAM_N_PARAMS, PARAM_N_RESIDUALS, *PERFORMANCE_METRICS):
            section.cite(run["run_id"], name, run[name])
    section.table(table)
    section.figure("performance", "Epoch time (left), ratio to the FLOP floor (middle) and "
                   "lmbench's ratio to torch-levenberg-marquardt (right) against problem size.",
                   _performance_figure(ok, implementations))
    return section


def _performance_figure(ok: pd.DataFrame, implementations: list[str]) -> Figure:
    with report_style():
        fig, axes = subplots(1, 3, figsize=(11, 3.3), constrained_layout=True)
        for i, impl in enumerate(implementations):
            group = ok[ok["implementation"] == impl]
            med = group.groupby("work", sort=True)[
                ["epoch_time_s", "ratio_to_floor", "ratio_to_reference"]
            ].median()
            color = f"C{i}"
            axes[0].plot(med.index, med["epoch_time_s"], marker="o", ms=3, color=color,
                         label=impl)
            if impl != "floor":
                axes[1].plot(med.index, med["ratio_to_floor"], marker="o", ms=3, color=color,
                             label=impl)
            if impl == "lmbench":
                axes[2].plot(med.index, med["ratio_to_reference"], marker="o", ms=3,
                             color=color, label=impl)
        axes[1].axhline(1.0, color="grey", linestyle=":")
        axes[2].axhline(1.0, color="grey", linestyle=":")
        labels = ("epoch time, s", "ratio to FLOP floor", "ratio to torch-levenberg-marquardt")
        for ax, label in zip(axes, labels, strict=True):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("residuals × weights²")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        axes[0].legend()
        if not math.isnan(float(ok["ratio_to_reference"].max())):
            axes[2].legend()
    return fig
