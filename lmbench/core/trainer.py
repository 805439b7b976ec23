"""The Levenberg-Marquardt loop: epochs, damping trials, stopping rules, callbacks, checkpoints.

One epoch = assemble the Gauss-Newton system at the current weights (Jacobian chunks folded into
J^T J and J^T r, or J J^T in the dual form), then up to ``inner_steps`` damping trials, each one
Cholesky factorisation and one forward pass over the data. The first trial whose step the
damping rule accepts moves the weights; if none does, the weights stay and the already-built
system is reused next epoch with a larger mu (nothing is recomputed).

The model's own parameters always hold the last accepted weights: trial weights live only in a
flat tensor passed to ``torch.func.functional_call``. So an exception, a non-finite loss or a
KeyboardInterrupt leaves the model at its last good values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from lmbench.core.cache import JacobianCache, check_disk_space, estimate_cache_bytes
from lmbench.core.callbacks import CallbackSpec, EpochInfo, as_callbacks
from lmbench.core.checkpoint import load_checkpoint, save_checkpoint
from lmbench.core.damping import DampingRule, SeedDamping
from lmbench.core.distributed import LocalReducer, Reducer
from lmbench.core.engines import choose_form
from lmbench.core.errors import InvalidInputError, NonFiniteLossError
from lmbench.core.history import TrainingHistory
from lmbench.core.jacobian import JacobianMode, ResidualFunction
from lmbench.core.params import FlatParameters
from lmbench.core.solve import solve_damped
from lmbench.core.sources import (
    LoaderSource,
    RowSource,
    TensorSource,
    as_tensor,
    check_finite,
    match_targets,
)
from lmbench.core.system import (
    FormName,
    GaussNewtonSystem,
    SystemAccumulator,
    SystemForm,
)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ValidationData = tuple[Any, Any] | Iterable[Any] | None

#: Default memory for one chunk's Jacobian, in bytes (chunk rows are derived from it).
DEFAULT_JACOBIAN_BUDGET = 512 * 2**20


@dataclass
class StoppingRules:
    """When to stop (MATLAB trainlm's rules plus the seed's ``min_error``).

    min_error: stop when the loss falls to this value, measured on the validation set when one is
    given (as the seed does), else on the training set; None disables.
    max_epochs: epochs of LM steps (epoch 0 is the initial evaluation).
    min_gradient: stop when ||J^T r||_2 falls below it (0 disables).
    mu_max: stop when mu grows beyond it (no step can make progress).
    patience: stop after this many epochs without a new best validation loss, and restore the
    best-validation weights (None disables; needs validation data).
    """

    max_epochs: int = 10
    min_error: float | None = 1e-2
    min_gradient: float = 0.0
    mu_max: float = 1e10
    patience: int | None = None

    def __post_init__(self) -> None:
        if self.max_epochs < 0:
            raise ValueError(f"max_epochs must be >= 0, got {self.max_epochs}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")


class LevenbergMarquardt:
    """Levenberg-Marquardt training of any ``nn.Module`` on a sum-of-squares objective.

    Minimises E = 1/2 * sum((model(x) - y)^2) over all samples and outputs; ``loss_fn`` (default
    MSE) is what the history reports and what ``min_error`` and validation use.

    Args:
        model: the network; trained in place. Its device and dtype are used unless ``device``.
        loss_fn: reporting loss ``loss_fn(pred, target)`` with mean reduction (default MSE).
        damping: a damping rule (default ``SeedDamping(mu_init=10, factor=10)``).
        stopping: stopping rules (default ``StoppingRules()``).
        inner_steps: damping trials per epoch before giving up on that epoch.
        form: ``primal`` (J^T J), ``dual`` (J J^T) or ``auto`` (the smaller system).
        solver: ``cholesky`` (one factorisation per damping trial) or ``cg`` (matrix-free
            conjugate gradients over a Jacobian cache on disk, for P x P too large to hold).
        temp_folder: where the ``cg`` solver's Jacobian cache lives (a private sub-folder is
            created and always removed).
        reducer: sums partial systems across data-parallel workers (``AllReduce``); default
            single process.
        jacobian_mode: ``reverse``, ``forward`` or ``auto`` (by shape).
        system_dtype: dtype of J^T J and the solves; default the model's dtype.
        chunk_rows: samples per Jacobian chunk; default from ``jacobian_budget_bytes``.
        jacobian_budget_bytes: memory for one chunk's Jacobian when ``chunk_rows`` is None.
        mu_min: floor for mu so that repeated successes cannot underflow it.
        callbacks: metric mapping, callback objects or functions, called after each epoch.
        checkpoint_dir: folder for per-epoch checkpoints (None: no checkpoints).
        device: move the model there first (default: where the model already is).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        loss_fn: LossFn | None = None,
        damping: DampingRule | None = None,
        stopping: StoppingRules | None = None,
        inner_steps: int = 10,
        form: SystemForm = "auto",
        solver: Literal["cholesky", "cg"] = "cholesky",
        temp_folder: str | Path | None = None,
        cg_max_iter: int = 500,
        reducer: Reducer | None = None,
        jacobian_mode: JacobianMode = "auto",
        system_dtype: torch.dtype | None = None,
        chunk_rows: int | None = None,
        jacobian_budget_bytes: int = DEFAULT_JACOBIAN_BUDGET,
        mu_min: float = 1e-20,
        callbacks: CallbackSpec = None,
        checkpoint_dir: str | Path | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {inner_steps}")
        if form not in ("auto", "primal", "dual"):
            raise ValueError(f"form must be 'auto', 'primal' or 'dual', got {form!r}")
        if solver not in ("cholesky", "cg"):
            raise ValueError(f"solver must be 'cholesky' or 'cg', got {solver!r}")
        if solver == "cg" and temp_folder is None:
            raise ValueError("solver='cg' caches the Jacobian on disk: pass temp_folder=...")
        if chunk_rows is not None and chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1 or None, got {chunk_rows}")
        if device is not None:
            model.to(device)
        self.model = model
        self.flat = FlatParameters(model)
        self.loss_fn: LossFn = loss_fn if loss_fn is not None else nn.MSELoss()
        self.damping: DampingRule = damping if damping is not None else SeedDamping()
        self.stopping = stopping if stopping is not None else StoppingRules()
        self.inner_steps = inner_steps
        self.form: SystemForm = form
        self.solver = solver
        self.temp_folder = Path(temp_folder) if temp_folder is not None else None
        self.cg_max_iter = cg_max_iter
        self.reducer: Reducer = reducer if reducer is not None else LocalReducer()
        self._cache: JacobianCache | None = None
        self.jacobian_mode: JacobianMode = jacobian_mode
        self.system_dtype = system_dtype or self.flat.dtype
        self.chunk_rows = chunk_rows
        self.jacobian_budget_bytes = jacobian_budget_bytes
        self.mu_min = mu_min
        self.callbacks = as_callbacks(callbacks)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.history = TrainingHistory()
        self._residual_fn: ResidualFunction | None = None
        self._assembly_split: dict[str, float] = {}

    # ------------------------------------------------------------------ public entry points
    def fit(
        self,
        x: Any,
        y: Any,
        val: ValidationData = None,
        resume_from: str | Path | None = None,
    ) -> TrainingHistory:
        """Train on in-memory data ``x`` (N, ...) and targets ``y`` (N, O) or (N,) for O = 1."""
        dtype, device = self.flat.dtype, self.flat.device
        x_t = as_tensor(x, "x", dtype, device)
        y_t = as_tensor(y, "y", dtype, device)
        if x_t.dim() == 0 or y_t.dim() == 0 or x_t.shape[0] != y_t.shape[0]:
            raise InvalidInputError(
                f"x has shape {tuple(x_t.shape)} and y has shape {tuple(y_t.shape)}: they must "
                "have the same number of samples in their first dimension."
            )
        if x_t.shape[0] == 0:
            raise InvalidInputError("x has no samples")
        check_finite(x_t, "x")
        check_finite(y_t, "y")
        n_outputs = self._probe_outputs(x_t[:1])
        y_t = match_targets(y_t, n_outputs)
        chunk = self.chunk_rows or self._auto_chunk_rows(n_outputs)
        return self.fit_source(TensorSource(x_t, y_t, chunk), val, resume_from, n_outputs)

    def fit_loader(
        self,
        loader: Iterable[Any],
        val: ValidationData = None,
        resume_from: str | Path | None = None,
    ) -> TrainingHistory:
        """Train on an iterable of (x, y) chunks, streamed again for every pass over the data."""
        first = next(iter(loader))
        x0 = as_tensor(first[0], "x_loader batch 0 x", self.flat.dtype, self.flat.device)
        n_outputs = self._probe_outputs(x0[:1])
        source = LoaderSource(loader, n_outputs, self.flat.dtype, self.flat.device)
        return self.fit_source(source, val, resume_from, n_outputs)

    def fit_source(
        self,
        source: RowSource,
        val: ValidationData = None,
        resume_from: str | Path | None = None,
        n_outputs: int | None = None,
    ) -> TrainingHistory:
        """Train on any ``RowSource`` (the loop shared by every engine)."""
        if n_outputs is None or self._probe_row is None:
            x0, _ = next(iter(source.chunks()))
            n_outputs = self._probe_outputs(x0[:1])
        self._residual_fn = ResidualFunction(self.flat, n_outputs, self.jacobian_mode)
        # The first torch.func call imports torch._dynamo (~3 s): pay it here, not in epoch 1.
        self._residual_fn.jacobian(self.flat.vector(), self._probe_row)
        val_source = self._validation_source(val, n_outputs)
        state = _LoopState(mu=self.damping.mu_init)
        self.history = TrainingHistory(jacobian_mode=self._residual_fn.mode)
        if resume_from is not None:
            self._resume(resume_from, state)
        try:
            if self.solver == "cg":
                self._open_cache(source, n_outputs)
            self._loop(source, val_source, state)
        except KeyboardInterrupt:
            self.history.stop_reason = "interrupted"
            raise
        finally:
            if self._cache is not None:
                self._cache.close()
                self._cache = None
            if state.best_theta is not None and self.history.stop_reason != "interrupted":
                self.flat.assign(state.best_theta)
        return self.history

    def _open_cache(self, source: RowSource, n_outputs: int) -> None:
        """Check the disk for one epoch of J, then create this run's private cache folder."""
        assert self.temp_folder is not None
        if source.n_samples is not None:
            itemsize = torch.finfo(self.system_dtype).bits // 8
            needed = estimate_cache_bytes(source.n_samples, n_outputs, self.flat.count, itemsize)
            check_disk_space(self.temp_folder, needed)
        self._cache = JacobianCache(self.temp_folder, self.system_dtype)

    # ------------------------------------------------------------------ the loop
    def _loop(self, source: RowSource, val_source: RowSource | None, state: _LoopState) -> None:
        rules = self.stopping
        history = self.history
        theta = self.flat.vector()
        objective, loss = self._evaluate(source, theta)
        if not math.isfinite(objective):
            raise NonFiniteLossError(
                "the loss at the starting weights is not finite; check the inputs' scale and "
                "the model's initialisation (e.g. exploding activations or log of zero)."
            )
        if state.epoch == 0:
            val_loss = self._loss_only(val_source, theta)
            history.record(loss=loss, val_loss=val_loss, mu=state.mu, epoch_time=0.0,
                           objective=objective)
            self._track_best(state, val_loss, theta)
            self._end_of_epoch(0, state)
            if self._reached_min_error(loss, val_loss):
                history.stop_reason = "min_error"
                return
        system: GaussNewtonSystem | None = None
        while state.epoch < rules.max_epochs:
            state.epoch += 1
            started = time.perf_counter()
            times = {"time_jacobian": 0.0, "time_system": 0.0, "time_solve": 0.0,
                     "time_evaluate": 0.0}
            if system is None:
                system = self._assemble(source, theta)
                times["time_jacobian"] = self._assembly_split.get("jacobian", 0.0)
                times["time_system"] = self._assembly_split.get("system", 0.0)
                history.form = system.form
            grad_norm = system.gradient_norm
            accepted, trials, gain = False, 0, math.nan
            while trials < self.inner_steps:
                trials += 1
                with _PhaseTimer(theta.device) as solve_timer:
                    step = solve_damped(
                        system, state.mu, self.damping.scale_by_diagonal, self.cg_max_iter
                    )
                times["time_solve"] += solve_timer.elapsed
                if step is None:  # not positive definite at this mu: damp harder
                    state.mu = self.damping.after_reject(state.mu)
                    if state.mu > rules.mu_max:
                        break
                    continue
                candidate = theta + step.delta.to(theta.dtype)
                tick = time.perf_counter()
                new_objective, new_loss = self._evaluate(source, candidate)
                times["time_evaluate"] += time.perf_counter() - tick
                actual = objective - new_objective
                if math.isfinite(new_objective) and self.damping.accepts(
                    actual, step.predicted_reduction
                ):
                    predicted = step.predicted_reduction
                    gain = actual / predicted if predicted > 0 else math.nan
                    state.mu = max(self.damping.after_accept(state.mu, gain), self.mu_min)
                    theta, objective, loss = candidate, new_objective, new_loss
                    self.flat.assign(theta)
                    accepted = True
                    system = None  # weights moved: the next epoch needs a new system
                    break
                state.mu = self.damping.after_reject(state.mu)
                if state.mu > rules.mu_max:
                    break
            tick = time.perf_counter()
            val_loss = self._loss_only(val_source, theta)
            times["time_evaluate"] += time.perf_counter() - tick
            history.record(
                loss=loss, val_loss=val_loss, mu=state.mu,
                epoch_time=time.perf_counter() - started, trials=trials, accepted=accepted,
                gradient_norm=grad_norm, gain_ratio=gain, objective=objective, **times,
            )
            improved = self._track_best(state, val_loss, theta)
            stop_requested = self._end_of_epoch(state.epoch, state)
            reason = self._stop_reason(loss, val_loss, grad_norm, state, improved)
            if reason is None and stop_requested:
                reason = "callback"
            if reason is not None:
                history.stop_reason = reason
                return
        history.stop_reason = "max_epochs"

    # ------------------------------------------------------------------ pieces of an epoch
    def _assemble(self, source: RowSource, theta: torch.Tensor) -> GaussNewtonSystem:
        assert self._residual_fn is not None
        form = self._resolve_form(source)
        acc = SystemAccumulator(self.flat.count, form, self.system_dtype, theta.device)
        cache = self._cache
        if cache is not None:
            cache.start_epoch()
        timer = _PhaseTimer(theta.device)
        for x, y in source.chunks():
            with timer("jacobian"):
                jac, out = self._residual_fn.jacobian(theta, x)
                residuals = (out - y).reshape(-1)
            with timer("system"):
                acc.add(jac, residuals)
                if cache is not None:
                    cache.append(jac, residuals)
            del jac, out, residuals  # free this chunk before the next one is computed
        with timer("system"):
            if cache is not None:
                cache.finish_epoch()
            acc.reduce(self.reducer)
        self._assembly_split = timer.totals
        if cache is None:
            return acc.finish()

        def gram_matvec(vector: torch.Tensor) -> torch.Tensor:
            return self.reducer.sum_(cache.gram_matvec(vector))

        return acc.finish(operator=gram_matvec)

    def _resolve_form(self, source: RowSource) -> FormName:
        if self.solver == "cg":
            return "matrix_free"
        if self.form != "auto":
            return self.form
        if source.n_samples is None or not isinstance(self.reducer, LocalReducer):
            return "primal"  # rows unknown, or spread over workers: J^T J is what adds up
        return choose_form(source.n_samples * self._n_outputs, self.flat.count)

    def _evaluate(self, source: RowSource, theta: torch.Tensor) -> tuple[float, float]:
        """(E, reporting loss) at ``theta``: one forward pass over the source, no autograd."""
        assert self._residual_fn is not None
        objective = 0.0
        loss_sum = 0.0
        rows = 0
        for x, y in source.chunks():
            out = self._residual_fn.outputs(theta, x)
            residual = (out - y).to(torch.float64)
            objective += 0.5 * float(residual.pow(2).sum())
            with torch.no_grad():
                loss_sum += float(self.loss_fn(out, y)) * x.shape[0]
            rows += x.shape[0]
        totals = self.reducer.sum_(torch.tensor([objective, loss_sum, rows], dtype=torch.float64,
                                                device=theta.device))
        objective, loss_sum, rows = (float(v) for v in totals)
        return objective, loss_sum / max(rows, 1.0)

    def _loss_only(self, source: RowSource | None, theta: torch.Tensor) -> float:
        if source is None:
            return math.nan
        return self._evaluate(source, theta)[1]

    def _validation_source(self, val: ValidationData, n_outputs: int) -> RowSource | None:
        if val is None:
            return None
        dtype, device = self.flat.dtype, self.flat.device
        if isinstance(val, tuple) and len(val) == 2 and not _looks_like_loader(val):
            x_v = as_tensor(val[0], "validation x", dtype, device)
            y_v = as_tensor(val[1], "validation y", dtype, device)
            check_finite(x_v, "validation x")
            check_finite(y_v, "validation y")
            y_v = match_targets(y_v, n_outputs, "validation y")
            return TensorSource(x_v, y_v, self.chunk_rows or self._auto_chunk_rows(n_outputs))
        return LoaderSource(val, n_outputs, dtype, device, name="val_loader")

    # ------------------------------------------------------------------ bookkeeping
    def _track_best(self, state: _LoopState, val_loss: float, theta: torch.Tensor) -> bool:
        """Remember the best-validation weights when patience is on; True if this one is best."""
        if self.stopping.patience is None or math.isnan(val_loss):
            return False
        if val_loss < state.best_val:
            state.best_val = val_loss
            state.best_theta = theta.clone()
            state.bad_epochs = 0
            self.history.best_epoch = len(self.history.loss) - 1
            return True
        state.bad_epochs += 1
        return False

    def _reached_min_error(self, loss: float, val_loss: float) -> bool:
        target = self.stopping.min_error
        if target is None:
            return False
        watched = val_loss if not math.isnan(val_loss) else loss
        return watched <= target

    def _stop_reason(
        self, loss: float, val_loss: float, grad_norm: float, state: _LoopState, improved: bool
    ) -> str | None:
        rules = self.stopping
        if self._reached_min_error(loss, val_loss):
            return "min_error"
        if grad_norm < rules.min_gradient:
            return "min_gradient"
        if state.mu > rules.mu_max:
            return "mu_max"
        if rules.patience is not None and state.bad_epochs >= rules.patience:
            return "validation_patience"
        return None

    def _end_of_epoch(self, epoch: int, state: _LoopState) -> bool:
        stop = False
        if self.reducer.is_primary:
            info = EpochInfo(epoch=epoch, model=self.model, history=self.history)
            for callback in self.callbacks:
                stop = bool(callback.on_epoch_end(info)) or stop
            if self.checkpoint_dir is not None:
                save_checkpoint(self.checkpoint_dir, epoch, self._checkpoint_payload(epoch, state))
        if not isinstance(self.reducer, LocalReducer):  # every worker stops together
            stop = bool(self.reducer.sum_(torch.tensor([float(stop)])).item() > 0)
        return stop

    def _checkpoint_payload(self, epoch: int, state: _LoopState) -> dict[str, Any]:
        return {
            "model_state": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer_state": {
                "epoch": epoch,
                "mu": state.mu,
                "damping": self.damping.state_dict(),
                "best_val": state.best_val,
                "best_theta": state.best_theta,
                "bad_epochs": state.bad_epochs,
            },
            "history": self.history.to_dict(),
        }

    def _resume(self, path: str | Path, state: _LoopState) -> None:
        payload = load_checkpoint(path, map_location=self.flat.device)
        self.model.load_state_dict(payload["model_state"])
        opt = payload["optimizer_state"]
        state.epoch = int(opt["epoch"])
        state.mu = float(opt["mu"])
        state.best_val = float(opt.get("best_val", math.inf))
        state.best_theta = opt.get("best_theta")
        state.bad_epochs = int(opt.get("bad_epochs", 0))
        self.damping.load_state_dict(opt.get("damping", {}))
        self.history = TrainingHistory.from_dict(payload["history"])

    def _probe_outputs(self, x_row: torch.Tensor) -> int:
        self._probe_row = x_row
        with torch.no_grad():
            out = self.model(x_row)
        if not isinstance(out, torch.Tensor):
            raise InvalidInputError(
                f"the model returned {type(out).__name__}; LM needs a single output tensor"
            )
        self._n_outputs = int(out[0].numel()) if out.dim() > 0 else 1
        return self._n_outputs

    def _auto_chunk_rows(self, n_outputs: int) -> int:
        itemsize = torch.finfo(self.flat.dtype).bits // 8
        per_row = max(n_outputs * self.flat.count * itemsize, 1)
        return max(1, self.jacobian_budget_bytes // per_row)

    _n_outputs: int = 1
    _probe_row: torch.Tensor | None = None


class _PhaseTimer:
    """Wall time of code phases; synchronises CUDA so GPU work lands in the right phase."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.totals: dict[str, float] = {}
        self.elapsed = 0.0
        self._phase: str | None = None
        self._start = 0.0

    def __call__(self, phase: str) -> _PhaseTimer:
        self._phase = phase
        return self

    def __enter__(self) -> _PhaseTimer:
        if self.cuda:
            torch.cuda.synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.elapsed = time.perf_counter() - self._start
        if self._phase is not None:
            self.totals[self._phase] = self.totals.get(self._phase, 0.0) + self.elapsed


@dataclass
class _LoopState:
    mu: float
    epoch: int = 0
    best_val: float = math.inf
    best_theta: torch.Tensor | None = None
    bad_epochs: int = 0


def _looks_like_loader(val: tuple[Any, Any]) -> bool:
    """A 2-tuple of batches (x, y) pairs would be a tiny loader, not (x, y) arrays."""
    return isinstance(val[0], (tuple, list))
