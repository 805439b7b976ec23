"""The ``search`` runner: one method's tuning (xgboost, catboost, adam, tlm, lm_tuned) through
``lmbench.baselines.run_baseline`` under ``cfg.tuning`` (the default configuration plus the same
number of sampled ones for every method), selected on the validation split. Only then is the
test split scored, by two models: the selected one (``test_*``) and the default configuration's
(``default_test_*``)."""

from __future__ import annotations

import math
import time
from typing import Any

from omegaconf import OmegaConf
from torch import nn

from lmbench.baselines import BaselineResult, run_baseline
from lmbench.harness.context import DatasetJob, method_label
from lmbench.harness.epoch_log import log_training_report
from lmbench.harness.outcome import JobOutcome
from lmbench.models import loss_for_task
from lmbench.tracking import Tracker, schema


def run(job: DatasetJob) -> JobOutcome:
    """Tune ``cfg.trainer``; log every trial (child runs, and ``trial.<n>.*`` records on the job
    run), the selected params (``selected.*``) and model, and the test scores of the selected
    and the default models."""
    cfg, data, tracker = job.cfg, job.data, job.tracker
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(trainer_cfg, dict)
    tuning = OmegaConf.to_container(cfg.tuning, resolve=True) if "tuning" in cfg else None
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
        tuning=tuning,  # type: ignore[arg-type]
        # The neural methods build (and tune) their MLPs from the trainer config, so LM, Adam
        # and tlm share one architecture space; cfg.model is not used here.
        model_factory=None,
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
            "selected_trial": result.selected_trial,
            "trials": [trial.as_dict() for trial in result.trials],
        },
        schema.TUNING_ARTIFACT,
    )
    tracker.log_child_runs(tuning_trials(result, data.name))
    log_trial_records(tracker, result)
    extra: dict[str, float] = {}
    if name == "lm":
        loss = str(trainer_cfg.get("params", {}).get("loss", "auto"))
        tracker.set_tags({schema.TAG_LOSS: loss_for_task(loss, data.task)})
        runs = getattr(result, "runs", [])
        if result.selected_trial < len(runs):  # the engine the selected trial ran on
            tracker.set_tags({schema.TAG_ENGINE: runs[result.selected_trial].engine})
        extra[schema.METRIC_BEST_VAL_LOSS] = _returned_val_loss(result)
        if result.history and getattr(tracker, "log_report", False):
            log_selected_report(tracker, result.history,
                                int(result.model_size.get("n_parameters", 0)))
    tracker.set_tags({schema.TAG_BEST_PREFIX + k: v for k, v in result.best_params.items()})
    if isinstance(result.model, nn.Module):
        tracker.log_state_dict(result.model.state_dict(), "model")
    tracker.log_model(result.model, data.x_test)
    # The test split is scored only now, after selection, by the selected and default models.
    test = result.evaluate(data.x_test, data.y_test, inverse_target=job.inverse_target)
    default_test = result.default_evaluate(
        data.x_test, data.y_test, inverse_target=job.inverse_target
    )
    size = result.model_size
    n_parameters = size.get("n_parameters", size.get("n_leaf_values"))
    selected = result.trials[result.selected_trial]
    return JobOutcome(
        method=method_label(cfg.trainer),
        dataset=data.name,
        task=data.task,
        test_metrics=test,
        primary_metric=result.primary_metric,
        n_parameters=None if n_parameters is None else int(n_parameters),
        train_time_s=train_time,
        stop_reason=selected.stop_reason or None,
        extra_metrics={
            schema.METRIC_SELECTED_TRIAL: result.selected_trial,
            schema.METRIC_EPOCHS: selected.epochs,
            schema.METRIC_BEST_EPOCH: selected.best_iteration,
            schema.METRIC_N_TEST_ROWS: len(data.y_test),
            schema.METRIC_N_TRIALS: result.n_trials,
            schema.METRIC_N_TIMED_OUT: result.n_timed_out,
            schema.METRIC_DEFAULT_VAL_SCORE: result.default_val_score,
            **{schema.default_test_metric(k): v for k, v in default_test.items()},
            "search_time_s": result.search_time_s,
            "best_fit_time_s": result.best_fit_time_s,
            "best_val_score": result.best_val_score,
            **{schema.model_size_metric(k): v for k, v in size.items()},
            **extra,
        },
    )


