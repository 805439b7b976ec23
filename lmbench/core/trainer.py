"""The Levenberg-Marquardt loop: epochs and damping trials; everything else lives beside it.

One epoch = assemble the Gauss-Newton system at the current weights (``lmbench.core.system``:
Jacobian chunks folded into J^T J and J^T r, or J J^T in the dual form, or a matrix-free
operator over the disk cache), then up to ``inner_steps`` damping trials, each one solve and one
forward pass over the data. The first trial whose step the damping rule accepts moves the
weights; if none does, the weights stay and the already-built system is reused next epoch with a
larger mu (nothing is recomputed). Stopping rules and best weights are ``lmbench.core.stopping``,
checkpoints ``lmbench.core.checkpoint``, row sources and input checks ``lmbench.core.sources``.

The model's own parameters always hold the last accepted weights: trial weights live only in a
flat tensor passed to ``torch.func.functional_call``. So an exception, a non-finite loss or a
KeyboardInterrupt leaves the model at its last good values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from lmbench.core.cache import JacobianCache
from lmbench.core.callbacks import CallbackSpec, EpochInfo, as_callbacks
from lmbench.core.checkpoint import (
    TrainingSetup,
    checkpoint_payload,
    restore_checkpoint,
    save_checkpoint,
)
from lmbench.core.checks import check_device, check_finite_objective, check_materialised
from lmbench.core.damping import DampingRule, DampingState, SeedDamping
from lmbench.core.distributed import LocalReducer, Reducer
from lmbench.core.engines import LMEngine, engine_for_solver
from lmbench.core.geodesic import GeodesicAcceleration
from lmbench.core.history import TrainingHistory
from lmbench.core.jacobian import JacobianMode, ResidualFunction
from lmbench.core.losses import Loss, as_loss
from lmbench.core.matrix_free import WarmStart
from lmbench.core.outcomes import DampedStep, EpochTally
from lmbench.core.params import FlatParameters
from lmbench.core.regularization import Regularization, RegularizationState, weight_energy
from lmbench.core.solve import GramBuffer, Step
from lmbench.core.sources import (
    RowSource,
    check_inference_layers,
    chunk_rows_for,
    default_jacobian_budget,
    loader_rows,
    memory_rows,
    output_shape,
    validation_source,
)
from lmbench.core.stopping import (
    CONVERGED_GTOL,
    TIME_LIMIT,
    BestWeights,
    FitClock,
    StoppingRules,
    TimeLimitReached,
)
from lmbench.core.system import GaussNewtonSystem, SystemForm, default_system_dtype
from lmbench.core.timing import PhaseTimer

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ValidationData = tuple[Any, Any] | Iterable[Any] | None

__all__ = ["FitState", "LevenbergMarquardt", "StoppingRules"]


@dataclass
class FitState:
    """What one call of ``fit_source`` works with (the trainer itself holds only settings)."""

    source: RowSource
    val_source: RowSource | None
    residual_fn: ResidualFunction
    n_outputs: int
    damping: DampingState
    best: BestWeights
    epoch: int = 0
    cache: JacobianCache | None = None
    warm: WarmStart = field(default_factory=WarmStart)  # the matrix-free solver's CG start
    system: GaussNewtonSystem | None = None  # kept while the weights have not moved
    regularization: RegularizationState = field(default_factory=RegularizationState)
    train_rows: float = 0.0  # training rows (over every worker), counted at the start
    scale_floor: torch.Tensor | None = None  # More's running max of diag(J^T J)
    clock: FitClock = field(default_factory=FitClock)  # StoppingRules.time_limit_s
    gram_buffer: GramBuffer = field(default_factory=GramBuffer)  # reused by each epoch


class LevenbergMarquardt:
    """Levenberg-Marquardt training of any ``nn.Module`` on a sum-of-squares objective.

    Stops on the convergence tests of ``StoppingRules`` (ftol, xtol, gtol), ``min_error``,
    ``min_gradient``, ``mu_max``, validation patience or ``max_epochs``; the history's
    ``stop_reason`` says which (``converged_*`` when the run converged).

    Minimises E = sum over samples of the ``loss`` (``lmbench.core.losses``: ``mse`` by default,
    1/2 * sum((model(x) - y)^2), or ``cross_entropy``, ``bce``, ``huber``, ``sqrt_cross_entropy``)
    with generalised Gauss-Newton steps; ``loss_fn`` (default: that loss, mean-reduced) is what
    the history reports and what ``min_error`` and validation use.

    Args:
        model: the network; trained in place. Its device and dtype are used unless ``device``.
        loss: the objective, a loss name or ``Loss`` (default ``mse``).
        loss_fn: reporting loss ``loss_fn(pred, target)`` (default: ``loss``'s mean).
        damping: a damping rule (default ``SeedDamping(mu_init=10, factor=10)``).
        stopping: stopping rules (default ``StoppingRules()``).
        inner_steps: damping trials per epoch before giving up on that epoch.
        regularization: the weight penalty (``lmbench.core.regularization``: weight decay, or
            Bayesian regularisation as MATLAB's trainbr); default none.
        acceleration: geodesic acceleration of each step (``lmbench.core.geodesic``; mse loss,
            primal system); default none.
        engine: how each epoch's system is built (``lmbench.core.engines``: ``InMemoryEngine``,
            ``StreamingEngine``, ``CacheEngine``, ``MatrixFreeEngine``); default from the
            seed-style ``form``, ``solver``, ``temp_folder`` and ``cg_max_iter`` below.
        form: ``primal`` (J^T J), ``dual`` (J J^T) or ``auto`` (the smaller system).
        solver: ``cholesky`` (a factorisation per damping trial), ``cg`` (CG over a Jacobian
            cache on disk) or ``matrix_free`` (CG on Jacobian-vector products, no J stored).
        temp_folder: where the ``cg`` solver's Jacobian cache lives (a private sub-folder is
            created and always removed).
        cg_max_iter: CG iterations per damping trial of the ``cg`` and ``matrix_free`` solvers.
        reducer: sums partial systems across data-parallel workers (``AllReduce``); default
            single process.
        jacobian_mode: ``reverse``, ``forward`` or ``auto`` (by shape).
        system_dtype: dtype of J^T J and the solves; default the model's dtype (float32 for
            half-precision and bfloat16 models: their Jacobians are computed in that dtype).
        chunk_rows: samples per Jacobian chunk; default from ``jacobian_budget_bytes``.
        jacobian_budget_bytes: memory for one chunk's Jacobian when ``chunk_rows`` is None;
            default ``sources.default_jacobian_budget`` (CPU: half of J^T J's bytes).
        mu_min: floor for mu so that repeated successes cannot underflow it.
        callbacks: metric mapping, callback objects or functions, called after each epoch.
        checkpoint_dir: folder for per-epoch checkpoints (None: no checkpoints).
        device: move the model there first (default: where the model already is).
    """

    #: Whether steps are tested for convergence (ftol, xtol, gtol): full-batch steps only.
    tests_convergence: ClassVar[bool] = True

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: str | Loss | None = None,
        loss_fn: LossFn | None = None,
        damping: DampingRule | None = None,
        stopping: StoppingRules | None = None,
        inner_steps: int = 10,
        regularization: Regularization | None = None,
        acceleration: GeodesicAcceleration | None = None,
        engine: LMEngine | None = None,
        form: SystemForm = "auto",
        solver: Literal["cholesky", "cg", "matrix_free"] = "cholesky",
        temp_folder: str | Path | None = None,
        cg_max_iter: int = 500,
        reducer: Reducer | None = None,
        jacobian_mode: JacobianMode = "auto",
        system_dtype: torch.dtype | None = None,
        chunk_rows: int | None = None,
        jacobian_budget_bytes: int | None = None,
        mu_min: float = 1e-20,
        callbacks: CallbackSpec = None,
        checkpoint_dir: str | Path | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {inner_steps}")
        if engine is None:
            engine = engine_for_solver(solver, form, temp_folder, cg_max_iter)
        engine.check()
        self.regularization = regularization if regularization is not None else Regularization()
        self.regularization.check_engine(engine.name)
        if chunk_rows is not None and chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1 or None, got {chunk_rows}")
        check_device(device)
        if device is not None:
            model.to(device)
        check_materialised(model)
        self.model = model
        self.flat = FlatParameters(model)
        self.loss = as_loss(loss)
        self.loss_fn: LossFn = loss_fn if loss_fn is not None else self.loss.report
        self.damping: DampingRule = damping if damping is not None else SeedDamping()
        self.stopping = stopping if stopping is not None else StoppingRules()
        self.acceleration = acceleration
        if acceleration is not None:
            acceleration.check(self.loss.name)
        self.inner_steps = inner_steps
        self.engine = engine
        self.cg_max_iter = getattr(engine, "cg_max_iter", cg_max_iter)
        self.reducer: Reducer = reducer if reducer is not None else LocalReducer()
        self.jacobian_mode: JacobianMode = jacobian_mode
        self.system_dtype = system_dtype or default_system_dtype(self.flat.dtype)
        self.chunk_rows = chunk_rows
        self.jacobian_budget_bytes = jacobian_budget_bytes
        self.mu_min = mu_min
        self.callbacks = as_callbacks(callbacks)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.history = TrainingHistory()

    # ------------------------------------------------------------------ public entry points
    def fit(
        self,
        x: Any,
        y: Any,
        val: ValidationData = None,
        resume_from: str | Path | None = None, *, allow_changed_setup: bool = False,
    ) -> TrainingHistory:
        """Train on in-memory data ``x`` (N, ...) and targets ``y`` shaped as the outputs ((N,)
        for one output). A ``resume_from`` checkpoint of another loss, damping rule, penalty or
        data is refused unless ``allow_changed_setup`` (``lmbench.core.checkpoint``)."""
        check_inference_layers(self.model)
        source = memory_rows(self.model, x, y, self.flat.dtype, self.flat.device,
                             self._chunk_rows, self.loss.targets)
        return self.fit_source(source, val, resume_from, allow_changed_setup=allow_changed_setup)

    def fit_loader(
        self,
        loader: Iterable[Any],
        val: ValidationData = None,
        resume_from: str | Path | None = None, *, allow_changed_setup: bool = False,
    ) -> TrainingHistory:
        """Train on an iterable of (x, y) chunks, streamed again for every pass over the data
        (each pass must yield the same rows, in any order: ``LoaderSource``); see ``fit``."""
        check_inference_layers(self.model)
        source, probe_row = loader_rows(self.model, loader, self.flat.dtype, self.flat.device,
                                        self.loss.targets)
        return self.fit_source(source, val, resume_from, source.n_outputs, probe_row,
                               allow_changed_setup=allow_changed_setup)

    def fit_source(
        self,
        source: RowSource,
        val: ValidationData = None,
        resume_from: str | Path | None = None,
        n_outputs: int | None = None,
        probe_row: torch.Tensor | None = None, *, allow_changed_setup: bool = False,
    ) -> TrainingHistory:
        """Train on any ``RowSource`` (the loop shared by every engine)."""
        check_inference_layers(self.model)
        if probe_row is None:
            probe_row = next(iter(source.chunks()))[0][:1]
        # the sources built by fit and fit_loader know it already (one forward pass saved)
        shape = getattr(source, "sample_shape", None) or output_shape(self.model, probe_row)
        n_outputs = n_outputs or math.prod(shape)
        residual_fn = ResidualFunction(self.flat, n_outputs, self.jacobian_mode)
        # The first torch.func call imports torch._dynamo (~3 s): pay it here, not in epoch 1.
        residual_fn.jacobian(self.flat.vector(), probe_row)
        run = FitState(
            source=source,
            val_source=validation_source(val, n_outputs, self.flat.dtype, self.flat.device,
                                         self._chunk_rows(n_outputs), self.loss.targets, shape),
            residual_fn=residual_fn,
            n_outputs=n_outputs,
            damping=self.damping.initial_state(),
            best=BestWeights(enabled=self.stopping.patience is not None),
            regularization=self.regularization.initial_state(),
            clock=FitClock(self.stopping.time_limit_s,
                           inside_epochs=isinstance(self.reducer, LocalReducer)),
        )
        self.history = TrainingHistory(jacobian_mode=residual_fn.mode, n_params=self.flat.count)
        if resume_from is not None:
            setup = None if allow_changed_setup else TrainingSetup.of(self, run.source)
            point = restore_checkpoint(resume_from, self.model, self.flat.device,
                                       run.best.enabled, self.flat.count, setup)
            run.epoch, run.damping, run.best, self.history = (
                point.epoch, point.damping, point.best, point.history
            )
            if point.regularization is not None:
                run.regularization = point.regularization
        try:
            run.cache = self.engine.open_cache(self, run)
            self._loop(run)
        except KeyboardInterrupt:
            self.history.stop_reason = "interrupted"
            raise
        finally:
            if run.cache is not None:
                run.cache.close()
            if run.best.theta is not None and self.history.stop_reason != "interrupted":
                self.flat.assign(run.best.theta)
        return self.history

    # ------------------------------------------------------------------ the loop
    def _loop(self, run: FitState) -> None:
        """Epochs until a stopping rule fires; each epoch is ``_run_epoch``'s LM steps."""
        rules, history = self.stopping, self.history
        theta = self.flat.vector()
        objective, loss, run.train_rows = self._evaluate_rows(run, run.source, theta)
        check_finite_objective(objective, "at the starting weights")
        if run.epoch == 0:
            val_loss = self._loss_only(run, theta)
            history.record(loss=loss, val_loss=val_loss, mu=run.damping.mu, epoch_time=0.0,
                           **run.regularization.record(theta, objective))
            self._track_best(run, val_loss, theta)
            self._end_of_epoch(run)
            if rules.reached_min_error(loss, val_loss, run.epoch):
                history.stop_reason = "min_error"
                return
        while run.epoch < rules.max_epochs:
            run.epoch += 1
            started = time.perf_counter()
            timer = PhaseTimer(theta.device)
            tally = EpochTally()
            try:
                theta, objective, loss = self._run_epoch(run, theta, objective, loss, timer,
                                                         tally)
            except TimeLimitReached:  # the epoch is dropped: back to where the last one ended
                run.epoch, run.system = run.epoch - 1, None
                self.flat.assign(theta)
                history.stop_reason = TIME_LIMIT
                return
            with timer("time_evaluate"):
                val_loss = self._loss_only(run, theta)
            history.form = tally.form or history.form
            history.record(
                loss=loss, val_loss=val_loss, mu=run.damping.mu,
                epoch_time=time.perf_counter() - started, trials=tally.trials,
                accepted=tally.accepted > 0, gradient_norm=tally.gradient_norm,
                gain_ratio=tally.gain_ratio, **run.regularization.record(theta, objective),
                **timer.totals,
            )
            self._track_best(run, val_loss, theta)
            stop_requested = self._end_of_epoch(run)
            settled = self.regularization.settled(history.weight_decay)
            converged = tally.converged if settled else None
            reason = rules.stop_reason(loss, val_loss, tally.gradient_norm, run.damping.mu,
                                       run.best.bad_epochs, run.epoch, converged)
            if reason is None and self._together(run.clock.expired()):
                reason = TIME_LIMIT
            if reason is None and stop_requested:
                reason = "callback"
            if reason is not None:
                history.stop_reason = reason
                return
        history.stop_reason = "max_epochs"

    def _run_epoch(self, run: FitState, theta: torch.Tensor, objective: float, loss: float,
                   timer: PhaseTimer, tally: EpochTally) -> tuple[torch.Tensor, float, float]:
        """One full-batch LM step; returns (weights, E, loss) at the epoch's end. A rejected
        epoch keeps its system for the next one (only mu changed)."""
        if run.system is None:
            run.system = self._assemble(run, theta, timer, objective)
        system = run.system
        if self.tests_convergence and self.stopping.gradient_converged(system.scaled_gradient):
            tally.form, tally.converged = system.form, CONVERGED_GTOL
            tally.gradient_norm = system.gradient_norm
            run.system = None  # a Bayesian run goes on only to re-estimate at this point
            return theta, objective, loss
        step = self._damped_step(run, system, run.source, theta, objective, timer)
        tally.add(system, step)
        if not step.accepted:
            if step.converged is not None:  # a Bayesian run goes on: re-estimate at this point
                run.system = None
            return theta, objective, loss
        run.system = None  # weights moved: the next epoch needs a new system
        return step.theta, step.objective, step.loss

    def _damped_step(self, run: FitState, system: GaussNewtonSystem, source: RowSource,
                     theta: torch.Tensor, objective: float, timer: PhaseTimer) -> DampedStep:
        """Up to ``inner_steps`` damping trials on ``system``, each judged on ``source``'s
        objective plus the system's weight penalty; the first kept one moves the model's
        weights. ``objective`` and the step's are the data objective E."""
        trials = 0
        penalised = objective + system.penalty * weight_energy(theta)
        while trials < self.inner_steps:
            trials += 1
            run.clock.check()
            with timer("time_solve"):
                step = system.solve(run.damping.mu, self.damping.scale_by_diagonal)
            if step is not None and self.acceleration is not None:
                step = self._accelerated(run, system, source, theta, step, timer)
            if step is not None:  # None: not positive definite at this mu, damp harder
                candidate = theta + step.delta.to(theta.dtype)
                with timer("time_evaluate"):
                    new_objective, new_loss = self._evaluate(run, source, candidate)
                actual = penalised - (new_objective + system.penalty * weight_energy(candidate))
                predicted = step.predicted_reduction
                gain = actual / predicted if predicted > 0 else math.nan
                judged = self.tests_convergence and self.stopping.judges_trial(
                    gain, system.held_back(run.damping.mu, self.damping.scale_by_diagonal),
                    system.undamped_reduction(theta), penalised)
                converged = self.stopping.trial_converged(
                    step.delta, theta, actual, predicted, penalised) if judged else None
                if math.isfinite(new_objective) and self.damping.accepts(actual, predicted):
                    state = self.damping.after_accept(run.damping, gain)
                    run.damping = replace(state, mu=max(state.mu, self.mu_min))
                    self.flat.assign(candidate)
                    return DampedStep(candidate, new_objective, new_loss, trials, True, gain,
                                      converged)
                if converged is not None:
                    return DampedStep(theta, objective, math.nan, trials, False,
                                      converged=converged)
            run.damping = self.damping.after_reject(run.damping)
            if self.stopping.mu_exhausted(run.damping.mu):
                break
        return DampedStep(theta, objective, math.nan, trials, False)

    def _accelerated(self, run: FitState, system: GaussNewtonSystem, source: RowSource,
                     theta: torch.Tensor, velocity: Step, timer: PhaseTimer) -> Step | None:
        """The geodesic-accelerated trial step, or None when its correction is too large."""
        assert self.acceleration is not None
        with timer("time_solve"):
            return self.acceleration.corrected(system, run.residual_fn, source.chunks(), theta,
                                               velocity, run.damping.mu, self.damping, self.reducer)

    # ------------------------------------------------------------------ pieces of an epoch
    def _assemble(self, run: FitState, theta: torch.Tensor, timer: PhaseTimer, objective: float,
                  share: float = 1.0) -> GaussNewtonSystem:
        """The engine's system at ``theta`` (where the data objective is ``objective``), the
        Bayesian estimates updated from it, penalised by ``share`` of the weight decay (the
        batch's part of the rows in mini-batch LM)."""
        system = self.engine.assemble(self, run, theta, timer)
        with timer("time_system"):
            run.regularization = self.regularization.update(run.regularization, system, theta,
                                                            objective, self.loss)
        system = system.penalised(run.regularization.weight_decay * share, theta)
        if not self.damping.running_max_scaling:
            return system
        run.scale_floor = system.diagonal if run.scale_floor is None else torch.maximum(
            run.scale_floor, system.diagonal)
        return system.with_scale_floor(run.scale_floor)

    def _evaluate(self, run: FitState, source: RowSource, theta: torch.Tensor
                  ) -> tuple[float, float]:
        """(E, reporting loss) at ``theta``: one forward pass over the source, no autograd."""
        objective, loss, _ = self._evaluate_rows(run, source, theta)
        return objective, loss

    def _evaluate_rows(self, run: FitState, source: RowSource, theta: torch.Tensor
                       ) -> tuple[float, float, float]:
        """(E, reporting loss, rows) at ``theta``, summed over every data-parallel worker."""
        objective = 0.0
        loss_sum = 0.0
        rows = 0
        for x, y in source.chunks():
            out = run.residual_fn.outputs(theta, x)
            objective += self.loss.objective(out, y)
            with torch.no_grad():
                loss_sum += float(self.loss_fn(out, y)) * x.shape[0]
            rows += x.shape[0]
        totals = self.reducer.sum_(torch.tensor([objective, loss_sum, rows], dtype=torch.float64,
                                                device=theta.device))
        objective, loss_sum, rows = (float(v) for v in totals)
        return objective, loss_sum / max(rows, 1.0), rows

    def _loss_only(self, run: FitState, theta: torch.Tensor) -> float:
        if run.val_source is None:
            return math.nan
        return self._evaluate(run, run.val_source, theta)[1]

    # ------------------------------------------------------------------ bookkeeping
    def _track_best(self, run: FitState, val_loss: float, theta: torch.Tensor) -> None:
        if run.best.update(val_loss, theta, run.epoch):
            self.history.best_epoch = run.epoch

    def _end_of_epoch(self, run: FitState) -> bool:
        """Callbacks and the checkpoint (primary worker only); True if a callback asks to stop."""
        stop = False
        if self.reducer.is_primary:
            info = EpochInfo(epoch=run.epoch, model=self.model, history=self.history)
            for callback in self.callbacks:
                stop = bool(callback.on_epoch_end(info)) or stop
            if self.checkpoint_dir is not None:
                payload = checkpoint_payload(self.model, run.epoch, run.damping, run.best,
                                             self.history, run.regularization,
                                             TrainingSetup.of(self, run.source))
                save_checkpoint(self.checkpoint_dir, run.epoch, payload)
        return self._together(stop)

    def _together(self, stop: bool) -> bool:
        """Whether any data-parallel worker stops (every worker then stops together)."""
        if isinstance(self.reducer, LocalReducer):
            return stop
        return bool(self.reducer.sum_(torch.tensor([float(stop)])).item() > 0)

    def _chunk_rows(self, n_outputs: int) -> int:
        if self.chunk_rows is not None:
            return self.chunk_rows
        budget = self.jacobian_budget_bytes
        if budget is None:
            budget = default_jacobian_budget(self.flat.count, n_outputs, self.flat.dtype,
                                             self.flat.device)
        return chunk_rows_for(budget, n_outputs, self.flat.count, self.flat.dtype)
