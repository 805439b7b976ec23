"""Report section: quality at scale (runs tagged ``kind=scale``, from
``python -m lmbench.bench.quality_at_scale``).

Schema (names in ``lmbench.tracking.schema``): tag ``arm`` (one of ``SCALE_ARMS``), ``method``,
``engine``, ``dataset``; params ``n_params``, ``hidden``, ``n_train_rows``, ``cg_max_iter``;
metrics ``test_accuracy``, ``test_cross_entropy``, ``final_train_loss``, ``epochs``,
``wall_time_s``, ``cpu_time_s``, ``peak_rss_bytes``; the memory point (arm ``matrix_free_memory``):
``bytes_per_million_weights``, ``peak_memory_bytes``, params ``n_params``, ``n_rows``.

The section is left out when the store has no such run. When a configuration was measured more
than once, the latest finished run of each arm is shown.
"""

from __future__ import annotations

import math

import pandas as pd

from lmbench.reports.document import Section
from lmbench.reports.tables import Table, fmt, fmt_int
from lmbench.tracking.schema import (
    ARM_ADAM_LARGE,
    ARM_CHOLESKY_SMALL,
    ARM_MATRIX_FREE_LARGE,
    ARM_MATRIX_FREE_SMALL,
    ARM_MEMORY_POINT,
    METRIC_BYTES_PER_MILLION_WEIGHTS,
    METRIC_CPU_TIME,
    METRIC_EPOCHS,
    METRIC_FINAL_TRAIN_LOSS,
    METRIC_PEAK_RSS,
    METRIC_WALL_TIME,
    PARAM_HIDDEN_LAYERS,
    PARAM_N_PARAMS,
    PARAM_N_ROWS,
    PARAM_N_TRAIN_ROWS,
    SCALE_ARMS,
    TAG_ARM,
    TAG_DATASET,
    TAG_ENGINE,
    metric_column,
    param_column,
    tag_column,
    test_metric,
)

MIB = 2**20
TEST_ACCURACY = test_metric("accuracy")
TEST_CROSS_ENTROPY = test_metric("cross_entropy")
#: What each arm's row shows (metric names), cited in ``runs.csv``.
ARM_METRICS = (TEST_ACCURACY, TEST_CROSS_ENTROPY, METRIC_FINAL_TRAIN_LOSS, METRIC_EPOCHS,
               METRIC_WALL_TIME, METRIC_CPU_TIME, METRIC_PEAK_RSS)
#: Row labels: what trained which network.
ARM_LABELS = {
    ARM_MATRIX_FREE_LARGE: "matrix-free LM",
    ARM_ADAM_LARGE: "Adam, same wall time",
    ARM_CHOLESKY_SMALL: "Cholesky LM",
    ARM_MATRIX_FREE_SMALL: "matrix-free LM, same epochs",
}


def _value(run: pd.Series, column: str) -> float:
    value = pd.to_numeric(run.get(column), errors="coerce")
    return float(value) if value is not None and not pd.isna(value) else math.nan


def latest_per_arm(runs: pd.DataFrame) -> dict[str, pd.Series]:
    """The latest finished run of each arm (by start time, then run id)."""
    ok = runs[runs["status"] == "FINISHED"]
    if ok.empty or tag_column(TAG_ARM) not in ok:
        return {}
    ordered = ok.sort_values(["start_time", "run_id"], kind="stable")
    latest = ordered.groupby(tag_column(TAG_ARM), sort=False).tail(1)
    return {str(run[tag_column(TAG_ARM)]): run for _, run in latest.iterrows()}


