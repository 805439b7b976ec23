"""The ``lm`` runner: one LM configuration (``cfg.trainer``, e.g. ``conf/trainer/lm.yaml``)
trained on the train split, validated on the validation split, scored once on the test split."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from lmbench.core import TrainerSettings, TrainingHistory, get_weights_count
from lmbench.core.engines import CONCRETE_ENGINES
from lmbench.harness.config_schema import HARNESS_KEYS
from lmbench.harness.context import DatasetJob
from lmbench.harness.epoch_log import EpochLogger, log_training_report, salvage
from lmbench.harness.outcome import JobOutcome
from lmbench.harness.progress import EpochProgress
from lmbench.metrics import PRIMARY_METRIC, evaluate_predictions
from lmbench.models import loss_for_task, probabilities
from lmbench.tracking import schema

#: Engines a single LM job may name (``auto`` is for library callers, not benchmark runs).
JOB_ENGINES = CONCRETE_ENGINES
#: Keys of an LM trainer config that are not LM settings (``defaults``: the Hydra defaults list
#: of the raw conf/trainer/lm.yaml, which names its schema).
NOT_SETTINGS = (*HARNESS_KEYS, "defaults")


def trainer_settings(trainer: Any, task: str) -> TrainerSettings:
    """``cfg.trainer`` as typed settings for ``task`` (``loss: auto`` resolved); each error
    names the knob. A job must train: ``trainer.max_epochs=0`` (the engine's "evaluate only")
    would score the untrained model as a finished run, so it is refused here."""
    engine = str(trainer.engine)
    if engine not in JOB_ENGINES:
        raise ValueError(
            f"trainer.engine must be one of {', '.join(JOB_ENGINES)}, got {engine!r}"
        )
    values = dict(trainer.items())
    values["loss"] = loss_for_task(str(values.get("loss", "mse")), task)
    settings = TrainerSettings.from_mapping(values, ignore=NOT_SETTINGS)
    if settings.max_epochs < 1:
        raise ValueError(
            f"trainer.max_epochs must be >= 1 in a benchmark job, got {settings.max_epochs}: "
            "with no epoch the job would score the untrained model as a finished run. Set "
            "trainer.max_epochs=1 or more (max_epochs=0, evaluation only, is for library "
            "callers of TrainerSettings)."
        )
    return settings


def run(job: DatasetJob) -> JobOutcome:
    """Train one LM configuration; log its epoch history (while training), report figure and
    weights. Interrupted (Ctrl-C, SIGTERM) or failed, the run keeps the epochs so far and the
    last accepted weights (:func:`lmbench.harness.epoch_log.salvage`)."""
    cfg, data, tracker = job.cfg, job.data, job.tracker
    settings = trainer_settings(cfg.trainer, data.task)
    model = job.model_factory(settings.loss)()
    dtype = next(model.parameters()).dtype
    epochs = EpochLogger(tracker, lm_epoch_metrics)
    progress: list[Any] = (
        [EpochProgress(settings.max_epochs, f"{data.name}/lm")] if job.progress else []
    )
    x_val = torch.as_tensor(data.x_val, dtype=dtype)
    y_val = torch.as_tensor(data.y_val, dtype=dtype)
    tracker.set_tags({schema.TAG_LOSS: settings.loss})
    started = time.perf_counter()
    try:
        history = settings.fit(
            model, data.x_train, data.y_train, val=(x_val, y_val),
            callbacks=[epochs, *progress], device=str(cfg.get("device", "cpu")),
        )
    except BaseException as exc:
        salvage(tracker, epochs, model, exc)
        raise
    finally:
        for callback in progress:
            callback.close()
    train_time = time.perf_counter() - started
    epochs.history = history
    epochs.flush()
    if getattr(tracker, "log_report", False):
        log_training_report(tracker, history.to_seed_dict(),
                            {**history.regularization_series(), "n_params": history.n_params})
    tracker.log_state_dict(model.state_dict(), "model")
    tracker.log_model(model, data.x_test)
    model.eval()
    with torch.no_grad():
        outputs = model(torch.as_tensor(data.x_test, dtype=dtype))
        if data.task != "regression":
            outputs = probabilities(outputs, settings.loss)
        predictions = outputs.double().numpy()
    task = data.task
    test = evaluate_predictions(task, data.y_test, predictions, inverse_target=job.inverse_target)
    return JobOutcome(
        method="lm",
        dataset=data.name,
        task=task,
        test_metrics=test,
        primary_metric=PRIMARY_METRIC[task][0],
        n_parameters=get_weights_count(model),
        train_time_s=train_time,
        stop_reason=history.stop_reason,
        extra_metrics={
            schema.METRIC_EPOCHS: history.epochs,
            schema.METRIC_FINAL_MU: history.mu[-1],
            schema.METRIC_BEST_EPOCH: (
                math.nan if history.best_epoch is None else history.best_epoch
            ),
            schema.METRIC_BEST_VAL_LOSS: returned_val_loss(history),
        },
    )


def returned_val_loss(history: TrainingHistory) -> float:
    """Validation loss of the weights the fit returned: the best epoch's when patience restored
    them (``best_epoch``), else the last epoch's; NaN without validation."""
    if not history.val_loss:
        return math.nan
    epoch = history.best_epoch
    if epoch is None or not 0 <= epoch < len(history.val_loss):
        return float(history.val_loss[-1])
    return float(history.val_loss[epoch])


def lm_epoch_metrics(history: TrainingHistory) -> dict[str, list[float]]:
    """Per-epoch series logged with ``step`` = epoch (index 0 is the initial state)."""
    return {
        schema.SERIES_TRAIN_LOSS: history.loss,
        schema.SERIES_VAL_LOSS: history.val_loss,
        schema.SERIES_MU: history.mu,
        schema.SERIES_EPOCH_TIME: history.epoch_time,
        schema.SERIES_DAMPING_TRIALS: [float(v) for v in history.trials],
        schema.SERIES_GRADIENT_NORM: history.gradient_norm,
        schema.SERIES_GAIN_RATIO: history.gain_ratio,
        schema.SERIES_TIME_JACOBIAN: history.time_jacobian,
        schema.SERIES_TIME_SYSTEM: history.time_system,
        schema.SERIES_TIME_SOLVE: history.time_solve,
        schema.SERIES_TIME_EVALUATE: history.time_evaluate,
        **history.regularization_series(),  # schema.REGULARIZATION_SERIES, when penalised
    }
