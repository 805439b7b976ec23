"""The ``search`` runner: a baseline's grid search (xgboost, catboost, adam, lm_grid) through
``lmbench.baselines.run_baseline``, selected on the validation split, scored once on test."""

from __future__ import annotations

import math
import time
from typing import Any

from omegaconf import OmegaConf
from torch import nn

from lmbench.baselines import BaselineResult, run_baseline
from lmbench.harness.context import DatasetJob
from lmbench.harness.epoch_log import log_training_report
from lmbench.harness.outcome import JobOutcome
from lmbench.models import loss_for_task
from lmbench.tracking import Tracker, schema


def run(job: DatasetJob) -> JobOutcome:
    """Search ``cfg.trainer``'s grid; log the grid, the best params and the chosen model."""
    cfg, data, tracker = job.cfg, job.data, job.tracker
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(trainer_cfg, dict)
    name = str(cfg.trainer.name)
    started = time.perf_counter()
    result = run_baseline(
        name,
        trainer_cfg,
        x_train=data.x_train,
        y_train=data.y_train,
        x_val=data.x_val,
        y_val=data.y_val,
        task=data.task,
        seed=int(cfg.seed),
        # LM's own grid searches widths; the others train cfg.model (Adam) or ignore it.
        model_factory=None if name == "lm" else job.model_factory(),
        inverse_target=job.inverse_target,
    )
    train_time = time.perf_counter() - started
    if result.history:
        # the baselines' "trials" curve is the damping-trials series of the store
        tracker.log_epoch_history({
            schema.SERIES_DAMPING_TRIALS if key == "trials" else key: values
            for key, values in result.history.items()
        })
    tracker.log_dict(
        {
            "best_params": result.best_params,
            "grid": [score.as_dict() for score in result.grid_scores],
        },
        schema.GRID_SEARCH_ARTIFACT,
    )
    tracker.log_child_runs(grid_trials(result, data.name))
    extra: dict[str, float] = {}
    if name == "lm":
        loss = str(trainer_cfg.get("params", {}).get("loss", "auto"))
        tracker.set_tags({schema.TAG_LOSS: loss_for_task(loss, data.task)})
        extra[schema.METRIC_BEST_VAL_LOSS] = _returned_val_loss(result)
        if result.history and getattr(tracker, "log_report", False):
            log_selected_report(tracker, result.history)
    tracker.set_tags({schema.TAG_BEST_PREFIX + k: v for k, v in result.best_params.items()})
    if isinstance(result.model, nn.Module):
        tracker.log_state_dict(result.model.state_dict(), "model")
    tracker.log_model(result.model, data.x_test)
    test = result.evaluate(data.x_test, data.y_test, inverse_target=job.inverse_target)
    size = result.model_size
    n_parameters = size.get("n_parameters", size.get("n_leaf_values"))
    return JobOutcome(
        method=result.name,
        dataset=data.name,
        task=data.task,
        test_metrics=test,
        primary_metric=result.primary_metric,
        n_parameters=None if n_parameters is None else int(n_parameters),
        train_time_s=train_time,
        extra_metrics={
            "grid_size": result.grid_size,
            "search_time_s": result.search_time_s,
            "best_fit_time_s": result.best_fit_time_s,
            "best_val_score": result.best_val_score,
            **{f"model_size_{k}": v for k, v in size.items()},
            **extra,
        },
    )


def grid_trials(result: BaselineResult, dataset: str) -> list[dict[str, Any]]:
    """One child run per grid point: its settings as params, its validation scores
    (``val_score`` = the primary metric, ``val_<metric>``), fit time and kept iterations."""
    trials = []
    for i, score in enumerate(result.grid_scores):
        trials.append({
            "run_name": f"{result.name}-{dataset}-trial{i}",
            "params": score.params,
            "metrics": {
                schema.METRIC_VAL_SCORE: score.val_score,
                **{schema.VAL_METRIC_PREFIX + k: v for k, v in score.val_metrics.items()},
                schema.METRIC_FIT_TIME: score.fit_time_s,
                schema.METRIC_BEST_ITERATION: score.best_iteration,
            },
            "tags": {
                schema.TAG_KIND: schema.KIND_GRID_TRIAL,
                schema.TAG_TRIAL: i,
                schema.TAG_SELECTED: str(score.params == result.best_params).lower(),
                schema.TAG_METHOD: result.name,
                schema.TAG_DATASET: dataset,
                schema.TAG_TASK: result.task,
            },
        })
    return trials


def log_selected_report(tracker: Tracker, curves: dict[str, list[float]]) -> None:
    """The selected LM run's training report figure and seed history, as single LM runs log
    them."""
    seed = {
        "loss": list(curves.get("train_loss", [])),
        "val": list(curves.get("val_loss", [])),
        "mu": list(curves.get("mu", [])),
        "time": list(curves.get("epoch_time_s", [])),
    }
    log_training_report(tracker, seed)


def _returned_val_loss(result: BaselineResult) -> float:
    """Validation loss of the selected LM run's returned weights (its best epoch's)."""
    val = result.history.get("val_loss") or []
    runs = getattr(result, "runs", [])
    selected = [i for i, s in enumerate(result.grid_scores) if s.params == result.best_params]
    if not val or not selected or selected[0] >= len(runs):
        return math.nan
    epoch = runs[selected[0]].best_epoch
    return float(val[epoch]) if 0 <= epoch < len(val) else math.nan
