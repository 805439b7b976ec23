"""The reference LM library (torch-levenberg-marquardt) as a tuned method, ``trainer=tlm``.

It trains the same MLPs as LM and Adam (``hidden`` tuned over the same choices, from the same
default) with ``torch_levenberg_marquardt.training.LevenbergMarquardtModule``, driven the way its
documentation shows: one ``training_step(x, y)`` per batch. Protocol:

* batches: full batch by default (``batch_size: null``): the tabular train splits of the study
  are small enough (LM's ``max_train_rows`` guard caps them at 20,000 rows) for one
  Gauss-Newton system per epoch, which is what LM itself solves. The library's mini-batch mode
  (``batch_size: <rows>``, reshuffled every epoch by the seeded generator) is available for
  larger splits; batches are split evenly (``tensor_split``) because the library normalises
  every step by the size of the first batch it saw;
* loss matched to the task: ``tlm.loss.MSELoss`` on a linear head for regression; for
  classification ``tlm.loss.CrossEntropyLoss`` on the logits (the library's square-root trick:
  residual ``sqrt(CE)`` per row), probabilities by softmax;
* damping: ``tlm.damping.StandardDampingStrategy(starting_value=damping_start, dec_factor,
  inc_factor)``, tuned; its damping is in the library's units (the system is divided by the
  batch size), so ``damping_start`` 1e-3 (the library's default) corresponds to mu = 1e-3 * N;
* after every epoch the validation loss (the same loss) is measured; training stops after
  ``patience`` epochs without improvement, at ``max_epochs``, when the library's damping
  reaches its maximum (its own stop signal), or when the trial's time limit has passed; the
  best-validation weights are restored;
* every trial starts from ``torch.manual_seed(seed)`` right before the network is built.

History of the selected run: ``train_loss`` (mean over the epoch's steps, before each step),
``val_loss``, ``damping``, ``epoch_time_s``. Model size: ``n_parameters``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lmbench.baselines.common import (
    STOP_DAMPING_MAX,
    STOP_DIVERGED,
    BaselineResult,
    Deadline,
    FitOutcome,
    InverseTarget,
    budget_params,
    check_split,
    epoch_stop_reason,
    plain,
)
from lmbench.baselines.torch_utils import (
    parse_threads,
    resolve_threads,
    torch_predictor,
    torch_threads,
)
from lmbench.baselines.tuning import TuningSettings, run_tuning
from lmbench.core import get_weights_count
from lmbench.metrics import to_labels
from lmbench.models import build_mlp

SOLVE_METHODS: tuple[str, ...] = ("qr", "cholesky", "solve")


@dataclass(frozen=True)
class TLMSettings:
    """The settings of one torch-levenberg-marquardt trial (``conf/trainer/tlm.yaml``)."""

    hidden: tuple[int, ...] = (16,)
    activation: str = "tanh"
    damping_start: float = 1e-3
    dec_factor: float = 0.1
    inc_factor: float = 10.0
    damping_min: float = 1e-10
    damping_max: float = 1e10
    attempts_per_step: int = 10
    solve_method: str = "qr"
    batch_size: int | None = None
    max_epochs: int = 200
    patience: int = 10
    n_threads: int | str = "auto"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TLMSettings:
        """Typed settings from a config mapping; unknown keys and bad values name the knob."""
        values = plain(values)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown trainer.params for tlm: {unknown}; known: {sorted(known)}")
        d = cls()
        hidden = values.get("hidden", d.hidden)
        batch_size = values.get("batch_size", d.batch_size)
        settings = cls(
            hidden=(int(hidden),) if isinstance(hidden, int) else tuple(int(w) for w in hidden),
            activation=str(values.get("activation", d.activation)),
            damping_start=float(values.get("damping_start", d.damping_start)),
            dec_factor=float(values.get("dec_factor", d.dec_factor)),
            inc_factor=float(values.get("inc_factor", d.inc_factor)),
            damping_min=float(values.get("damping_min", d.damping_min)),
            damping_max=float(values.get("damping_max", d.damping_max)),
            attempts_per_step=int(values.get("attempts_per_step", d.attempts_per_step)),
            solve_method=str(values.get("solve_method", d.solve_method)),
            batch_size=None if batch_size is None else int(batch_size),
            max_epochs=int(values.get("max_epochs", d.max_epochs)),
            patience=int(values.get("patience", d.patience)),
            n_threads=parse_threads(values.get("n_threads", d.n_threads)),
        )
        if not 0 < settings.dec_factor < 1 < settings.inc_factor:
            raise ValueError("trainer.params needs 0 < dec_factor < 1 < inc_factor")
        if not 0 < settings.damping_min <= settings.damping_start <= settings.damping_max:
            raise ValueError("trainer.params needs 0 < damping_min <= damping_start <= damping_max")
        if settings.solve_method not in SOLVE_METHODS:
            raise ValueError(f"trainer.params.solve_method must be one of {SOLVE_METHODS}")
        for name in ("attempts_per_step", "max_epochs", "patience"):
            if getattr(settings, name) <= 0:
                raise ValueError(f"trainer.params.{name} must be positive")
        if settings.batch_size is not None and settings.batch_size <= 0:
            raise ValueError("trainer.params.batch_size must be positive or null (full batch)")
        if not settings.hidden or any(w < 1 for w in settings.hidden):
            raise ValueError(f"trainer.params.hidden must be widths >= 1, got {settings.hidden}")
        return settings


def search_tlm(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    task: str,
    cfg: Mapping[str, Any],
    seed: int,
    tuning: TuningSettings | None = None,
    inverse_target: InverseTarget | None = None,
) -> BaselineResult:
    """Tune torch-levenberg-marquardt (``conf/trainer/tlm.yaml``) on train, select on val.

    Targets follow the data contract (one-hot rows for classification, standardised ``(n, 1)``
    for regression). See the module docstring for the protocol.
    """
    check_split(task, x_train, y_train, x_val, y_val)
    TLMSettings.from_mapping(budget_params(cfg))  # validate before training
    train, val = _targets(task, x_train, y_train), _targets(task, x_val, y_val)
    n_inputs = int(np.shape(x_train)[1])
    n_outputs = 1 if task == "regression" else int(np.shape(y_train)[1])
    n_rows = int(np.shape(x_train)[0])
    _warm_up_library()

    def fit_point(params: dict[str, Any], deadline: Deadline) -> FitOutcome:
        settings = TLMSettings.from_mapping(params)
        torch.manual_seed(seed)
        model = build_mlp(n_inputs, n_outputs, hidden=settings.hidden,
                          activation=settings.activation, head="linear")
        threads = resolve_threads(settings.n_threads, n_rows, get_weights_count(model))
        with torch_threads(threads):
            history, best_epoch = train_tlm(
                model, task, train, val, settings, seed=seed, deadline=deadline
            )
        output = None if task == "regression" else (lambda t: torch.softmax(t, dim=-1))
        epochs = len(history["train_loss"])
        damping = history["damping"][-1] if history["damping"] else 0.0
        stop_reason = epoch_stop_reason(
            epochs, settings.max_epochs, history["val_loss"][-1] if epochs else None)
        if stop_reason != STOP_DIVERGED and damping >= settings.damping_max:
            stop_reason = STOP_DAMPING_MAX  # the library's own stop signal
        return FitOutcome(
            model=model,
            predictor=torch_predictor(model, threads, output=output),
            best_iteration=best_epoch,
            history=history,
            epochs=epochs,
            stop_reason=stop_reason,
        )

    return run_tuning(
        "tlm",
        task,
        cfg,
        fit_point,
        x_val,
        y_val,
        tuning=tuning or TuningSettings(),
        seed=seed,
        inverse_target=inverse_target,
        model_size=lambda outcome: {"n_parameters": get_weights_count(outcome.model)},
    )


def train_tlm(
    model: torch.nn.Module,
    task: str,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    settings: TLMSettings,
    *,
    seed: int,
    deadline: Deadline | None = None,
) -> tuple[dict[str, list[float]], int]:
    """Train ``model`` in place with the library; restore the best-validation weights;
    return (history, best epoch). Best epoch 0: the initial weights were never beaten."""
    import torch_levenberg_marquardt as tlm

    loss_fn = tlm.loss.MSELoss() if task == "regression" else tlm.loss.CrossEntropyLoss()
    module = tlm.training.LevenbergMarquardtModule(
        model,
        loss_fn=loss_fn,
        damping_strategy=tlm.damping.StandardDampingStrategy(
            starting_value=settings.damping_start,
            dec_factor=settings.dec_factor,
            inc_factor=settings.inc_factor,
            min_value=settings.damping_min,
            max_value=settings.damping_max,
        ),
        attempts_per_step=settings.attempts_per_step,
        solve_method=settings.solve_method,  # type: ignore[arg-type]
    )
    x, y = train
    generator = torch.Generator().manual_seed(seed)
    batch_size = settings.batch_size or len(x)
    n_batches = max(1, math.ceil(len(x) / batch_size))

    def val_loss() -> float:
        with torch.no_grad():
            return float(loss_fn(model(val[0]), val[1]))

    history: dict[str, list[float]] = {
        "train_loss": [], "val_loss": [], "damping": [], "epoch_time_s": []
    }
    best_val, best_epoch, best_theta, stale = val_loss(), 0, module.flat_params.clone(), 0
    for epoch in range(1, settings.max_epochs + 1):
        started = time.perf_counter()
        order = torch.randperm(len(x), generator=generator) if n_batches > 1 else None
        batches = [slice(None)] if order is None else list(order.tensor_split(n_batches))
        losses, stop = [], False
        for rows in batches:
            _, loss, stop, logs = module.training_step(x[rows], y[rows])
            losses.append(float(loss))
            if stop:
                break
        current = val_loss()
        history["train_loss"].append(float(np.mean(losses)))
        history["val_loss"].append(current)
        history["damping"].append(float(logs["damping"]))
        history["epoch_time_s"].append(time.perf_counter() - started)
        if math.isfinite(current) and current < best_val:
            best_val, best_epoch, stale = current, epoch, 0
            best_theta = module.flat_params.clone()
        else:
            stale += 1
        if stop or stale >= settings.patience or not math.isfinite(current):
            break
        if deadline is not None and deadline.expired():
            break
    with torch.no_grad():
        module.flat_params.copy_(best_theta)  # the model's parameters are views of it
    model.eval()
    return history, best_epoch


def _warm_up_library() -> None:
    """One step on a 2-row problem before the tuning: the library's first ``torch.func`` call in
    a process imports ``torch._dynamo`` (seconds), which would otherwise be charged to the
    default trial's fit time and time limit."""
    import torch_levenberg_marquardt as tlm

    with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG stream untouched
        model = torch.nn.Linear(1, 1)
    module = tlm.training.LevenbergMarquardtModule(model, loss_fn=tlm.loss.MSELoss())
    module.training_step(torch.zeros(2, 1), torch.ones(2, 1))


def _targets(task: str, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and the library loss's targets: values ``(n, 1)`` or integer class labels."""
    features = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if task == "regression":
        return features, torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1, 1))
    return features, torch.as_tensor(to_labels(y))
