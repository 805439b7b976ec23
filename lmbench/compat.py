"""Seed-compatible entry points: the original library's names, signatures and conventions.

Thin adapters over ``lmbench.core.LevenbergMarquardt``; ``demping_coef`` keeps the seed's
spelling on purpose so existing scripts run unchanged, and so does ``metric_callbacks`` (the
seed's spelling of ``metrics_callbacks``; zero-argument functions are recorded as metrics).

Both functions return a ``SeedResult``: the seed's 4-tuple ``(loss, val, mu, epoch_time)``
(unpacks exactly as before) that also carries ``.history`` (the full ``TrainingHistory``) and
``.metrics`` (``history.metrics``: the callbacks' values per epoch). ``return_history=True``
returns the 5-tuple ``(loss, val, mu, epoch_time, history)`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from lmbench.core.callbacks import Callback, CallbackSpec, as_callbacks
from lmbench.core.checkpoint import SnapshotCallback
from lmbench.core.damping import SeedDamping
from lmbench.core.distributed import AllReduce
from lmbench.core.history import TrainingHistory
from lmbench.core.losses import loss_from_module
from lmbench.core.progress import ProgressBar, default_verbose
from lmbench.core.settings import TrainerSettings
from lmbench.core.trainer import LevenbergMarquardt

SeedHistory = tuple[list[float], list[float], list[float], list[float]]
#: The seed functions' default ``mu_max``: the original has no such stop, so it is set high.
SEED_MU_MAX = 1e10
#: The seed functions' stopping defaults (min_error 1e-2, 10 epochs, 10 trials), from the engine.
SEED_DEFAULTS = TrainerSettings()


class SeedResult(tuple):  # type: ignore[type-arg]
    """``(loss, val, mu, epoch_time)`` as the seed returned it, plus ``.history``/``.metrics``."""

    history: TrainingHistory

    def __new__(cls, history: TrainingHistory) -> SeedResult:
        result = super().__new__(cls, history.to_seed_tuple())
        result.history = history
        return result

    @property
    def metrics(self) -> dict[str, list[float]]:
        return self.history.metrics

    def __reduce__(self) -> tuple[Any, ...]:
        return (SeedResult, (self.history,))


def train_levenberg(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    val_loader: Iterable[Any] | None = None,
    snap_folder: str | Path | None = None,
    mu_init: float = SeedDamping.mu_init,
    min_error: float = SEED_DEFAULTS.min_error,
    max_epochs: int = SEED_DEFAULTS.max_epochs,
    inner_steps: int = SEED_DEFAULTS.inner_steps,
    demping_coef: float = SeedDamping.factor,
    device: str | torch.device | None = None,
    metrics_callbacks: CallbackSpec = None,
    metric_callbacks: CallbackSpec = None,
    mu_max: float = SEED_MU_MAX,
    verbose: bool | None = None,
    return_history: bool = False,
    batch_size: int | None = None,
    shuffle_seed: int = 0,
    engine: Literal["in_memory", "matrix_free"] = "in_memory",
    weight_decay: float = 0.0,
    regularization: Literal["none", "bayesian"] | None = None,
) -> Any:
    """Train ``model`` in memory with LM; returns (loss, val, mu, epoch_time) lists.

    As in the original library: the first entry of each list is the state before training,
    at least one epoch is trained before ``min_error`` is checked (on ``val_loader`` when one
    is given), and the step is accepted when the loss does not increase (mu /= demping_coef),
    else undone (mu *= demping_coef), up to ``inner_steps`` times.
    ``snap_folder`` receives per epoch the seed's ``epoch_XXXXXX.pth`` (a plain state_dict:
    ``model.load_state_dict(torch.load(path))``) and ``epoch_XXXX.pt``, a resume checkpoint
    for ``LevenbergMarquardt.fit(..., resume_from=path)``.
    ``device`` defaults to the model's device (the seed defaulted to "cuda:0").
    ``metrics_callbacks`` (or the seed's spelling ``metric_callbacks``): ``{name: fn(model)}``,
    zero-argument functions returning a number (stored under their ``__name__``), or
    callbacks of ``EpochInfo``; their values are in ``result.metrics``.
    ``mu_max``: stop when mu grows beyond it (the original has no such stop; default 1e10).
    ``verbose``: a tqdm bar per epoch with loss, val, mu and trials (default: on only when
    stderr is a terminal). ``return_history``: return ``(loss, val, mu, epoch_time, history)``.
    ``batch_size``: mini-batch LM (not in the original), one LM step per batch of that many
    rows, reshuffled every epoch from ``shuffle_seed``, mu carried from batch to batch
    (``lmbench.core.minibatch``); the epoch's loss is a full pass after its last batch. None
    (the default): the seed's one full-batch step per epoch.
    ``engine``: ``in_memory`` (J^T J or J J^T and Cholesky, the seed's way) or ``matrix_free``
    (conjugate gradients on Jacobian-vector products: no Jacobian, memory O(P), for models whose
    P x P system does not fit).
    ``weight_decay`` and ``regularization`` (not in the original; defaults: none): LM minimises
    loss + (weight_decay / 2) ||w||^2 over all weights and biases, or with
    ``regularization="bayesian"`` re-estimates that penalty from the evidence after every
    accepted step, as MATLAB's trainbr does (``lmbench.core.regularization``).

    What LM minimises follows ``loss_fn``: ``nn.MSELoss`` (squared error, the seed's objective),
    ``nn.CrossEntropyLoss`` (logits; class-index or one-hot targets), ``nn.BCEWithLogitsLoss``
    and ``nn.HuberLoss`` are minimised exactly (generalised Gauss-Newton), with the module's
    ``reduction`` ('mean' or 'sum') in the reported loss. Any other ``loss_fn`` is refused with an
    error (never a silent squared-error fit): to minimise one loss and report another, use
    ``LevenbergMarquardt(model, loss=..., loss_fn=...)``.
    """
    if engine not in ("in_memory", "matrix_free"):
        raise ValueError(f"engine must be 'in_memory' or 'matrix_free', got {engine!r}")
    callbacks = _merge_callbacks(metrics_callbacks, metric_callbacks)
    settings = _seed_settings(mu_init, min_error, max_epochs, inner_steps, demping_coef, mu_max,
                              mini_batch_size=batch_size, mini_batch_seed=int(shuffle_seed),
                              engine=engine, **_objective(loss_fn),
                              **_penalty(weight_decay, regularization))
    bar, extra = _extras(snap_folder, verbose, max_epochs, "train_levenberg")
    trainer = settings.build(model, loss_fn=loss_fn, callbacks=extra + callbacks,
                             checkpoint_dir=snap_folder, device=device)
    return _run(trainer, bar, return_history, lambda: trainer.fit(x, y, val=val_loader))


def _merge_callbacks(metrics_callbacks: CallbackSpec, metric_callbacks: CallbackSpec
                     ) -> list[Callback]:
    """``metrics_callbacks`` or the seed's ``metric_callbacks`` (not both), normalised."""
    if metrics_callbacks is not None and metric_callbacks is not None:
        raise ValueError("pass metrics_callbacks or the seed's spelling metric_callbacks, "
                         "not both (they are the same argument)")
    return as_callbacks(metrics_callbacks if metrics_callbacks is not None else metric_callbacks)


def _extras(snap_folder: str | Path | None, verbose: bool | None, max_epochs: int,
            name: str, primary: bool = True) -> tuple[ProgressBar | None, list[Callback]]:
    """The seed's per-epoch .pth snapshots and the progress bar, run before user callbacks."""
    extra: list[Callback] = [SnapshotCallback(snap_folder)] if snap_folder is not None else []
    show = primary and (default_verbose() if verbose is None else bool(verbose))
    bar = ProgressBar(int(max_epochs), name) if show else None
    return bar, extra + ([bar] if bar is not None else [])


def _run(trainer: LevenbergMarquardt, bar: ProgressBar | None, return_history: bool,
         fit: Callable[[], TrainingHistory]) -> Any:
    """Fit as the seed did (one epoch before min_error), close the bar, shape the result."""
    trainer.stopping = replace(trainer.stopping, min_epochs=1)
    try:
        history = fit()
    finally:
        if bar is not None:
            bar.close()
    result = SeedResult(history)
    return (*result, history) if return_history else result


def _objective(loss_fn: object) -> dict[str, Any]:
    """The loss LM minimises: the one behind the seed's ``loss_fn``."""
    if loss_fn is F.mse_loss:
        return {"loss": "mse"}
    loss = loss_from_module(loss_fn)
    return {"loss": loss.name, "huber_delta": loss.huber_delta}


def _penalty(weight_decay: float, regularization: str | None) -> dict[str, Any]:
    """The seed functions' new penalty keywords as settings (None: no regularisation)."""
    return {"weight_decay": float(weight_decay),
            "regularization": "none" if regularization is None else regularization}


def _seed_settings(
    mu_init: float, min_error: float, max_epochs: int, inner_steps: int, demping_coef: float,
    mu_max: float, **engine: Any,
) -> TrainerSettings:
    """The seed's arguments as engine settings (seed damping: mu /= or *= demping_coef);
    every value is checked here, before the model is moved or touched."""
    return TrainerSettings(
        damping="seed", mu_init=float(mu_init), damping_factor=float(demping_coef),
        max_epochs=max_epochs, min_error=min_error, inner_steps=inner_steps,
        mu_max=float(mu_max), **engine,
    )


def train_distributed_levenberg(
    model: nn.Module,
    x_loader: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    val_loader: Iterable[Any] | None = None,
    snap_folder: str | Path | None = None,
    mu_init: float = SeedDamping.mu_init,
    min_error: float = SEED_DEFAULTS.min_error,
    max_epochs: int = SEED_DEFAULTS.max_epochs,
    inner_steps: int = SEED_DEFAULTS.inner_steps,
    demping_coef: float = SeedDamping.factor,
    device: str | torch.device | None = None,
    temp_folder: str | Path = "./temp",
    metrics_callbacks: CallbackSpec = None,
    engine: Literal["auto", "streaming", "cache", "matrix_free"] = "auto",
    memory_budget_bytes: int | None = None,
    metric_callbacks: CallbackSpec = None,
    mu_max: float = SEED_MU_MAX,
    verbose: bool | None = None,
    return_history: bool = False,
    mini_batch: bool = False,
    weight_decay: float = 0.0,
    regularization: Literal["none", "bayesian"] | None = None,
) -> Any:
    """LM on data streamed from ``x_loader`` (chunks of (x, y)); every row enters every step.
    Every pass over the loader must yield the same rows, in any order (shuffling is fine; a
    sampler with replacement, or fewer rows on a later pass, is refused: ``LoaderSource``).

    engine: ``streaming`` accumulates J^T J chunk by chunk (memory O(P^2 + chunk*O*P), no
    Jacobian kept); ``cache`` writes Jacobian chunks to ``temp_folder`` once per epoch and
    solves by conjugate gradients (for P x P too large for memory); ``matrix_free`` solves by
    conjugate gradients on Jacobian-vector products streamed from ``x_loader`` (no Jacobian, no
    disk, memory O(P)); ``auto`` picks streaming when J^T J and its factor fit
    ``memory_budget_bytes`` (default: 3/4 of available memory), else the cache.
    Under ``torchrun`` with an initialised process group, each rank passes the loader of its
    own shard and the system is all-reduced (data-parallel LM). Returns the seed's 4 lists as a
    ``SeedResult``; ``loss_fn``, ``snap_folder``, ``metrics_callbacks``/``metric_callbacks``,
    ``mu_max``, ``verbose`` and ``return_history`` work as in ``train_levenberg``.
    ``mini_batch=True`` (not in the original): each batch the loader yields is one LM step
    (its own system and damping trials, mu carried from batch to batch); one epoch is one pass
    over the loader, then one more pass measures the epoch's training loss. Shuffle with the
    loader (``DataLoader(..., shuffle=True, generator=...)``); the ``cache`` engine is not
    offered; under torchrun every rank must yield the same number of batches.
    ``weight_decay`` and ``regularization``: as in ``train_levenberg`` (Bayesian regularisation
    with the streaming engine only, full batch; under torchrun the penalty is added once to
    the all-reduced system, so ranks step exactly as one process).
    """
    if engine not in ("auto", "streaming", "cache", "matrix_free"):
        raise ValueError(
            f"engine must be 'auto', 'streaming', 'cache' or 'matrix_free', got {engine!r}"
        )
    callbacks = _merge_callbacks(metrics_callbacks, metric_callbacks)
    settings = _seed_settings(
        mu_init, min_error, max_epochs, inner_steps, demping_coef, mu_max, engine=engine,
        temp_folder=str(temp_folder), memory_budget_bytes=memory_budget_bytes,
        **_objective(loss_fn), **_penalty(weight_decay, regularization),
    )
    reducer = AllReduce() if dist.is_available() and dist.is_initialized() else None
    primary = reducer is None or reducer.is_primary
    bar, extra = _extras(snap_folder, verbose, max_epochs, "train_distributed_levenberg", primary)
    trainer = settings.build(model, loss_fn=loss_fn, callbacks=extra + callbacks,
                             checkpoint_dir=snap_folder, device=device, reducer=reducer,
                             loader_batches=bool(mini_batch))
    return _run(trainer, bar, return_history, lambda: trainer.fit_loader(x_loader,
                                                                         val=val_loader))
