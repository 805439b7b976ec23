"""The same MLPs LM is tuned over, trained with Adam: the first-order baseline.

The network is ``build_mlp(hidden, activation, softmax head for classification)``, with
``hidden`` tuned over the same choices and from the same default as LM and the reference LM
library (``conf/trainer/{lm_tuned,tlm,adam}.yaml``), so the comparison is about the optimiser.
A caller may fix the network with ``model_factory`` instead (then ``hidden`` and ``activation``
must not be set). Protocol:

* mini-batch Adam, data reshuffled every epoch by a generator seeded from the run seed;
* loss ``auto`` (the shipped setting): the loss LM's ``loss: auto`` minimises for the task,
  ``cross_entropy`` for classification and ``mse`` for regression; ``mse``:
  ``torch.nn.MSELoss`` on the network output against the one-hot or standardised targets (the
  original library's loss); ``cross_entropy`` trains the pre-softmax logits with
  ``F.cross_entropy``, which needs an ``nn.Sequential`` ending in ``nn.Softmax`` (the softmax is
  skipped while training and kept for prediction);
* after each epoch the loss on the whole train and validation splits is measured (eval mode);
  training stops after ``patience`` epochs without a validation improvement larger than
  ``min_delta``, at ``max_epochs``, or when the trial's time limit has passed, and the
  best-validation weights are restored;
* every trial starts from the seeded weights: ``torch.manual_seed(seed)`` runs right before the
  network is built, so trials of the same width start from the same weights;
* trials are compared on the validation split by ``PRIMARY_METRIC``; no refit afterwards.

History of the selected run (``BaselineResult.history``, one entry per epoch): ``train_loss``,
``val_loss`` and ``epoch_time_s`` (the optimisation steps of the epoch only, without the two
evaluation passes). Model size: ``n_parameters`` (trainable).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmbench.baselines.common import (
    BaselineResult,
    Deadline,
    FitOutcome,
    InverseTarget,
    budget_params,
    check_network_settings,
    check_split,
    epoch_stop_reason,
)
from lmbench.baselines.torch_utils import (
    parse_threads,
    resolve_threads,
    torch_predictor,
    torch_threads,
)
from lmbench.baselines.tuning import TuningSettings, run_tuning
from lmbench.core import get_weights_count
from lmbench.core.losses import takes_logits
from lmbench.metrics import to_labels
from lmbench.models import build_mlp, head_for_task

ModelFactory = Callable[[], nn.Module]
LOSSES: tuple[str, ...] = ("auto", "mse", "cross_entropy")
#: Settings that describe the network; a caller's ``model_factory`` replaces them.
NETWORK_KEYS: tuple[str, ...] = ("hidden", "activation")


@dataclass(frozen=True)
class AdamSettings:
    """The settings of one Adam run; every field can sit in ``params`` or in the space."""

    hidden: tuple[int, ...] = (16,)
    activation: str = "tanh"
    lr: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 500
    patience: int = 20
    min_delta: float = 0.0
    weight_decay: float = 0.0
    loss: str = "mse"
    n_threads: int | str = "auto"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AdamSettings:
        """Typed settings from a config mapping; unknown keys and bad values name the knob."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown trainer.params for adam: {unknown}; known: {sorted(known)}")
        hidden = values.get("hidden", cls.hidden)
        settings = cls(
            hidden=(int(hidden),) if isinstance(hidden, int) else tuple(int(w) for w in hidden),
            activation=str(values.get("activation", cls.activation)),
            lr=float(values.get("lr", cls.lr)),
            batch_size=int(values.get("batch_size", cls.batch_size)),
            max_epochs=int(values.get("max_epochs", cls.max_epochs)),
            patience=int(values.get("patience", cls.patience)),
            min_delta=float(values.get("min_delta", cls.min_delta)),
            weight_decay=float(values.get("weight_decay", cls.weight_decay)),
            loss=str(values.get("loss", cls.loss)),
            n_threads=parse_threads(values.get("n_threads", cls.n_threads)),
        )
        if settings.loss not in LOSSES:
            raise ValueError(f"trainer.params.loss must be one of {LOSSES}, got {settings.loss!r}")
        for name in ("lr", "batch_size", "max_epochs", "patience"):
            if getattr(settings, name) <= 0:
                raise ValueError(f"trainer.params.{name} must be positive")
        return settings


