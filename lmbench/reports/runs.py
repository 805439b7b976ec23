"""Runs of named experiments, read from the MLflow store into one tidy table."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from lmbench.metrics import PRIMARY_METRIC
from lmbench.tracking import get_client, resolve_tracking_uri, search_runs
from lmbench.tracking.schema import (
    GROUPING_KINDS,
    METRIC_BEST_EPOCH,
    METRIC_EPOCHS,
    METRIC_N_PARAMETERS,
    METRIC_N_TEST_ROWS,
    METRIC_N_TIMED_OUT,
    METRIC_N_TRIALS,
    METRIC_SELECTED_TRIAL,
    METRIC_TRAIN_TIME,
    METRIC_WALL_TIME,
    METRICS_PREFIX,
    PARAM_SEED,
    PARAM_SELECTED_PREFIX,
    PARAMS_PREFIX,
    TAG_DATASET,
    TAG_DATASET_HASH,
    TAG_ENGINE,
    TAG_ERROR,
    TAG_GIT_COMMIT,
    TAG_KIND,
    TAG_METHOD,
    TAG_MODEL,
    TAG_PRIMARY_METRIC,
    TAG_STOP_REASON,
    TAG_TASK,
    TAGS_PREFIX,
    TRIAL_RECORD_PREFIX,
    metric_column,
    param_column,
    series_names,
    tag_column,
    test_metric,
)

#: Tags that become columns of their own (same name as the tag).
TAG_COLUMNS = (TAG_METHOD, TAG_DATASET, TAG_TASK, TAG_MODEL, TAG_GIT_COMMIT, TAG_DATASET_HASH,
               TAG_ERROR)
#: Scalar metrics that become columns of their own (same name as the metric).
METRIC_COLUMNS = (METRIC_N_PARAMETERS, METRIC_TRAIN_TIME, METRIC_WALL_TIME)
#: Whether higher is better, per primary metric (the tag names the metric, not its direction).
HIGHER_IS_BETTER = {metric: direction == "max" for metric, direction in PRIMARY_METRIC.values()}
#: Columns of the table ``load_runs`` returns, in order.
RUN_COLUMNS = [
    "run_id", "experiment", "status", TAG_METHOD, TAG_DATASET, TAG_TASK, TAG_MODEL, PARAM_SEED,
    "primary_metric", "primary_value", "higher_is_better", METRIC_N_PARAMETERS,
    METRIC_TRAIN_TIME, METRIC_WALL_TIME, TAG_GIT_COMMIT, TAG_DATASET_HASH, TAG_ERROR,
    "start_time",
]


def load_runs(
    experiments: str | Sequence[str], tracking_uri: str | None = None
) -> pd.DataFrame:
    """Every run of ``experiments`` (FAILED and unfinished ones included, never dropped); the
    runs that only group or detail others (sweep parents, tuning trials:
    ``schema.GROUPING_KINDS``) are not results and are left out.

    ``primary_metric`` is the run's ``primary_metric`` tag (set by the harness), or for runs
    without it the task's ``lmbench.metrics.PRIMARY_METRIC``; ``primary_value`` is that metric
    on the test split. The full metric/param/tag columns stay available under ``metrics.*``,
    ``params.*``, ``tags.*``.
    """
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    uri = resolve_tracking_uri(tracking_uri)
    client = get_client(uri)
    found = [e for e in (client.get_experiment_by_name(n) for n in names) if e is not None]
    if not found:
        raise LookupError(
            f"no experiment named {', '.join(names)} in {uri}; run it first "
            "(lmbench-run +experiment=NAME) or pass the store with --tracking-uri"
        )
    raw = _runs_frame(uri, [e.experiment_id for e in found])
    kind = _column(raw, tag_column(TAG_KIND))
    raw = raw[~kind.isin(GROUPING_KINDS)].reset_index(drop=True)  # sweep parents, tuning trials
    id_to_name = {e.experiment_id: e.name for e in found}
    tidy = pd.DataFrame(index=raw.index)
    tidy["run_id"] = raw["run_id"]
    tidy["experiment"] = raw["experiment_id"].map(id_to_name)
    tidy["status"] = raw["status"]
    tidy["start_time"] = raw["start_time"]  # which of a configuration's reruns is the latest
    for column in TAG_COLUMNS:
        tidy[column] = _column(raw, tag_column(column))
    tidy[PARAM_SEED] = pd.to_numeric(_column(raw, param_column(PARAM_SEED)), errors="coerce")
    tidy["primary_metric"] = pd.Series(
        [_primary_metric(tag, task) for tag, task in
         zip(_column(raw, tag_column(TAG_PRIMARY_METRIC)), tidy[TAG_TASK], strict=True)],
        index=tidy.index)
    tidy["higher_is_better"] = pd.Series(
        [HIGHER_IS_BETTER.get(metric, _task_direction(task)) for metric, task in
         zip(tidy["primary_metric"], tidy[TAG_TASK], strict=True)],
        index=tidy.index)
    tidy["primary_value"] = [
        _metric(raw, i, metric_column(test_metric(metric))) if metric else math.nan
        for i, metric in zip(raw.index, tidy["primary_metric"], strict=True)
    ]
    for name in METRIC_COLUMNS:
        tidy[name] = pd.to_numeric(_column(raw, metric_column(name)), errors="coerce")
    extra = raw[[c for prefix in (METRICS_PREFIX, PARAMS_PREFIX, TAGS_PREFIX)
                 for c in sorted(raw.columns) if c.startswith(prefix)]]
    return pd.concat([tidy[RUN_COLUMNS], extra], axis=1).sort_values(
        [TAG_DATASET, TAG_METHOD, PARAM_SEED, "run_id"], na_position="last", kind="stable"
    ).reset_index(drop=True)


def _runs_frame(uri: str, experiment_ids: list[str]) -> pd.DataFrame:
    """``mlflow.search_runs`` of every run (every status) of the experiments in store ``uri``,
    with ``start_time`` as epoch milliseconds and missing params/tags as NaN (as the runs'
    other readers expect)."""
    raw = search_runs(uri, experiment_ids)
    raw = raw.drop(columns=["artifact_uri", "end_time"])
    if raw.empty:  # search_runs types the empty columns float
        return raw.astype(object)
    raw["start_time"] = (raw["start_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(
        milliseconds=1)
    text = [c for c in raw.columns if c.startswith((PARAMS_PREFIX, TAGS_PREFIX))]
    raw[text] = raw[text].where(raw[text].notna(), math.nan)  # None on pandas 2 (no str dtype)
    return raw


def _primary_metric(tag: object, task: object) -> str | None:
    """The run's ``primary_metric`` tag; runs without it (older stores, runs that failed before
    the harness tagged it) get their task's ``PRIMARY_METRIC``."""
    if isinstance(tag, str) and tag:
        return tag
    return PRIMARY_METRIC[task][0] if task in PRIMARY_METRIC else None


