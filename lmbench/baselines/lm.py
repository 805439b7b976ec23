"""Levenberg-Marquardt under the baselines' budget rules: tuned on validation like them.

The single-run trainer (``conf/trainer/lm.yaml``) trains one configuration. To put LM in the same
table as XGBoost, CatBoost and Adam, it is tuned the way they are: ``search_lm`` reads
``conf/trainer/lm_tuned.yaml`` (``params`` + ``space`` + ``budgets``) and runs
``lmbench.baselines.tuning.run_tuning``: the default configuration, then ``tuning.n_samples``
sampled ones, selected on the validation split by ``PRIMARY_METRIC``. Protocol:

* every trial starts from the same seed: ``torch.manual_seed(seed)`` runs right before the
  network is built, so trials with the same width start from the same weights;
* the network is ``build_mlp(hidden=<trial>, activation, head_for_task(task))``, or
  ``model_factory()`` as built when the caller fixes the network (then ``hidden``,
  ``activation`` and ``dtype`` may not be set);
* training is ``TrainerSettings`` built from the point's engine keys (damping, mu_init,
  demping_coef, inner_steps, max_epochs, min_error, min_gradient, mu_max, patience,
  regularization) and ``weight_decay``, which is given in Adam's units (a penalty on the mean
  training loss, as torch's weight_decay) and handed to the engine as the same penalty on its
  objective E (``Loss.objective_per_mean``: x N/2 x O for MSE, x N for cross-entropy), fitted with
  ``val=(x_val, y_val)``: validation patience with the best-validation weights restored, and
  ``min_error`` watched on the validation loss (the seed's convention), plus an epoch callback
  that stops the run once the trial's time limit has passed (best weights still restored);
* no refit on train+val: the kept model is the one scored on validation.

History of the selected run (``BaselineResult.history``, one entry per epoch *including epoch 0*,
the state before the first step, as ``TrainingHistory`` records it): ``train_loss``,
``val_loss``, ``mu``, ``epoch_time_s``, ``trials``. Model size: ``n_parameters``. Per trial,
``LMSearchResult.runs`` adds what ``TrialScore`` has no field for: epochs run, stop reason,
best epoch.

Large training splits: LM's epoch costs O(rows x outputs x P^2) plus one P x P factorisation per
damping trial, so a full tuning on a big split can run for hours. Above ``max_train_rows`` the
tuning refuses with an error naming the knob instead of quietly subsampling (that would change the
data LM is compared on) or switching to the streaming engine (it bounds memory, not time: the
in-memory engine already builds J^T J chunk by chunk).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from lmbench.baselines.adam import ModelFactory
from lmbench.baselines.common import (
    BaselineResult,
    Deadline,
    FitOutcome,
    InverseTarget,
    budget_params,
    check_network_settings,
    check_split,
    plain,
)
from lmbench.baselines.torch_utils import (
    parse_threads,
    resolve_threads,
    torch_predictor,
    torch_threads,
)
from lmbench.baselines.tuning import TuningSettings, run_tuning
from lmbench.core import (
    TrainerSettings,
    TrainingHistory,
    get_weights_count,
)
from lmbench.core.damping import DAMPING_NAMES
from lmbench.core.losses import LOSS_NAMES
from lmbench.core.settings import cast_setting
from lmbench.models import build_mlp, head_for_task, loss_for_task, probabilities

#: The engine defaults of a tuned LM trial (validation-patience training, as trainer=lm);
#: conf/trainer/lm_tuned.yaml may override each of them.
TRIAL_DEFAULTS = TrainerSettings(max_epochs=100, min_error=1e-4, patience=10)
#: Settings that go to the engine (``TrainerSettings``, in config spelling).
ENGINE_KEYS: tuple[str, ...] = (
    "engine", "damping", "mu_init", "demping_coef", "gain_ratio_threshold", "inner_steps",
    "max_epochs", "min_error", "min_gradient", "mu_max", "patience", "regularization", "ftol",
    "xtol", "gtol",
)
#: Settings that describe the network; a caller's ``model_factory`` replaces all of them.
NETWORK_KEYS: tuple[str, ...] = ("hidden", "activation", "dtype")
#: Settings the search itself reads (threads, the train-size guard), not the engine.
HARNESS_KEYS: tuple[str, ...] = ("n_threads", "max_train_rows")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class LMSettings:
    """The settings of one LM trial; every field can sit in ``params`` or in the space."""

    hidden: tuple[int, ...] = (16,)
    activation: str = "tanh"
    dtype: str = "float32"
    #: ``lmbench.core.engines``: in_memory (the default), streaming, cache, matrix_free, or
    #: ``auto``: the cost model picks the engine the network's size needs (the cache only with
    #: a temp folder, so a tuned trial never writes to disk).
    engine: str = TRIAL_DEFAULTS.engine
    damping: str = TRIAL_DEFAULTS.damping
    mu_init: float | None = None  # None: the damping rule's own default (seed: 10)
    demping_coef: float | None = None  # None: the rule's own factor (seed: 10)
    gain_ratio_threshold: float | None = TRIAL_DEFAULTS.gain_ratio_threshold
    inner_steps: int = TRIAL_DEFAULTS.inner_steps
    max_epochs: int = TRIAL_DEFAULTS.max_epochs
    min_error: float | None = TRIAL_DEFAULTS.min_error
    min_gradient: float = TRIAL_DEFAULTS.min_gradient
    mu_max: float = TRIAL_DEFAULTS.mu_max
    patience: int | None = TRIAL_DEFAULTS.patience
    ftol: float = TRIAL_DEFAULTS.ftol
    xtol: float = TRIAL_DEFAULTS.xtol
    gtol: float = TRIAL_DEFAULTS.gtol
    n_threads: int | str = "auto"
    max_train_rows: int | None = 20_000
    loss: str = "auto"
    #: The weight penalty in Adam's units: on the MEAN training loss (torch's weight_decay),
    #: turned into the engine's lambda on E by ``Loss.objective_per_mean`` (``trainer_settings``).
    weight_decay: float = 0.0
    regularization: str = TRIAL_DEFAULTS.regularization

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LMSettings:
        """Typed settings from a config mapping; unknown keys and bad values name the knob."""
        values = plain(values)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown trainer.params for lm: {unknown}; known: {sorted(known)}")
        d = cls()
        hidden = values.get("hidden", d.hidden)
        if isinstance(hidden, int):
            hidden = (hidden,)
        engine = {k: cast_setting(k, values[k]) for k in ENGINE_KEYS if k in values}
        settings = cls(
            hidden=tuple(int(w) for w in hidden),
            activation=str(values.get("activation", d.activation)),
            dtype=str(values.get("dtype", d.dtype)),
            n_threads=parse_threads(values.get("n_threads", d.n_threads)),
            max_train_rows=_optional(values.get("max_train_rows", d.max_train_rows), int),
            loss=str(values.get("loss", d.loss)),
            weight_decay=float(values.get("weight_decay", d.weight_decay)),
            **engine,
        )
        settings._check()
        return settings

    def _check(self) -> None:
        if self.damping not in DAMPING_NAMES:
            raise ValueError(
                f"trainer.params.damping must be one of {DAMPING_NAMES}, got {self.damping!r}"
            )
        if self.dtype not in _DTYPES:
            raise ValueError(f"trainer.params.dtype must be one of {sorted(_DTYPES)}")
        for name in ("inner_steps", "max_epochs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"trainer.params.{name} must be positive")
        for name in ("patience", "max_train_rows"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"trainer.params.{name} must be positive or null")
        if not self.hidden or any(w < 1 for w in self.hidden):
            raise ValueError(f"trainer.params.hidden must be widths >= 1, got {self.hidden}")
        if self.loss not in ("auto", *LOSS_NAMES):
            raise ValueError(
                f"trainer.params.loss must be auto or one of {LOSS_NAMES}, got {self.loss!r}"
            )
        # The engine validates the rest (the damping rule's mu_init, demping_coef, threshold).
        self.trainer_settings()

    def trainer_settings(self, task: str = "regression", n_rows: int = 1, n_outputs: int = 1
                         ) -> TrainerSettings:
        """The engine settings of this trial for ``task`` (``loss: auto`` resolved; the
        weight decay on the mean loss of ``n_rows`` x ``n_outputs`` targets turned into the
        engine's lambda on E; network and harness keys left out)."""
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values["loss"] = loss_for_task(self.loss, task)
        settings = TrainerSettings.from_mapping(values, ignore=(*NETWORK_KEYS, *HARNESS_KEYS))
        scale = settings.objective().objective_per_mean(n_rows, n_outputs)
        return settings.with_(weight_decay=self.weight_decay * scale)


@dataclass(frozen=True)
class LMRunSummary:
    """How one trial's LM run went (aligned with ``BaselineResult.trials``)."""

    epochs: int
    """Epochs of LM steps run (epoch 0, the initial evaluation, not counted)."""
    stop_reason: str
    """``TrainingHistory.stop_reason``: max_epochs, min_error, validation_patience, mu_max, ..."""
    best_epoch: int
    """Epoch whose weights were kept: the best-validation one under patience (0: the initial
    weights were never beaten), else the last one."""
    n_parameters: int
    engine: str = "in_memory"
    """The engine the trial ran on (``auto`` resolved by the cost model for its network)."""


@dataclass
class LMSearchResult(BaselineResult):
    """A ``BaselineResult`` plus the per-trial LM run summaries."""

    runs: list[LMRunSummary] = field(default_factory=list)


def search_lm(
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
) -> LMSearchResult:
    """Tune LM (``conf/trainer/lm_tuned.yaml``) on train, select on validation.

    Targets follow the data contract: one-hot rows for classification (softmax head, MSE, as
    the original library), standardised ``(n, 1)`` for regression. ``model_factory`` fixes the
    network (then ``hidden``, ``activation`` and ``dtype`` must not appear in the config); by
    default each trial builds an MLP of its ``hidden`` widths. Raises ``ValueError`` naming
    ``trainer.params.max_train_rows`` when the train split is larger. See the module docstring
    for the protocol and the history.
    """
    check_split(task, x_train, y_train, x_val, y_val)
    default = budget_params(cfg)
    settings_default = LMSettings.from_mapping(default)  # validate before training
    check_network_settings(cfg, model_factory is not None, NETWORK_KEYS)
    n_rows = int(np.shape(x_train)[0])
    limit = settings_default.max_train_rows
    if limit is not None and n_rows > limit:
        raise ValueError(
            f"x_train has {n_rows} rows, more than trainer.params.max_train_rows={limit}: an LM "
            "trial costs O(rows x P^2) per epoch. Raise "
            "trainer.params.max_train_rows (null disables the guard), subsample before "
            "splitting (split.max_rows), or train one configuration with the streaming engine."
        )
    n_inputs = int(np.shape(x_train)[1])
    n_outputs = 1 if np.ndim(y_train) == 1 else int(np.shape(y_train)[1])
    if task != "regression" and (np.ndim(y_train) != 2 or n_outputs < 2):
        raise ValueError(
            f"{task} targets must be one-hot rows (n, n_classes >= 2), as prepare_dataset makes "
            f"them, got y_train of shape {np.shape(y_train)}: LM fits the softmax output to them"
        )
    _warm_up_engine()
    runs: list[LMRunSummary] = []

    def fit_point(params: dict[str, Any], deadline: Deadline) -> FitOutcome:
        settings = LMSettings.from_mapping(params)
        engine = settings.trainer_settings(task, n_rows, n_outputs)
        dtype = _DTYPES[settings.dtype]
        torch.manual_seed(seed)
        if model_factory is not None:
            model = model_factory()
        else:
            model = build_mlp(
                n_inputs, n_outputs, hidden=settings.hidden,
                activation=settings.activation, head=head_for_task(task, engine.loss),
                dtype=dtype,
            )  # fmt: skip
        threads = resolve_threads(settings.n_threads, n_rows, get_weights_count(model))
        # the trial's limit is the engine's own: checked inside an epoch too, so that one epoch
        # of a wide network on 10,000 rows cannot overrun it by minutes
        engine = engine.with_(time_limit_s=deadline.remaining_s())
        with torch_threads(threads):
            history = engine.fit(model, x_train, y_train, val=(x_val, y_val))
        deadline.expired()  # marks the trial timed out when the engine stopped on the limit
        model.eval()
        best_epoch = history.best_epoch if history.best_epoch is not None else history.epochs
        runs.append(
            LMRunSummary(
                epochs=history.epochs,
                stop_reason=history.stop_reason,
                best_epoch=best_epoch,
                n_parameters=get_weights_count(model),
                engine=engine.resolved_engine(model),
            )
        )
        return FitOutcome(
            model=model,
            predictor=torch_predictor(
                model, threads,
                output=None if task == "regression" else lambda t: probabilities(t, engine.loss),
            ),
            best_iteration=best_epoch,
            history=history_curves(history),
            epochs=history.epochs,
            stop_reason=history.stop_reason,
        )

    result = run_tuning(
        "lm",
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
    base = {f.name: getattr(result, f.name) for f in fields(BaselineResult)}
    return LMSearchResult(**base, runs=runs)


def history_curves(history: TrainingHistory) -> dict[str, list[float]]:
    """The per-epoch curves a baseline result carries, epoch 0 (initial state) included."""
    return {
        "train_loss": [float(v) for v in history.loss],
        "val_loss": [float(v) for v in history.val_loss],
        "mu": [float(v) for v in history.mu],
        "epoch_time_s": [float(v) for v in history.epoch_time],
        "trials": [float(v) for v in history.trials],
        **history.regularization_series(),
    }


def _warm_up_engine() -> None:
    """Run one zero-epoch fit on a 1-row problem before the search: the first ``torch.func``
    call in a process imports ``torch._dynamo`` (~3 s), which would otherwise be charged to the
    first trial's fit time (later calls cost about a millisecond)."""
    with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG stream untouched
        model = nn.Linear(1, 1)
    TrainerSettings(max_epochs=0, min_error=None).fit(model, torch.zeros(1, 1), torch.zeros(1, 1))


def _optional(value: Any, cast: type) -> Any:
    """``None`` (YAML ``null``) passes through; NaN is rejected; anything else is cast."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("NaN is not a valid setting; use null to disable")
    return cast(value)