def search_adam(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    task: str,
    cfg: Mapping[str, Any],
    seed: int,
    model_factory: ModelFactory | None = None,
    tuning: TuningSettings | None = None,
    inverse_target: InverseTarget | None = None,
) -> BaselineResult:
    """Tune Adam (``conf/trainer/adam.yaml``): default configuration plus sampled ones.

    Each trial trains a fresh network (same seed, same initial weights for the same width) with
    early stopping on validation loss and best-weights restore; the trial with the best
    validation ``PRIMARY_METRIC`` is returned. ``model_factory`` fixes the network (then the
    config must not set ``hidden`` / ``activation``). See the module docstring for losses and
    history.
    """
    check_split(task, x_train, y_train, x_val, y_val)
    default = AdamSettings.from_mapping(budget_params(cfg))  # validate before training
    if task == "regression" and takes_logits(default.loss):
        raise ValueError("trainer.params.loss=cross_entropy needs a classification task")
    check_network_settings(cfg, model_factory is not None, NETWORK_KEYS)
    n_inputs = int(np.shape(x_train)[1])
    n_outputs = 1 if np.ndim(y_train) == 1 else int(np.shape(y_train)[1])
    train = _tensors(task, x_train, y_train)
    val = _tensors(task, x_val, y_val)
    n_rows = int(np.shape(x_train)[0])
    _warm_up_optimizer()

    def fit_point(params: dict[str, Any], deadline: Deadline) -> FitOutcome:
        settings = AdamSettings.from_mapping(params)
        if settings.loss == "auto":  # the loss LM's `loss: auto` picks for the task
            settings = replace(settings, loss="mse" if task == "regression" else "cross_entropy")
        torch.manual_seed(seed)
        if model_factory is not None:
            model = model_factory()
        else:
            model = build_mlp(
                n_inputs, n_outputs, hidden=settings.hidden, activation=settings.activation,
                head=head_for_task(task, "mse"),
            )  # fmt: skip
        threads = resolve_threads(settings.n_threads, n_rows, get_weights_count(model))
        with torch_threads(threads):
            history, best_epoch = train_with_early_stopping(
                model, train, val, settings, generator=torch.Generator().manual_seed(seed),
                deadline=deadline,
            )
        epochs = len(history["train_loss"])
        return FitOutcome(
            model=model,
            predictor=torch_predictor(model, threads),
            best_iteration=best_epoch,
            history=history,
            epochs=epochs,
            stop_reason=epoch_stop_reason(
                epochs, settings.max_epochs,
                history["val_loss"][-1] if history["val_loss"] else None,
            ),
        )

    return run_tuning(
        "adam",
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


@dataclass(frozen=True)
class TensorSplit:
    """One split as tensors, ready for the loss functions."""

    x: torch.Tensor
    y: torch.Tensor
    """Float targets as given (one-hot / standardised), for the MSE loss."""
    labels: torch.Tensor | None
    """Integer class labels, for the cross-entropy loss; None for regression."""


def train_with_early_stopping(
    model: nn.Module,
    train: TensorSplit,
    val: TensorSplit,
    settings: AdamSettings,
    *,
    generator: torch.Generator,
    deadline: Deadline | None = None,
) -> tuple[dict[str, list[float]], int]:
    """Train ``model`` in place; restore its best-validation weights; return (history, best epoch).

    ``deadline``: checked after every epoch; once expired, training stops there.

    The best epoch is 1-based; 0 means no epoch reached a finite validation loss (the network
    diverged) and the last weights are left in place, so the point scores NaN and is not selected.
    """
    loss_of = _loss_function(model, settings.loss)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "epoch_time_s": []}
    best_val, best_epoch, best_state, stale = math.inf, 0, None, 0
    n_rows = train.x.shape[0]
    for epoch in range(1, settings.max_epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n_rows, generator=generator)
        for first in range(0, n_rows, settings.batch_size):
            batch = order[first : first + settings.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(train, batch)
            loss.backward()
            optimizer.step()
        epoch_time = time.perf_counter() - start

        train_loss, val_loss = _full_loss(model, loss_of, train), _full_loss(model, loss_of, val)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["epoch_time_s"].append(epoch_time)
        if not math.isfinite(val_loss):
            break
        if val_loss < best_val - settings.min_delta or best_state is None:
            best_val, best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= settings.patience:
                break
        if deadline is not None and deadline.expired():
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history, best_epoch


def _warm_up_optimizer() -> None:
    """Build a throwaway Adam once: the first construction in a process imports lazily (~2 s),
    which would otherwise be charged to the first trial's fit time."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def evaluation_loss(model: nn.Module, x: np.ndarray, y: np.ndarray, task: str, loss: str) -> float:
    """The training loss (``mse`` or ``cross_entropy``) of ``model`` on a whole split, eval mode."""
    split = _tensors(task, x, y)
    return _full_loss(model, _loss_function(model, loss), split)


def _tensors(task: str, x: np.ndarray, y: np.ndarray) -> TensorSplit:
    targets = np.asarray(y, dtype=np.float32)
    if task == "regression":
        if targets.ndim == 1:
            targets = targets.reshape(-1, 1)
        labels = None
    else:
        labels = torch.as_tensor(to_labels(targets))
    return TensorSplit(
        x=torch.as_tensor(np.asarray(x, dtype=np.float32)),
        y=torch.as_tensor(targets),
        labels=labels,
    )


def _loss_function(model: nn.Module, loss: str) -> Callable[[TensorSplit, Any], torch.Tensor]:
    """``loss_of(split, rows)``: the mean training loss over ``split`` rows ``rows``."""
    if loss == "mse":

        def mse(split: TensorSplit, rows: Any) -> torch.Tensor:
            output, target = model(split.x[rows]), split.y[rows]
            if output.shape != target.shape:
                raise ValueError(
                    f"network output shape {tuple(output.shape)} != target shape "
                    f"{tuple(target.shape)}; the model's output head must match the targets"
                )
            return F.mse_loss(output, target)

        return mse

    if not (isinstance(model, nn.Sequential) and isinstance(model[-1], nn.Softmax)):
        raise ValueError(
            "trainer.params.loss=cross_entropy needs an nn.Sequential ending in nn.Softmax "
            "(its input is taken as the logits); use loss=mse for other networks"
        )
    logits_net = model[:-1]

    def cross_entropy(split: TensorSplit, rows: Any) -> torch.Tensor:
        assert split.labels is not None
        return F.cross_entropy(logits_net(split.x[rows]), split.labels[rows])

    return cross_entropy


def _full_loss(
    model: nn.Module, loss_of: Callable[[TensorSplit, Any], torch.Tensor], split: TensorSplit
) -> float:
    model.eval()
    with torch.no_grad():
        return float(loss_of(split, slice(None)))