def _task_direction(task: object) -> bool | None:
    return PRIMARY_METRIC[task][1] == "max" if task in PRIMARY_METRIC else None


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series([None] * len(frame), frame.index)


def _metric(frame: pd.DataFrame, index: int, name: str) -> float:
    if name not in frame.columns:
        return math.nan
    value = frame.at[index, name]
    return math.nan if value is None or pd.isna(value) else float(value)


#: Run-table columns the report exports as each run's records (``runs.csv`` section
#: ``records``): the selected trial's hyper-parameters, every trial's record, and the selected
#: trial's epochs, best epoch and stop reason, trial counts and the test split's rows.
RECORD_COLUMNS = tuple(metric_column(name) for name in (
    METRIC_SELECTED_TRIAL, METRIC_EPOCHS, METRIC_BEST_EPOCH, METRIC_N_TRIALS, METRIC_N_TIMED_OUT,
    METRIC_N_TEST_ROWS)) + (tag_column(TAG_STOP_REASON), tag_column(TAG_ENGINE))
RECORD_PREFIXES = (param_column(PARAM_SELECTED_PREFIX), metric_column(TRIAL_RECORD_PREFIX),
                   tag_column(TRIAL_RECORD_PREFIX))


def run_records(runs: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(run_id, quantity, value)`` of every record a run holds (``RECORD_COLUMNS`` and the
    columns under ``RECORD_PREFIXES``; quantity = the name without its ``params.`` /
    ``metrics.`` / ``tags.`` prefix), in run-table order then column order; missing values
    left out. Numbers keep full precision (whole numbers without a decimal point)."""
    columns = [c for c in runs.columns if c in RECORD_COLUMNS or c.startswith(RECORD_PREFIXES)]
    columns = sorted(columns, key=_record_order)
    out = []
    for _, run in runs.iterrows():
        for column in columns:
            value = run[column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            name = column.split(".", 1)[1]
            if isinstance(value, float):
                text = str(int(value)) if value.is_integer() else repr(value)
            else:
                text = str(value)
            out.append((str(run["run_id"]), name, text))
    return out


def _record_order(column: str) -> tuple[int, int, str]:
    """Selected params, then the job run's records, then trials by number, then by name."""
    name = column.split(".", 1)[1]
    if name.startswith(PARAM_SELECTED_PREFIX):
        return (0, 0, name)
    if name.startswith(TRIAL_RECORD_PREFIX):
        number = name[len(TRIAL_RECORD_PREFIX):].split(".", 1)[0]
        return (2, int(number) if number.isdigit() else 0, name)
    return (1, 0, name)


def load_metric_histories(
    run_ids: Sequence[str], keys: Sequence[str], tracking_uri: str | None = None
) -> dict[str, dict[str, pd.Series]]:
    """Per-step metric series from the store: ``{run_id: {key: Series(value, index=step)}}``.

    Used for per-epoch histories (``train_loss``, ``val_loss``, ``mu``, ``epoch_time_s``) and
    per-start values of the paper checks. A key a run never logged is absent from its dict; a
    series a run logged under an older name (``schema.SERIES_ALIASES``) is read from that name
    and returned under the current one. A step logged twice keeps the latest value. Runs and
    keys are read in the order given.
    """
    client = get_client(resolve_tracking_uri(tracking_uri))
    out: dict[str, dict[str, pd.Series]] = {}
    for run_id in run_ids:
        series: dict[str, pd.Series] = {}
        for key in keys:
            history = next((found for name in series_names(key)
                            if (found := client.get_metric_history(run_id, name))), None)
            if not history:
                continue
            points = sorted(history, key=lambda m: (m.step, m.timestamp))
            by_step = {int(m.step): float(m.value) for m in points}
            series[key] = pd.Series(
                list(by_step.values()), index=list(by_step.keys()), name=key, dtype=float
            )
        out[run_id] = series
    return out
