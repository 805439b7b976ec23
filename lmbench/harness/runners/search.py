"""The ``search`` runner: a baseline's grid search (xgboost, catboost, adam, lm_grid) through
``lmbench.baselines.run_baseline``, selected on the validation split, scored once on test."""

from __future__ import annotations

import time

from omegaconf import OmegaConf
from torch import nn

from lmbench.baselines import run_baseline
from lmbench.harness.context import DatasetJob
from lmbench.harness.outcome import JobOutcome
from lmbench.models import loss_for_task
from lmbench.tracking import schema


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
        "grid_search.json",
    )
    if name == "lm":
        loss = str(trainer_cfg.get("params", {}).get("loss", "auto"))
        tracker.set_tags({schema.TAG_LOSS: loss_for_task(loss, data.task)})
    tracker.set_tags({schema.TAG_BEST_PREFIX + k: v for k, v in result.best_params.items()})
    if isinstance(result.model, nn.Module):
        tracker.log_state_dict(result.model.state_dict(), "model")
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
        },
    )
