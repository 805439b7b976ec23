"""One full-batch LM epoch per implementation, on the same workload, ready to be timed.

* ``lmbench``: the trainer ``TrainerSettings`` builds, seed damping, ``form="primal"``
  and its default Jacobian chunks (on the CPU at most half of JᵀJ's bytes; variants:
  ``lmbench_auto`` with ``form="auto"``, ``lmbench_whole_jacobian`` with one chunk of up to
  ``MAX_JACOBIAN_BUDGET``, the default before chunking). Its time is the epoch time the trainer
  records: the first epoch of a fit, which allocates JᵀJ's buffer (variant
  ``lmbench_later_epoch``: the second epoch of a two-epoch fit, which reuses it, as every
  epoch after the first does).
* ``torch_levenberg_marquardt``: ``LevenbergMarquardtModule.training_step`` on the whole batch,
  ``solve_method="cholesky"`` (variant ``torch_levenberg_marquardt_qr``: its default QR) and
  its ``StandardDampingStrategy`` set up to follow our seed rule (``reference_damping``).
* ``plain_vmap``: the reference LM of ``lmbench.bench.reference``.
* ``floor``: the GEMM + Cholesky of ``lmbench.bench.floor`` at the epoch's M x P (variant
  ``syrk_floor``: one syrk + potrf in place, the least an epoch that forms JᵀJ can do).

The reference library is imported only when its runners are built.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lmbench.bench.floor import floor_epoch, floor_epoch_syrk, floor_jacobian
from lmbench.bench.reference import EpochOutcome, LMSettings, PlainVmapLM
from lmbench.bench.timing import sync, tick
from lmbench.bench.workloads import Workload
from lmbench.core import LevenbergMarquardt
from lmbench.core.sources import MAX_JACOBIAN_BUDGET
from lmbench.core.system import SystemForm
from lmbench.tracking import schema

#: The implementations the performance schema knows (the tag ``implementation``).
IMPLEMENTATIONS = schema.IMPLEMENTATIONS
#: Extra variants measured alongside (kept in the JSON, not logged as runs): lmbench with
#: ``form="auto"``; lmbench with its Jacobian chunk bounded to half the size of JᵀJ; the
#: reference library with its default QR solver; lmbench's second epoch of a fit.
VARIANTS = ("lmbench_auto", "lmbench_whole_jacobian", "torch_levenberg_marquardt_qr",
            "syrk_floor", "lmbench_later_epoch")
REFERENCE = "torch_levenberg_marquardt"
FLOOR = "floor"

Runner = Callable[[], EpochOutcome]


# ------------------------------------------------------------------------------ lmbench
def lmbench_trainer(
    model: nn.Module, settings: LMSettings, form: SystemForm = "primal", max_epochs: int = 1,
    callbacks: list[Callable[..., Any]] | None = None, **options: Any,
) -> LevenbergMarquardt:
    """lmbench's trainer with the seed rule of ``settings``, no min-error stop (``options``:
    other ``TrainerSettings`` fields)."""
    trainer_settings = settings.trainer_settings(max_epochs, form=form, **options)
    return trainer_settings.build(model, callbacks=callbacks)


def prepare_lmbench(
    work: Workload, settings: LMSettings, form: SystemForm = "primal", whole_jacobian: bool = False,
    epoch: int = 1,
) -> Runner:
    """Epoch ``epoch`` of one lmbench ``fit`` from the initial weights (the last one if the fit
    stopped before it); time = the epoch time the trainer records."""
    options = {"jacobian_budget_bytes": MAX_JACOBIAN_BUDGET} if whole_jacobian else {}
    trainer = lmbench_trainer(work.fresh_model(), settings, form, max_epochs=epoch, **options)

    def run() -> EpochOutcome:
        history = trainer.fit(work.x, work.y)
        timed = min(epoch, len(history.epoch_time) - 1)
        split = {phase: float(getattr(history, f"time_{phase}")[timed])
                 for phase in ("jacobian", "system", "solve", "evaluate")}
        return EpochOutcome(history.epoch_time[timed], history.loss[timed],
                            history.trials[timed], bool(history.accepted[timed]), split)

    return run


# ------------------------------------------------------------------ torch-levenberg-marquardt
def reference_damping(settings: LMSettings, n_samples: int) -> Any:
    """torch-levenberg-marquardt's ``StandardDampingStrategy`` following our seed rule.

    It scales the system by 1/N (N = samples), so its damping lam = mu / N gives our step;
    bounds are mapped the same way; increase/decrease factors are ours.
    """
    from torch_levenberg_marquardt.damping import StandardDampingStrategy

    return StandardDampingStrategy(
        starting_value=settings.mu_init / n_samples,
        dec_factor=1.0 / settings.factor,
        inc_factor=settings.factor,
        min_value=settings.mu_min / n_samples,
        max_value=settings.mu_max / n_samples,
    )


def reference_module(
    model: nn.Module, work: Workload, settings: LMSettings, solve_method: str = "cholesky"
) -> Any:
    """``LevenbergMarquardtModule`` on ``model`` (MSE, vmap Jacobian, Cholesky by default)."""
    from torch_levenberg_marquardt.loss import MSELoss
    from torch_levenberg_marquardt.training import LevenbergMarquardtModule

    module = LevenbergMarquardtModule(
        model,
        loss_fn=MSELoss(),
        damping_strategy=reference_damping(settings, work.n_samples),
        attempts_per_step=settings.inner_steps,
        solve_method=solve_method,
        use_vmap=True,
    )
    # Its first training_step runs one extra forward pass only to learn the batch size; set it
    # here so the timed step is the steady-state step every later epoch pays.
    if hasattr(module, "_batch_size") and hasattr(module, "_num_residuals"):
        module._batch_size = work.n_samples
        module._num_residuals = work.n_residuals
    return module


def prepare_reference(work: Workload, settings: LMSettings, solve_method: str = "cholesky"
                      ) -> Runner:
    """One full-batch ``training_step`` of torch-levenberg-marquardt from the initial weights."""
    module = reference_module(work.fresh_model(), work, settings, solve_method)
    with torch.no_grad():
        start_loss = float(module.loss_fn(module.forward(work.x), work.y))

    def run() -> EpochOutcome:
        sync(work.device)
        started = time.perf_counter()
        _, loss, _, logs = module.training_step(work.x, work.y)
        loss_value = float(loss)
        sync(work.device)
        elapsed = time.perf_counter() - started
        # training_step returns the new loss only when a trial lowered it
        return EpochOutcome(elapsed, loss_value, int(logs["attempts"]), loss_value < start_loss)

    return run


def reference_split(work: Workload, settings: LMSettings, repeats: int = 3) -> dict[str, float]:
    """Where torch-levenberg-marquardt's step spends its time (min over repeats per phase):
    the phases of its ``training_step``, replayed through its own methods (a diagnostic that
    reads private methods of version 1.2.x; empty if they are not there)."""
    module = reference_module(work.fresh_model(), work, settings)
    if not all(hasattr(module, n) for n in ("_compute_jacobian", "_solve", "forward")):
        return {}
    best: dict[str, float] = {}
    for _ in range(max(repeats, 1)):
        ticks = [time.perf_counter()]
        jac, residuals, _ = module._compute_jacobian(work.x, work.y, None)
        ticks.append(tick(work.device))
        gram, rhs = jac.T @ jac, jac.T @ residuals
        gram *= 1.0 / work.n_samples
        rhs *= 1.0 / work.n_samples
        ticks.append(tick(work.device))
        damped = module.damping_strategy.apply(gram)
        ticks.append(tick(work.device))
        module._solve(damped, rhs)
        ticks.append(tick(work.device))
        with torch.no_grad():
            module.loss_fn(module.forward(work.x), work.y)
        ticks.append(tick(work.device))
        del jac, residuals, gram, rhs, damped
        phases = ("jacobian", "system", "damping", "solve", "evaluate")
        for phase, start, stop in zip(phases, ticks, ticks[1:], strict=False):
            best[phase] = min(best.get(phase, math.inf), stop - start)
    return best


# ------------------------------------------------------------------ plain vmap and the floor
def prepare_plain_vmap(work: Workload, settings: LMSettings) -> Runner:
    """One epoch of ``PlainVmapLM`` from the initial weights."""
    plain = PlainVmapLM(work.fresh_model(), settings)

    def run() -> EpochOutcome:
        sync(work.device)
        outcome = plain.step(work.x, work.y)
        sync(work.device)
        return outcome

    return run


def prepare_floor(work: Workload, symmetric: bool = False) -> Runner:
    """JᵀJ as one full GEMM of the epoch's M x P size plus one Cholesky of P x P (``symmetric``:
    the ``syrk_floor`` variant, JᵀJ's triangle by one syrk and potrf in place)."""
    jac = floor_jacobian(work.n_residuals, work.n_params, work.x.dtype, work.device, seed=7)
    kernel = floor_epoch_syrk if symmetric else floor_epoch

    def run() -> EpochOutcome:
        sync(work.device)
        started = time.perf_counter()
        ok = kernel(jac)
        sync(work.device)
        return EpochOutcome(time.perf_counter() - started, math.nan, 1, ok)

    return run


def runners(work: Workload, settings: LMSettings,
            names: Sequence[str] = IMPLEMENTATIONS + VARIANTS) -> dict[str, Callable[[], Runner]]:
    """Factories of fresh one-epoch runners (setup is not timed), by implementation name."""
    table: dict[str, Callable[[], Runner]] = {
        "lmbench": lambda: prepare_lmbench(work, settings, "primal"),
        "lmbench_auto": lambda: prepare_lmbench(work, settings, "auto"),
        "lmbench_whole_jacobian": lambda: prepare_lmbench(work, settings, "primal",
                                                          whole_jacobian=True),
        "lmbench_later_epoch": lambda: prepare_lmbench(work, settings, "primal", epoch=2),
        REFERENCE: lambda: prepare_reference(work, settings),
        "torch_levenberg_marquardt_qr": lambda: prepare_reference(work, settings, "qr"),
        "plain_vmap": lambda: prepare_plain_vmap(work, settings),
        FLOOR: lambda: prepare_floor(work),
        "syrk_floor": lambda: prepare_floor(work, symmetric=True),
    }
    unknown = set(names) - set(table)
    if unknown:
        raise ValueError(f"unknown implementations {sorted(unknown)}; known: {sorted(table)}")
    return {name: table[name] for name in names}