def tuning_trials(result: BaselineResult, dataset: str) -> list[dict[str, Any]]:
    """One child run per trial: its settings as params, its validation scores (``val_score`` =
    the primary metric, ``val_<metric>``), fit time and kept iterations; tags say its number,
    origin (default / sampled), whether it timed out and whether it was selected."""
    trials = []
    for trial in result.trials:
        trials.append({
            "run_name": f"{result.name}-{dataset}-trial{trial.number}",
            "params": trial.params,
            "metrics": {
                schema.METRIC_VAL_SCORE: trial.val_score,
                **{schema.VAL_METRIC_PREFIX + k: v for k, v in trial.val_metrics.items()},
                schema.METRIC_FIT_TIME: trial.fit_time_s,
                schema.METRIC_BEST_ITERATION: trial.best_iteration,
                schema.METRIC_EPOCHS: trial.epochs,
            },
            "tags": {
                schema.TAG_KIND: schema.KIND_TUNING_TRIAL,
                schema.TAG_TRIAL: trial.number,
                schema.TAG_TRIAL_ORIGIN: (
                    schema.TRIAL_ORIGIN_DEFAULT if trial.number == 0
                    else schema.TRIAL_ORIGIN_SAMPLED
                ),
                schema.TAG_TIMED_OUT: str(trial.timed_out).lower(),
                schema.TAG_STOP_REASON: trial.stop_reason,
                schema.TAG_SELECTED: str(trial.number == result.selected_trial).lower(),
                schema.TAG_METHOD: result.name,
                schema.TAG_DATASET: dataset,
                schema.TAG_TASK: result.task,
            },
        })
    return trials


def log_trial_records(tracker: Tracker, result: BaselineResult) -> None:
    """Every trial's record on the job run itself (``trial.<n>.<field>``: epochs, best epoch,
    fit time, timed-out flag, validation score as metrics, stop reason as a tag) and the
    selected trial's hyper-parameters as ``selected.<name>`` params (and an artifact), so the
    run table alone can check every table built from it."""
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for trial in result.trials:
        values = {
            schema.TRIAL_EPOCHS: trial.epochs,
            schema.TRIAL_BEST_EPOCH: trial.best_iteration,
            schema.TRIAL_FIT_TIME: trial.fit_time_s,
            schema.TRIAL_TIMED_OUT: int(trial.timed_out),
            schema.TRIAL_VAL_SCORE: trial.val_score,
        }
        metrics.update({schema.trial_record(trial.number, k): v for k, v in values.items()})
        tags[schema.trial_record(trial.number, schema.TRIAL_STOP_REASON)] = trial.stop_reason
    tracker.log_metrics(metrics)
    tracker.set_tags(tags)
    tracker.log_config({schema.PARAM_SELECTED_PREFIX.rstrip("."): result.best_params},
                       schema.SELECTED_PARAMS_ARTIFACT)


def log_selected_report(tracker: Tracker, curves: dict[str, list[float]], n_params: int = 0
                        ) -> None:
    """The selected LM run's training report figure and seed history, as single LM runs log
    them (with the gamma-against-P row for a Bayesian run)."""
    seed = {
        "loss": list(curves.get("train_loss", [])),
        "val": list(curves.get("val_loss", [])),
        "mu": list(curves.get("mu", [])),
        "time": list(curves.get("epoch_time_s", [])),
    }
    evidence = {k: curves[k] for k in schema.REGULARIZATION_SERIES if k in curves}
    log_training_report(tracker, seed, {**evidence, "n_params": n_params})


def _returned_val_loss(result: BaselineResult) -> float:
    """Validation loss of the selected LM run's returned weights (its best epoch's)."""
    val = result.history.get("val_loss") or []
    runs = getattr(result, "runs", [])
    if not val or result.selected_trial >= len(runs):
        return math.nan
    epoch = runs[result.selected_trial].best_epoch
    return float(val[epoch]) if 0 <= epoch < len(val) else math.nan
