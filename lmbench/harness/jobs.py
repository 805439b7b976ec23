"""One benchmark job: dataset split + model + trainer, every number logged to the tracker.

This is the only module that knows all the parts. It is plain Python over a config mapping
(Hydra's ``DictConfig`` in practice), so tests can call ``run_job`` without the Hydra CLI.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lmbench.baselines import run_baseline
from lmbench.bench.memory import PeakMemory
from lmbench.core import LevenbergMarquardt, StoppingRules, TrainingHistory, get_weights_count
from lmbench.core.damping import make_damping
from lmbench.data import PreparedDataset, TableLoader, prepare_dataset
from lmbench.harness.progress import EpochProgress
from lmbench.harness.reproducibility import seed_everything
from lmbench.metrics import PRIMARY_METRIC, evaluate_predictions
from lmbench.models import build_model
from lmbench.plotting import plot_train_report
from lmbench.tracking import Tracker, flatten_config, tracker_from_config


@dataclass
class JobOutcome:
    """What one job measured (also what the Hydra app returns to sweepers)."""

    method: str
    dataset: str
    task: str
    test_metrics: dict[str, float]
    primary_metric: str
    n_parameters: int | None
    train_time_s: float
    run_id: str | None = None
    stop_reason: str | None = None
    extra_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def primary_value(self) -> float:
        return self.test_metrics.get(self.primary_metric, math.nan)


def run_job(cfg: DictConfig, *, sweep_id: str | None = None, progress: bool = False) -> JobOutcome:
    """Prepare the split, train with ``cfg.trainer``, score the test split once, log it all.

    ``cfg.trainer.runner`` says what kind of job this is: ``lm`` (one LM run), ``baseline``
    (a grid search: lm_grid, xgboost, catboost, adam), ``limits`` (an engine measurement, no
    dataset) or ``paper_check`` (a published-results problem over many random starts).
    """
    runner = str(cfg.trainer.get("runner", "baseline"))
    if runner == "limits":
        from lmbench.harness.limits_job import run_limits_job

        return run_limits_job(cfg, sweep_id=sweep_id)
    if runner == "paper_check":
        from lmbench.harness.paper_checks import run_paper_checks

        return run_paper_checks(
            cfg, functools.partial(tracker_from_config, cfg.tracking, sweep_id=sweep_id)
        )
    started = time.perf_counter()
    seed = int(cfg.seed)
    seed_everything(seed, threads=int(cfg.get("threads", 1)))
    data = prepare_dataset(
        cfg.dataset,
        seed=seed,
        val_fraction=float(cfg.split.val_fraction),
        test_fraction=float(cfg.split.test_fraction),
        max_rows=cfg.split.max_rows,
    )
    trainer_cfg = cfg.trainer
    method = str(trainer_cfg.name)
    tags = {
        "method": method,
        "dataset": data.name,
        "task": data.task,
        "model": str(cfg.model.get("name", "mlp")),
        **{str(k): str(v) for k, v in (cfg.get("tags") or {}).items()},
    }
    tracker = tracker_from_config(
        cfg.tracking,
        run_name=run_name(cfg, method, data.name),
        sweep_id=sweep_id,
        device=str(cfg.get("device", "cpu")),
        dataset_hash=data.hash,
        tags=tags,
    )
    with tracker, PeakMemory() as memory:
        tracker.log_config(OmegaConf.to_container(cfg, resolve=True))
        tracker.log_dict(data.hashes, "dataset_hashes.json")
        model_factory = _model_factory(cfg, data)
        if str(trainer_cfg.get("runner", "search")) == "lm":
            outcome = _run_lm(cfg, data, model_factory, tracker, progress)
        else:
            outcome = _run_search(cfg, data, model_factory, tracker)
        outcome.run_id = getattr(tracker, "run_id", None)
        wall = time.perf_counter() - started
        tracker.log_metrics(
            {
                **{f"test_{k}": v for k, v in outcome.test_metrics.items()},
                **outcome.extra_metrics,
                "n_parameters": outcome.n_parameters,
                "train_time_s": outcome.train_time_s,
                "wall_time_s": wall,
                "peak_rss_bytes": memory.peak_bytes,
            }
        )
        tracker.set_tags(
            {
                "primary_metric": outcome.primary_metric,
                **({"stop_reason": outcome.stop_reason} if outcome.stop_reason else {}),
            }
        )
    return outcome


# ---------------------------------------------------------------------- the LM runner
def _run_lm(
    cfg: DictConfig,
    data: PreparedDataset,
    model_factory: Callable[[], nn.Module],
    tracker: Tracker,
    progress: bool,
) -> JobOutcome:
    t = cfg.trainer
    model = model_factory()
    dtype = next(model.parameters()).dtype
    callbacks: list[Any] = [EpochProgress(int(t.max_epochs), f"{data.name}/lm")] if progress else []
    system_dtype = getattr(torch, str(t.system_dtype)) if t.get("system_dtype") else None
    engine = str(t.engine)
    if engine not in ("in_memory", "streaming", "cache"):
        raise ValueError(
            f"trainer.engine must be in_memory, streaming or cache, got {engine!r}"
        )
    trainer = LevenbergMarquardt(
        model,
        damping=make_damping(str(t.damping), float(t.mu_init), float(t.demping_coef)),
        stopping=StoppingRules(
            max_epochs=int(t.max_epochs),
            min_error=None if t.min_error is None else float(t.min_error),
            min_gradient=float(t.min_gradient),
            mu_max=float(t.mu_max),
            patience=None if t.patience is None else int(t.patience),
        ),
        inner_steps=int(t.inner_steps),
        form="primal" if engine != "in_memory" else str(t.form),
        solver="cg" if engine == "cache" else "cholesky",
        temp_folder=t.get("temp_folder") if engine == "cache" else None,
        system_dtype=system_dtype,
        chunk_rows=t.get("chunk_rows"),
        callbacks=callbacks,
        device=str(cfg.get("device", "cpu")),
    )
    x_val = torch.as_tensor(data.x_val, dtype=dtype)
    y_val = torch.as_tensor(data.y_val, dtype=dtype)
    started = time.perf_counter()
    try:
        if engine == "in_memory":
            history = trainer.fit(data.x_train, data.y_train, val=(x_val, y_val))
        else:
            loader = TableLoader(data.x_train, data.y_train, dtype=dtype).loader(
                int(t.batch_size)
            )
            history = trainer.fit_loader(loader, val=(x_val, y_val))
    finally:
        for callback in callbacks:
            callback.close()
    train_time = time.perf_counter() - started
    tracker.log_epoch_history(lm_epoch_metrics(history))
    if getattr(tracker, "log_report", False):
        figure = plot_train_report(history)
        tracker.log_figure(figure, "training_report.png")
        tracker.log_dict(history.to_seed_dict(), "history_seed.json")
    tracker.log_state_dict(model.state_dict(), "model")
    model.eval()
    with torch.no_grad():
        predictions = model(torch.as_tensor(data.x_test, dtype=dtype)).double().numpy()
    task = data.task
    test = evaluate_predictions(
        task, data.y_test, predictions, inverse_target=_inverse_target(data)
    )
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
            "epochs": history.epochs,
            "final_mu": history.mu[-1],
            "best_epoch": history.best_epoch if history.best_epoch is not None else math.nan,
        },
    )


def lm_epoch_metrics(history: TrainingHistory) -> dict[str, list[float]]:
    """Per-epoch series logged with ``step`` = epoch (index 0 is the initial state)."""
    return {
        "train_loss": history.loss,
        "val_loss": history.val_loss,
        "mu": history.mu,
        "epoch_time_s": history.epoch_time,
        "damping_trials": [float(v) for v in history.trials],
        "gradient_norm": history.gradient_norm,
        "gain_ratio": history.gain_ratio,
        "time_jacobian_s": history.time_jacobian,
        "time_system_s": history.time_system,
        "time_solve_s": history.time_solve,
        "time_evaluate_s": history.time_evaluate,
    }


# ---------------------------------------------------------------------- grid-search runners
def _run_search(
    cfg: DictConfig,
    data: PreparedDataset,
    model_factory: Callable[[], nn.Module],
    tracker: Tracker,
) -> JobOutcome:
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(trainer_cfg, dict)
    started = time.perf_counter()
    result = run_baseline(
        str(cfg.trainer.name),
        trainer_cfg,
        x_train=data.x_train,
        y_train=data.y_train,
        x_val=data.x_val,
        y_val=data.y_val,
        task=data.task,
        seed=int(cfg.seed),
        # LM's own grid searches widths; the others train cfg.model (Adam) or ignore it.
        model_factory=None if str(cfg.trainer.name) == "lm" else model_factory,
        inverse_target=_inverse_target(data),
    )
    train_time = time.perf_counter() - started
    if result.history:
        tracker.log_epoch_history(result.history)
    tracker.log_dict(
        {
            "best_params": result.best_params,
            "grid": [score.as_dict() for score in result.grid_scores],
        },
        "grid_search.json",
    )
    tracker.set_tags({f"best.{k}": v for k, v in result.best_params.items()})
    if isinstance(result.model, nn.Module):
        tracker.log_state_dict(result.model.state_dict(), "model")
    test = result.evaluate(data.x_test, data.y_test, inverse_target=_inverse_target(data))
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


# ---------------------------------------------------------------------- helpers
def _model_factory(cfg: DictConfig, data: PreparedDataset) -> Callable[[], nn.Module]:
    in_features = data.x_train.shape[1]
    out_features = data.y_train.shape[1]

    def factory() -> nn.Module:
        return build_model(cfg.model, in_features, out_features, data.task)

    return factory


def _inverse_target(data: PreparedDataset) -> Callable[[np.ndarray], np.ndarray] | None:
    return data.inverse_transform_target if data.task == "regression" else None


def run_name(cfg: Mapping[str, Any], method: str, dataset: str) -> str:
    """Readable and unique enough: method/dataset/model/seed plus a short config digest."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(plain, Mapping)
    digest = hashlib.sha256(repr(sorted(flatten_config(plain).items())).encode()).hexdigest()
    model = plain.get("model", {}).get("name", "mlp")
    return f"{method}-{dataset}-{model}-s{plain['seed']}-{digest[:8]}"