def scale_section(runs: pd.DataFrame) -> Section | None:
    """Table of the trained networks and the result in words; None without ``kind=scale`` runs."""
    arms = latest_per_arm(runs)
    trained = [a for a in SCALE_ARMS if a in arms and a != ARM_MEMORY_POINT]
    if not trained and ARM_MEMORY_POINT not in arms:
        return None
    section = Section("scale", "Quality at scale: matrix-free LM past the P × P wall")
    first = arms[trained[0]] if trained else arms[ARM_MEMORY_POINT]
    rows = _value(first, param_column(PARAM_N_TRAIN_ROWS))
    section.text(
        f"Networks trained with the cross-entropy loss on `{first.get(tag_column(TAG_DATASET))}`"
        + (f" ({fmt_int(rows)} training rows)" if not math.isnan(rows) else "")
        + " by `python -m lmbench.bench.quality_at_scale`, each from the same seeded initial "
        "weights, scored with its best-validation weights. Adam runs for the wall time the "
        "matrix-free LM run took; the small network is the widest of the same shape family "
        "that Cholesky LM trains in reasonable time, and matrix-free LM runs on it for as "
        "many epochs as Cholesky LM did. CPU s is the process's CPU time during the run (below "
        "the wall time when other processes shared the core); peak RSS is above the process's "
        "RSS when the run started."
    )
    if trained:
        table = Table(
            "scale", "Test accuracy and cross-entropy, final training loss, epochs, wall and "
            "CPU time and peak RSS growth per trained network.",
            ["network", "trainer", "engine", "weights", "hidden", "epochs", "wall s", "CPU s",
             "final train CE", "test accuracy", "test CE", "peak RSS MiB"],
            align="lllrlrrrrrrr",
        )
        for arm in trained:
            run = arms[arm]
            table.add([
                "large" if arm in (ARM_MATRIX_FREE_LARGE, ARM_ADAM_LARGE) else "small",
                ARM_LABELS.get(arm, arm), str(run.get(tag_column(TAG_ENGINE)) or "–"),
                fmt_int(_value(run, param_column(PARAM_N_PARAMS))),
                str(run.get(param_column(PARAM_HIDDEN_LAYERS)) or "–"),
                fmt_int(_value(run, metric_column(METRIC_EPOCHS))),
                fmt(_value(run, metric_column(METRIC_WALL_TIME)), 4),
                fmt(_value(run, metric_column(METRIC_CPU_TIME)), 4),
                fmt(_value(run, metric_column(METRIC_FINAL_TRAIN_LOSS)), 4),
                fmt(_value(run, metric_column(TEST_ACCURACY)), 4),
                fmt(_value(run, metric_column(TEST_CROSS_ENTROPY)), 4),
                fmt(_value(run, metric_column(METRIC_PEAK_RSS)) / MIB, 4),
            ])
            section.cite(run["run_id"], PARAM_N_PARAMS,
                         _value(run, param_column(PARAM_N_PARAMS)))
            for name in ARM_METRICS:
                section.cite(run["run_id"], name, _value(run, metric_column(name)))
        section.table(table)
    for sentence in (_large_sentence(arms), _small_sentence(arms), _memory_sentence(arms)):
        if sentence:
            section.text(sentence)
    if ARM_MEMORY_POINT in arms:
        point = arms[ARM_MEMORY_POINT]
        section.cite(point["run_id"], METRIC_BYTES_PER_MILLION_WEIGHTS,
                     _value(point, metric_column(METRIC_BYTES_PER_MILLION_WEIGHTS)))
    return section


def _describe(run: pd.Series) -> str:
    accuracy = _value(run, metric_column(TEST_ACCURACY))
    return (f"{accuracy:.1%} test accuracy (test cross-entropy "
            f"{_value(run, metric_column(TEST_CROSS_ENTROPY)):.3f}) in "
            f"{fmt_int(_value(run, metric_column(METRIC_EPOCHS)))} epochs and "
            f"{fmt(_value(run, metric_column(METRIC_WALL_TIME)), 3)} s")


def _large_sentence(arms: dict[str, pd.Series]) -> str:
    free, adam = arms.get(ARM_MATRIX_FREE_LARGE), arms.get(ARM_ADAM_LARGE)
    if free is None:
        return ""
    weights = fmt_int(_value(free, param_column(PARAM_N_PARAMS)))
    text = f"On the large network ({weights} weights) matrix-free LM reached {_describe(free)}"
    if adam is None:
        return text + "; no Adam run to compare with."
    gap = (_value(free, metric_column(TEST_ACCURACY))
           - _value(adam, metric_column(TEST_ACCURACY)))
    verdict = ("ahead of" if gap > 0 else "behind") if gap != 0 else "level with"
    return (f"{text}, vs Adam {_describe(adam)} at equal wall time: matrix-free LM is "
            f"{verdict} Adam by {abs(gap) * 100:.1f} accuracy points.")


def _small_sentence(arms: dict[str, pd.Series]) -> str:
    cholesky, free = arms.get(ARM_CHOLESKY_SMALL), arms.get(ARM_MATRIX_FREE_SMALL)
    if cholesky is None:
        return ""
    weights = fmt_int(_value(cholesky, param_column(PARAM_N_PARAMS)))
    text = f"On the small network ({weights} weights) Cholesky LM reached {_describe(cholesky)}"
    if free is None:
        return text + "."
    return f"{text}; matrix-free LM reached {_describe(free)}."


def _memory_sentence(arms: dict[str, pd.Series]) -> str:
    point = arms.get(ARM_MEMORY_POINT)
    if point is None:
        return ""
    per_million = _value(point, metric_column(METRIC_BYTES_PER_MILLION_WEIGHTS))
    return (f"Memory of the matrix-free engine: {per_million / 1e6:,.1f} MB per million weights "
            f"above model and data (heap peak of one epoch at "
            f"{fmt_int(_value(point, param_column(PARAM_N_PARAMS)))} weights and "
            f"{fmt_int(_value(point, param_column(PARAM_N_ROWS)))} rows, "
            "`python -m lmbench.bench.matrix_free`).")
