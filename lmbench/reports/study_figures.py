"""Figures of the study section: critical-difference diagram, win-rate matrix, time against
normalised score, tuned against default. Bare ``Figure`` objects (``figures.subplots``), drawn
in the report style; saved as PDF and PNG by ``figures.save_figure``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from lmbench.reports.figures import report_style, subplots
from lmbench.reports.statistics import FriedmanResult

#: One fixed colour per method (the same in every figure).
METHOD_COLORS = {"lm": "tab:blue", "lm_bayesian": "tab:cyan", "xgboost": "tab:green",
                 "catboost": "tab:red", "adam": "tab:orange", "tlm": "tab:purple"}
NORMALISED_LABEL = "normalised score (1 = best method, 0 = worst)"


def method_color(method: str) -> str:
    """The method's colour; methods outside ``METHOD_COLORS`` get grey."""
    return METHOD_COLORS.get(method, "tab:gray")


def cd_diagram(result: FriedmanResult) -> Figure:
    """Demšar's critical-difference diagram: mean ranks, the CD bar, Nemenyi cliques."""
    import scikit_posthocs

    with report_style():
        figure, ax = subplots(figsize=(6.0, 0.6 + 0.35 * result.k), constrained_layout=True)
        scikit_posthocs.critical_difference_diagram(
            result.mean_ranks, result.nemenyi, ax=ax,
            color_palette={m: method_color(m) for m in result.mean_ranks.index},
            label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}",
        )
        ax.set_xlabel(f"average rank over {result.n_datasets} datasets (1 = best)\n"
                      f"bars: within Nemenyi CD = {result.cd:.2f}; Friedman p = "
                      f"{result.p_value:.3g}")
    return figure


def win_rate_figure(rate: pd.DataFrame, ties: pd.DataFrame) -> Figure:
    """Heat map of the win rate of row over column, with the tie counts in the cells."""
    methods = list(rate.index)
    with report_style():
        figure, ax = subplots(figsize=(2.0 + 0.9 * len(methods), 0.8 + 0.7 * len(methods)),
                              constrained_layout=True)
        image = ax.imshow(rate.to_numpy(dtype=float), cmap="RdBu", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(methods)), methods)
        ax.set_yticks(range(len(methods)), methods)
        ax.set_xlabel("column method")
        ax.set_ylabel("row method")
        for i, a in enumerate(methods):
            for j, b in enumerate(methods):
                if a == b:
                    ax.text(j, i, "–", ha="center", va="center", fontsize=7)
                    continue
                value = rate.loc[a, b]
                text = "n/a" if math.isnan(value) else f"{value:.2f}"
                if ties.loc[a, b]:
                    text += f"\n{int(ties.loc[a, b])} tie"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if not math.isnan(value) and abs(value - 0.5) > 0.3
                        else "black")
        figure.colorbar(image, ax=ax, shrink=0.8,
                        label="win rate, row over column (ties ½)")
    return figure


def time_quality_figure(points: pd.DataFrame) -> Figure:
    """Train time (log x) against normalised score: one small marker per (dataset, method),
    one large marker per method at the median time and mean score (bars: std over datasets).

    ``points``: columns ``method``, ``dataset``, ``train_time_s``, ``normalised``.
    """
    with report_style():
        figure, ax = subplots(figsize=(6.4, 3.6), constrained_layout=True)
        handles = []
        for method, group in points.groupby("method", sort=False):
            color = method_color(str(method))
            good = group[group["train_time_s"] > 0]
            ax.scatter(good["train_time_s"], good["normalised"], s=14, alpha=0.45,
                       color=color, edgecolors="none")
            if good.empty:
                continue
            spread = float(good["normalised"].std(ddof=1)) if len(good) > 1 else 0.0
            ax.errorbar(float(good["train_time_s"].median()), float(good["normalised"].mean()),
                        yerr=spread, fmt="o", markersize=8, color=color, capsize=3,
                        markeredgecolor="black")
            handles.append(Line2D([], [], marker="o", color=color, linestyle="",
                                  label=str(method)))
        ax.set_xscale("log")
        # decades labelled in plain numbers; minor ticks unlabelled (their labels collide when
        # the times span several decades)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.1)
        ax.set_xlabel("training time per run, s (log scale; tuning included)")
        ax.set_ylabel(NORMALISED_LABEL)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(True, alpha=0.3, which="both")
        handles += [Line2D([], [], marker="o", color="gray", alpha=0.45, linestyle="",
                           markersize=4, label="one dataset"),
                    Line2D([], [], marker="o", color="gray", markeredgecolor="black",
                           linestyle="", markersize=7,
                           label="median time, mean score ± std over datasets")]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
    return figure


def tuned_default_figure(improvement: pd.DataFrame) -> Figure:
    """Per method, the normalised score of the default configuration beside the tuned one.

    ``improvement``: columns ``method``, ``default``, ``tuned`` (normalised scores, one row
    per dataset and method).
    """
    methods = list(dict.fromkeys(improvement["method"]))
    with report_style():
        figure, ax = subplots(figsize=(1.5 + 1.1 * len(methods), 3.2), constrained_layout=True)
        x = np.arange(len(methods))
        for offset, column, hatch in ((-0.18, "default", "//"), (0.18, "tuned", "")):
            means = [float(improvement.loc[improvement["method"] == m, column].mean())
                     for m in methods]
            bars = ax.bar(x + offset, means, width=0.34, hatch=hatch,
                          color=[method_color(m) for m in methods], edgecolor="black",
                          alpha=0.8)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, methods)
        ax.set_ylabel("mean test score, normalised per dataset\n(1 = best, 0 = worst entry)")
        ax.set_ylim(0, 1.05)
        ax.legend(handles=[
            _patch("//", "default configuration"), _patch("", "tuned configuration")],
            loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    return figure


def _patch(hatch: str, label: str):  # noqa: ANN202 - a matplotlib artist for the legend
    from matplotlib.patches import Patch

    return Patch(facecolor="white", edgecolor="black", hatch=hatch, label=label)
