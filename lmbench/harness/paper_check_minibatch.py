"""A mini-batch paper check run side by side with torch-levenberg-marquardt (the reference).

Each start trains both libraries from the same initial weights (one ``torch.manual_seed`` per
start; the net is copied) on the same rows, for the same epochs and on the same batches: epoch
e's batches are ``lmbench.core.minibatch.batch_rows(N, batch_size, seed, e)`` for both, with the
start's seed. lmbench runs its mini-batch trainer (``TrainerSettings.mini_batch_size``) with the
check's damping (the seed rule: mu_init, x/÷ demping_coef, on the batch's J^T J). The reference
runs as its README's sinc example does: ``LevenbergMarquardtModule(model, MSELoss(),
learning_rate=1.0, attempts_per_step=10, solve_method="qr")`` with its default
``StandardDampingStrategy`` (lambda 1e-3 on J^T J / batch rows, x10 / x0.1, bounds 1e-10 and
1e10), one ``training_step`` per batch.

Measured per implementation: the final training MSE over all rows (one full pass after the
last epoch, outside the timing) and the wall time of training (each library's setup outside
it; torch.func is warmed up once beforehand so neither pays that import). lmbench's time
includes its full-pass loss after each epoch; the reference's ``loss_epoch`` (the README's
figure, the mean of the last epoch's batch losses) is kept beside it.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lmbench.core.minibatch import batch_rows
from lmbench.harness.paper_check_settings import SEED_STRIDE, CheckSettings
from lmbench.harness.paper_check_stats import StartResult
from lmbench.models.mlp import build_mlp
from lmbench.tracking import schema


@dataclass(frozen=True)
class ReferenceResult:
    """What torch-levenberg-marquardt did on one start."""

    final_mse: float
    loss_epoch: float
    time_s: float
    steps: int
    final_damping: float

    def as_row(self) -> dict[str, Any]:
        return {"reference_final_mse": self.final_mse, "reference_loss_epoch": self.loss_epoch,
                "reference_time_s": self.time_s, "reference_steps": self.steps,
                "reference_final_damping": self.final_damping}


def warm_up_torch_func() -> None:
    """One tiny vmap-of-jacrev call: the first torch.func use imports torch._dynamo (seconds),
    which would otherwise be charged to whichever library runs first."""
    weight = torch.ones(2)
    torch.func.vmap(torch.func.jacrev(lambda w, v: w * v), in_dims=(None, 0))(weight,
                                                                          torch.ones(3, 2))


def full_mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean())


def run_reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                  epochs: int, seed: int) -> ReferenceResult:
    """torch-levenberg-marquardt as in its README's sinc example, one ``training_step`` per
    batch of ``batch_rows`` (the batches lmbench takes)."""
    try:
        from torch_levenberg_marquardt.loss import MSELoss
        from torch_levenberg_marquardt.training import LevenbergMarquardtModule
    except ImportError as exc:
        raise ImportError(
            "the side-by-side paper check needs torch-levenberg-marquardt: "
            "pip install 'lmbench[bench]' (or pip install torch-levenberg-marquardt)"
        ) from exc

    module = LevenbergMarquardtModule(model, loss_fn=MSELoss(), learning_rate=1.0,
                                      attempts_per_step=10, solve_method="qr")
    batches = [[(x[rows], y[rows]) for rows in batch_rows(len(x), batch_size, seed, epoch)]
               for epoch in range(1, epochs + 1)]
    losses: list[float] = []
    steps = 0
    started = time.perf_counter()
    for epoch_batches in batches:
        losses = []
        for xb, yb in epoch_batches:
            _, loss, stop, _ = module.training_step(xb, yb)
            losses.append(float(loss))
            steps += 1
            if stop:
                break
        if stop:
            break
    elapsed = time.perf_counter() - started
    return ReferenceResult(
        final_mse=full_mse(model, x, y),
        loss_epoch=statistics.fmean(losses) if losses else math.nan,
        time_s=elapsed,
        steps=steps,
        final_damping=float(module.damping_strategy.get_current_damping()),
    )


def run_side_by_side(settings: CheckSettings, start: int, base_seed: int
                     ) -> tuple[StartResult, ReferenceResult]:
    """Start ``start``: lmbench's mini-batch LM, then the reference, from the same weights."""
    problem = settings.problem
    batch_size = problem.batch_size
    if batch_size is None:
        raise ValueError(f"problem {problem.name!r} has no batch_size: it is a full-batch check")
    x, y = problem.data(settings.dtype)
    seed = base_seed * SEED_STRIDE + start
    torch.manual_seed(seed)
    net = build_mlp(problem.n_inputs, 1, (problem.n_hidden,), "tanh", "linear", settings.dtype)
    reference_net = copy.deepcopy(net)
    warm_up_torch_func()
    trainer_settings = settings.trainer_settings().with_(mini_batch_size=batch_size,
                                                         mini_batch_seed=seed)
    started = time.perf_counter()
    history = trainer_settings.fit(net, x, y)
    lmbench_time = time.perf_counter() - started
    final = float(history.loss[-1])
    ours = StartResult(
        start=start, seed=seed, success=math.isfinite(final) and final <= settings.target_mse,
        epochs=history.epochs, final_mse=final, time_s=lmbench_time,
        stop_reason=history.stop_reason,
        mse_at={e: float(history.loss[e]) for e in problem.record_at if e < len(history.loss)},
    )
    reference = run_reference(reference_net, x, y, batch_size, settings.max_epochs, seed)
    return ours, reference


def side_by_side_metrics(ours: Sequence[StartResult], references: Sequence[ReferenceResult]
                         ) -> dict[str, float]:
    """Per implementation: median final MSE and mean wall time over the starts."""

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else math.nan

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else math.nan

    return {
        schema.METRIC_LMBENCH_FINAL_MSE: median([r.final_mse for r in ours]),
        schema.METRIC_LMBENCH_TIME: mean([r.time_s for r in ours]),
        schema.METRIC_REFERENCE_FINAL_MSE: median([r.final_mse for r in references]),
        schema.METRIC_REFERENCE_LOSS_EPOCH: median([r.loss_epoch for r in references]),
        schema.METRIC_REFERENCE_TIME: mean([r.time_s for r in references]),
    }
