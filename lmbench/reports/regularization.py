"""Report section: what a weight penalty does for LM (plain, weight decay, Bayesian) next to Adam.

Runs: FINISHED benchmark runs whose method is an LM variant (``lm_plain``: no penalty;
``lm``: the tuned weight decay of ``conf/trainer/lm_tuned.yaml``; ``lm_bayesian``: trainbr's
evidence updates) or ``adam``. The section is built only when the runs hold ``lm_plain`` or
``lm_bayesian`` (a study of the penalty), so ordinary studies are not given it.

Per run, from the store: the primary test metric; from the selected configuration's per-epoch
series, the epoch whose weights were returned (the best validation loss: every method here
restores its best-validation weights), the training and validation losses there and their gap
(validation − training), the last validation loss over the best (how far training ran past
the best point), gamma / P (the effective number of parameters over the weights; Bayesian
runs only), epochs and training time (tuning included).

Statistics: per dataset × method, mean over seeds; each LM variant against Adam on the primary
test metric over (dataset, seed) pairs: wins/ties/losses and a two-sided Wilcoxon signed-rank
test, Holm-adjusted over the variants (``lmbench.reports.statistics``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmbench.reports.document import Section
from lmbench.reports.numbers import fmt, fmt_mean_std
from lmbench.reports.statistics import ALPHA, holm, signed_rank
from lmbench.reports.tables import Table
from lmbench.tracking.schema import (
    METRIC_N_PARAMETERS,
    METRIC_TRAIN_TIME,
    SERIES_TRAIN_LOSS,
    SERIES_VAL_LOSS,
)

#: The methods of the section, in display order, and what each one is.
PENALTY_METHODS: dict[str, str] = {
    "lm_plain": "LM, no penalty",
    "lm": "LM, tuned weight decay",
    "lm_bayesian": "LM, Bayesian (trainbr)",
    "adam": "Adam, tuned weight decay",
}
#: The methods whose presence asks for the section.
VARIANTS = ("lm_plain", "lm_bayesian")
BASELINE = "adam"
GAMMA = "gamma"
Histories = Callable[[Sequence[str], Sequence[str]], dict[str, dict[str, pd.Series]]]


def has_penalty_study(runs: pd.DataFrame) -> bool:
    return not runs.empty and bool(runs["method"].isin(VARIANTS).any())


def run_table(runs: pd.DataFrame, histories: Histories) -> pd.DataFrame:
    """One row per FINISHED run of the section's methods, with its per-epoch quantities."""
    ok = runs[runs["method"].isin(list(PENALTY_METHODS)) & (runs["status"] == "FINISHED")]
    series = histories(list(ok["run_id"]), [SERIES_TRAIN_LOSS, SERIES_VAL_LOSS, GAMMA])
    rows = []
    for _, run in ok.iterrows():
        mine = series.get(run["run_id"], {})
        train, val = mine.get(SERIES_TRAIN_LOSS), mine.get(SERIES_VAL_LOSS)
        row = {"run_id": run["run_id"], "dataset": run["dataset"], "method": run["method"],
               "seed": run["seed"], "score": float(run["primary_value"]),
               "higher": bool(run["higher_is_better"]),
               "metric": str(run["primary_metric"]),
               "n_params": float(run.get(METRIC_N_PARAMETERS, math.nan)),
               "time_s": float(run.get(METRIC_TRAIN_TIME, math.nan)),
               "train_best": math.nan, "val_best": math.nan, "val_last_over_best": math.nan,
               "epochs": math.nan, "gamma_over_p": math.nan}
        if val is not None and train is not None and val.notna().any():
            best = int(val.idxmin())
            row.update(train_best=float(train.get(best, math.nan)), val_best=float(val[best]),
                       val_last_over_best=float(val.iloc[-1] / val[best]) if val[best] else
                       math.nan, epochs=float(len(val) - 1))
        gamma = mine.get(GAMMA)
        if gamma is not None and gamma.notna().any() and row["n_params"] > 0:
            row["gamma_over_p"] = float(gamma.dropna().iloc[-1] / row["n_params"])
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["gap"] = table["val_best"] - table["train_best"]
    return table.sort_values(["dataset", "method", "seed", "run_id"], kind="stable")


@dataclass(frozen=True)
class AgainstBaseline:
    """One LM variant against Adam on the primary test metric over (dataset, seed) pairs."""

    method: str
    n: int
    wins: int
    ties: int
    losses: int
    p_value: float
    p_holm: float = math.nan


