"""The store schema: one vocabulary for writers and readers, older series names still read."""

from __future__ import annotations

from pathlib import Path

from lmbench.core import engines
from lmbench.reports.runs import load_metric_histories
from lmbench.tracking import RunTracker, schema


def test_engine_vocabulary_and_seed_limits_come_from_core() -> None:
    assert schema.ENGINE_NAMES is engines.ENGINE_NAMES
    assert schema.ENGINES is engines.ENGINES
    assert (schema.SEED_MAX_WEIGHTS, schema.SEED_MAX_ROWS, schema.SEED_GPU_BYTES) == (
        engines.SEED_MAX_WEIGHTS, engines.SEED_MAX_ROWS, engines.SEED_GPU_BYTES)


def test_column_helpers_follow_the_search_runs_layout() -> None:
    assert schema.tag_column(schema.TAG_KIND) == "tags.kind"
    assert schema.param_column(schema.PARAM_MU_INIT) == "params.trainer.mu_init"
    assert schema.metric_column(schema.test_metric("rmse")) == "metrics.test_rmse"
    assert schema.series_names(schema.SERIES_DAMPING_TRIALS) == ("damping_trials", "trials")


def test_a_series_under_its_older_name_is_read_under_the_current_one(
    store: tuple[str, str, Path],
) -> None:
    uri, experiment_id, _ = store
    with RunTracker("old-names", tracking_uri=uri, experiment_id=experiment_id) as old:
        old.log_epoch_history({"trials": [0, 2, 1]})
    with RunTracker("new-names", tracking_uri=uri, experiment_id=experiment_id) as new:
        new.log_epoch_history({schema.SERIES_DAMPING_TRIALS: [0, 3]})
    read = load_metric_histories([old.run_id, new.run_id], [schema.SERIES_DAMPING_TRIALS], uri)
    assert read[old.run_id][schema.SERIES_DAMPING_TRIALS].tolist() == [0.0, 2.0, 1.0]
    assert read[new.run_id][schema.SERIES_DAMPING_TRIALS].tolist() == [0.0, 3.0]
