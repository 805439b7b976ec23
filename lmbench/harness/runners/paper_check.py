"""The ``paper_check`` runner: K random starts of LM on one classic problem, one MLflow run.

Problems, their data and networks: ``lmbench.data.problems``. Each start ``k`` of a run with
seed ``s`` draws its initial weights after ``torch.manual_seed(s * 1_000_000 + k)`` and trains
with ``TrainerSettings`` (the seed's damping, stopping at the target MSE); a start succeeds when
its final training MSE is <= the target. The run logs ``success_rate``,
``epochs_mean/std/median`` and ``time_mean_s/std_s`` (over successful starts, as the LM
literature reports them), ``final_mse_median`` (all starts), ``n_starts``, the per-start values
as metric histories (``start_*`` with step = start index) and as ``starts.json`` /
``starts.csv`` artifacts. Time is the sum of the LM epochs' times (not the one-off torch.func
warm-up). Settings: ``cfg.job`` (``conf/job/paper_check.yaml``). A problem with a
``batch_size`` (``sinc_minibatch``) trains lmbench's mini-batch LM and torch-levenberg-marquardt
side by side on the same batches (``lmbench.harness.paper_check_minibatch``); its time per
start is then the wall time of training, and both libraries' final MSE and time are logged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from lmbench.core import get_weights_count
from lmbench.harness.outcome import JobOutcome
from lmbench.harness.paper_check_minibatch import run_side_by_side, side_by_side_metrics
from lmbench.harness.paper_check_settings import SEED_STRIDE, CheckSettings
from lmbench.harness.paper_check_stats import StartResult, csv_text, summarize_starts
from lmbench.harness.reproducibility import seed_everything
from lmbench.models.mlp import build_mlp
from lmbench.tracking import Tracker, schema, tracker_from_config

TrackerFactory = Callable[..., Tracker]
#: Composed by default but not used by this job (left out of the logged config).
UNUSED_SECTIONS = ("dataset", "model", "split", "trainer")


def run_start(settings: CheckSettings, start: int, base_seed: int) -> StartResult:
    """Train one random start and measure it."""
    problem = settings.problem
    x, y = problem.data(settings.dtype)
    seed = base_seed * SEED_STRIDE + start
    torch.manual_seed(seed)
    net = build_mlp(problem.n_inputs, 1, (problem.n_hidden,), "tanh", "linear", settings.dtype)
    history = settings.trainer_settings().fit(net, x, y)
    final = float(history.loss[-1])
    return StartResult(
        start=start,
        seed=seed,
        success=math.isfinite(final) and final <= settings.target_mse,
        epochs=history.epochs,
        final_mse=final,
        time_s=float(sum(history.epoch_time)),
        stop_reason=history.stop_reason,
        mse_at={e: float(history.loss[e]) for e in problem.record_at if e < len(history.loss)},
    )


def run(
    cfg: DictConfig, *, sweep_id: str | None = None, parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> JobOutcome:
    """The registry's entry: ``run_paper_checks`` with the harness's tracker; ``tags`` are
    added to the run's own (the harness's ``config_hash``)."""

    def factory(**run_kwargs: Any) -> Tracker:
        run_kwargs["tags"] = {**(run_kwargs.get("tags") or {}), **(tags or {})}
        return tracker_from_config(cfg.tracking, sweep_id=sweep_id,
                                   parent_run_id=parent_run_id, **run_kwargs)

    return run_paper_checks(cfg, factory)


def run_paper_checks(cfg: DictConfig, tracker_factory: TrackerFactory) -> JobOutcome:
    """Run the check of ``cfg.job.problem`` and log it as ONE run.

    ``tracker_factory(run_name=..., tags=..., device=..., dataset_hash=...)`` returns the run's
    tracker. Returns the ``JobOutcome`` the app logs (primary metric: ``success_rate``).
    """
    settings = CheckSettings.from_config(cfg.job)
    problem = settings.problem
    base_seed = int(cfg.get("seed", 0))
    seed_everything(base_seed, threads=int(cfg.get("threads", 1)))
    x, _ = problem.data(settings.dtype)
    tags = {
        schema.TAG_KIND: schema.KIND_PAPER_CHECK, schema.TAG_PROBLEM: problem.name,
        schema.TAG_METHOD: schema.METHOD_LM, schema.TAG_DATASET: problem.name,
        schema.TAG_TASK: schema.KIND_PAPER_CHECK, schema.TAG_MODEL: problem.network,
        **{str(k): str(v) for k, v in (cfg.get("tags") or {}).items()},
    }
    tracker = tracker_factory(
        run_name=f"paper_check-{problem.name}-s{base_seed}",
        tags=tags,
        device=str(cfg.get("device", "cpu")),
        dataset_hash=settings.data_hash(),
    )
    started = time.perf_counter()
    with tracker:
        config = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(config, dict)
        for unused in UNUSED_SECTIONS:
            config.pop(unused, None)
        tracker.log_config(config)
        tracker.set_tags({schema.TAG_CHECK_PREFIX + k: v for k, v in settings.params().items()})
        if problem.batch_size is None:
            results, references = [run_start(settings, k, base_seed)
                                   for k in range(settings.starts)], []
        else:
            pairs = [run_side_by_side(settings, k, base_seed) for k in range(settings.starts)]
            results, references = [p[0] for p in pairs], [p[1] for p in pairs]
        metrics = summarize_starts(results, problem.record_at)
        if references:
            metrics.update(side_by_side_metrics(results, references))
        n_parameters = get_weights_count(
            build_mlp(problem.n_inputs, 1, (problem.n_hidden,), "tanh", "linear")
        )
        tracker.log_metrics({
            **metrics,
            schema.METRIC_N_PARAMETERS: n_parameters,
            schema.METRIC_N_SAMPLES: int(x.shape[0]),
            schema.METRIC_TRAIN_TIME: metrics[schema.METRIC_TIME_TOTAL],
            schema.METRIC_WALL_TIME: time.perf_counter() - started,
        })
        tracker.log_epoch_history({
            schema.SERIES_START_EPOCHS: [r.epochs for r in results],
            schema.SERIES_START_FINAL_MSE: [r.final_mse for r in results],
            schema.SERIES_START_TIME: [r.time_s for r in results],
            schema.SERIES_START_SUCCESS: [float(r.success) for r in results],
            **({schema.SERIES_START_REFERENCE_FINAL_MSE: [r.final_mse for r in references],
                schema.SERIES_START_REFERENCE_TIME: [r.time_s for r in references]}
               if references else {}),
        })
        rows = [{**r.as_row(), **(references[i].as_row() if references else {})}
                for i, r in enumerate(results)]
        tracker.log_dict({"settings": settings.params(), "starts": rows}, "starts.json")
        tracker.log_text(csv_text(rows), "starts.csv")
        tracker.set_tags({schema.TAG_PRIMARY_METRIC: schema.METRIC_SUCCESS_RATE})
    return JobOutcome(
        method="paper_check",
        dataset=problem.name,
        task="paper_check",
        test_metrics={"success_rate": metrics["success_rate"]},
        primary_metric="success_rate",
        n_parameters=n_parameters,
        train_time_s=metrics["time_total_s"],
        run_id=getattr(tracker, "run_id", None),
        extra_metrics=metrics,
    )