def against_baseline(table: pd.DataFrame) -> list[AgainstBaseline]:
    """Each LM variant present against Adam (paired by dataset and seed), Holm-adjusted."""
    results = []
    for method in [m for m in PENALTY_METHODS if m != BASELINE and m in set(table["method"])]:
        pairs = []
        for (_, _), group in table.groupby(["dataset", "seed"], sort=True):
            by = group.groupby("method")["score"].mean()
            if method in by and BASELINE in by:
                sign = 1.0 if bool(group["higher"].iloc[0]) else -1.0
                pairs.append(sign * (by[method] - by[BASELINE]))
        test = signed_rank(np.asarray(pairs, dtype=float), True)
        results.append(AgainstBaseline(method, test.n, test.wins, test.ties, test.losses,
                                       test.p_value))
    adjusted = holm([r.p_value for r in results])
    return [AgainstBaseline(**{**r.__dict__, "p_holm": p})
            for r, p in zip(results, adjusted, strict=True)]


def _mean_std(values: pd.Series, digits: int = 3) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    return fmt_mean_std(float(values.mean()),
                        float(values.std(ddof=1)) if len(values) > 1 else None, digits)


def regularization_section(runs: pd.DataFrame, histories: Histories) -> Section | None:
    """The penalty study, or None when the runs hold no ``lm_plain`` / ``lm_bayesian`` run."""
    if not has_penalty_study(runs):
        return None
    section = Section("regularization", "LM with a weight penalty")
    table = run_table(runs, histories)
    if table.empty:
        section.missing.append("regularization: no FINISHED runs of the LM variants")
        return section
    methods = [m for m in PENALTY_METHODS if m in set(table["method"])]
    section.text(
        "What a weight penalty buys LM: "
        + "; ".join(f"`{m}` = {PENALTY_METHODS[m]}" for m in methods)
        + ". Every method restores the weights of its best validation epoch; the losses below "
        "are taken there (mean CE or MSE, the trainers' own reporting loss). Gap = "
        "validation − training loss at that epoch; "
        "last/best = the last epoch's validation loss over the best one; γ/P = effective "
        "parameters over weights (Bayesian runs; the others leave it blank). Means ± std "
        "over seeds."
    )
    detail = Table("regularization_runs", "Per dataset and method (means over seeds).",
                   ["dataset", "method", "test score", "train loss", "val loss", "gap",
                    "last/best", "γ/P", "epochs", "train s"])
    for (dataset, method), group in sorted(table.groupby(["dataset", "method"]),
                                           key=lambda kv: (kv[0][0], methods.index(kv[0][1]))):
        detail.add([dataset, method, f"{group['metric'].iloc[0]} "
                    f"{_mean_std(group['score'], 4)}", _mean_std(group["train_best"]),
                    _mean_std(group["val_best"]), _mean_std(group["gap"]),
                    _mean_std(group["val_last_over_best"]), _mean_std(group["gamma_over_p"]),
                    _mean_std(group["epochs"], 3), _mean_std(group["time_s"], 3)])
        for _, run in group.iterrows():
            section.cite(run["run_id"], f"{run['metric']} (test)", run["score"])
    section.table(detail)
    overall = Table("regularization_overall", "Over every dataset and seed (means).",
                    ["method", "runs", "gap", "last/best", "γ/P", "epochs", "train s"])
    for method in methods:
        mine = table[table["method"] == method]
        overall.add([method, str(len(mine)), fmt(float(mine["gap"].mean()), 3),
                     fmt(float(mine["val_last_over_best"].mean()), 3),
                     fmt(float(mine["gamma_over_p"].mean()), 3)
                     if mine["gamma_over_p"].notna().any() else "–",
                     fmt(float(mine["epochs"].mean()), 3), fmt(float(mine["time_s"].mean()), 3)])
    section.table(overall)
    lines = []
    for result in against_baseline(table):
        head = (f"`{result.method}` against `{BASELINE}` on the primary test metric: better on "
                f"{result.wins}, tied on {result.ties}, worse on {result.losses} of {result.n} "
                "dataset×seed pairs")
        if math.isnan(result.p_value):
            lines.append(f"- {head}; too few pairs for a test.")
            continue
        call = ("no significant difference" if not result.p_holm < ALPHA else
                ("better" if result.wins > result.losses else "worse") + f" at {ALPHA}")
        lines.append(f"- {head}; Wilcoxon signed-rank p = {fmt(result.p_value, 2)} "
                     f"(Holm {fmt(result.p_holm, 2)}): {call}.")
    section.text("\n".join(lines))
    return section
