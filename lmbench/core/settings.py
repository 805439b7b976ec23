"""One typed settings object for an LM run, and the one place that turns it into a trainer.

Every caller outside the engine (the harness, the tuned LM baseline, the scikit-learn
estimators, the seed-compatible functions, the paper checks, the benchmarks) describes its run
as ``TrainerSettings`` and calls ``build`` (or ``fit``), so a new knob is added here once.
``from_mapping`` reads a config mapping (a Hydra ``DictConfig`` or a dict) and accepts the seed's
spelling ``demping_coef`` for ``damping_factor``.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

import psutil
import torch
from torch import nn

from lmbench.core.callbacks import CallbackSpec
from lmbench.core.checks import check_device
from lmbench.core.damping import (
    DAMPING_NAMES,
    DampingName,
    DampingRule,
    DampingScaling,
    make_damping,
)
from lmbench.core.distributed import Reducer
from lmbench.core.engines import ENGINE_NAMES, EngineName, LMEngine, plan_engine, resolve_auto
from lmbench.core.geodesic import GeodesicAcceleration
from lmbench.core.history import TrainingHistory
from lmbench.core.jacobian import JacobianMode
from lmbench.core.losses import Loss, LossName
from lmbench.core.minibatch import MiniBatchLevenbergMarquardt, check_batch_size
from lmbench.core.regularization import Regularization, RegularizationName, make_regularization
from lmbench.core.system import SystemForm
from lmbench.core.trainer import (
    LevenbergMarquardt,
    LossFn,
    StoppingRules,
    ValidationData,
)

#: Config keys that are spelled differently in the seed library and in older configs.
ALIASES = {"demping_coef": "damping_factor"}


@dataclass(frozen=True)
class TrainerSettings:
    """Every knob of one LM run (engine, damping, stopping, numerics), typed and checked.

    engine: ``in_memory`` | ``streaming`` | ``cache`` | ``matrix_free`` | ``auto`` (see
        ``lmbench.core.engines``; ``auto`` takes the cache only with a ``temp_folder``).
    form: ``auto`` | ``primal`` | ``dual`` (in-memory engine only).
    loss, huber_delta: what LM minimises (``lmbench.core.losses``): ``mse`` | ``cross_entropy`` |
        ``bce`` | ``huber`` | ``sqrt_cross_entropy``; generalised Gauss-Newton steps.
    damping, mu_init, damping_factor, gain_ratio_threshold: the damping rule
        (``lmbench.core.damping``) and its own parameters; None takes the rule's own default
        (seed and marquardt: mu_init 10, factor 10; gain_ratio: mu_init 1e-3, threshold 1e-4).
        ``damping_factor`` is the seed's ``demping_coef``: mu is divided by it after a success
        and multiplied after a failure (not used by gain_ratio).
    damping_grow_factor, damping_shrink_factor: an asymmetric seed/marquardt update (mu *=
        grow after a failure, mu /= shrink after a success; None: ``damping_factor``).
    damping_scaling: the damping term D: ``rule`` (the rule's own), ``diagonal``
        (diag(J^T J)) or ``running_max`` (More's running maximum of it, as MINPACK).
    acceleration, geodesic_ratio: ``geodesic`` adds Transtrum's second-order correction to
        each step (``lmbench.core.geodesic``; mse loss, primal system), kept while
        2 ||a|| / ||v|| <= ``geodesic_ratio``; ``none`` by default.
    inner_steps: damping trials per epoch.
    weight_decay, regularization, bayesian_max_change: the weight penalty
        (``lmbench.core.regularization``): F = E + (weight_decay / 2) ||w||^2 over all weights
        and biases; ``bayesian`` re-estimates the penalty from the evidence (MATLAB's trainbr;
        in_memory and streaming engines, full batch), each update bounded by the factor
        ``bayesian_max_change``.
    max_epochs, min_error, min_gradient, mu_max, patience, ftol, xtol, gtol, time_limit_s: the
        stopping rules (``lmbench.core.stopping``; ftol, xtol and gtol are the convergence
        tests, time_limit_s a wall-clock limit checked inside epochs too).
    jacobian_mode, system_dtype, chunk_rows, jacobian_budget_bytes, cg_max_iter, mu_min: numerics.
    temp_folder: the cache engine's Jacobian files (a private sub-folder, always removed).
    batch_size: rows per chunk when in-memory arrays feed the streaming or cache engine.
    mini_batch_size, mini_batch_seed: rows per LM step (``lmbench.core.minibatch``: one step per
        seeded-shuffled batch, mu carried across batches; None = one exact full-batch step per
        epoch) and the shuffle's seed. Not with the cache engine.
    memory_budget_bytes: what ``auto`` may use (default: 3/4 of the free memory).
    """

    engine: EngineName = "in_memory"
    form: SystemForm = "auto"
    loss: LossName = "mse"
    huber_delta: float = 1.0
    damping: DampingName = "seed"
    mu_init: float | None = None
    damping_factor: float | None = None
    gain_ratio_threshold: float | None = None
    damping_grow_factor: float | None = None
    damping_shrink_factor: float | None = None
    damping_scaling: DampingScaling = "rule"
    acceleration: Literal["none", "geodesic"] = "none"
    geodesic_ratio: float = GeodesicAcceleration.ratio
    inner_steps: int = 10
    weight_decay: float = 0.0
    regularization: RegularizationName = "none"
    bayesian_max_change: float = 10.0
    max_epochs: int = StoppingRules.max_epochs  # the stopping rules' own defaults
    min_error: float | None = StoppingRules.min_error
    min_gradient: float = StoppingRules.min_gradient
    mu_max: float = StoppingRules.mu_max
    patience: int | None = StoppingRules.patience
    ftol: float = StoppingRules.ftol
    xtol: float = StoppingRules.xtol
    gtol: float = StoppingRules.gtol
    time_limit_s: float | None = StoppingRules.time_limit_s
    jacobian_mode: JacobianMode = "auto"
    system_dtype: str | None = None
    chunk_rows: int | None = None
    jacobian_budget_bytes: int | None = None
    cg_max_iter: int = 500
    mu_min: float = 1e-20
    temp_folder: str | None = None
    batch_size: int = 4096
    memory_budget_bytes: int | None = None
    mini_batch_size: int | None = None
    mini_batch_seed: int = 0

    def __post_init__(self) -> None:
        if self.engine not in ENGINE_NAMES:
            raise ValueError(f"engine must be one of {ENGINE_NAMES}, got {self.engine!r}")
        if self.damping not in DAMPING_NAMES:
            raise ValueError(f"damping must be one of {DAMPING_NAMES}, got {self.damping!r}")
        if self.system_dtype is not None and not isinstance(
            getattr(torch, str(self.system_dtype), None), torch.dtype
        ):
            raise ValueError(f"system_dtype must name a torch dtype, got {self.system_dtype!r}")
        if self.cg_max_iter < 1:
            raise ValueError(f"cg_max_iter must be >= 1, got {self.cg_max_iter}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.memory_budget_bytes is not None and self.memory_budget_bytes <= 0:
            raise ValueError(
                f"memory_budget_bytes must be > 0 or None, got {self.memory_budget_bytes}"
            )
        plan_engine("streaming" if self.engine == "auto" else self.engine, self.form)
        check_batch_size(self.mini_batch_size, "mini_batch_size")
        if self.mini_batch_size is not None and self.engine == "cache":
            raise ValueError("mini_batch_size needs the in_memory or streaming engine (each "
                             "batch's system is solved by Cholesky), not cache")
        self.objective()  # validates the loss name and huber_delta
        self.stopping_rules()  # validates max_epochs, min_error, mu_max, patience
        self.damping_rule()  # validates mu_init and damping_factor (the seed's demping_coef)
        accelerator = self.accelerator()  # validates acceleration and geodesic_ratio
        if accelerator is not None:
            accelerator.check(self.loss, self.form, self.engine, self.mini_batch_size is not None)
        regularizer = self.regularizer()  # validates weight_decay and regularization
        if self.engine != "auto":  # auto is checked by the trainer, once resolved
            regularizer.check_engine(self.engine)
        regularizer.check_full_batch(self.mini_batch_size is not None)

    @classmethod
    def for_curve_fit(cls, **changes: Any) -> TrainerSettings:
        """The least-squares preset: LM as a curve fitter (as one reaches for MINPACK).

        The gain-ratio rule with More's scaling (D = running max of diag(J^T J)), float64
        systems, the convergence tests at scipy's tolerances (ftol = xtol = gtol = 1e-8) and
        no ``min_error``, up to 1000 epochs, and mu free to fall as far as the problem needs
        (``mu_min=1e-300``: More's D can lie many orders of magnitude above the curvature left
        near the solution); ``changes`` override any field. Give the module
        float64 parameters: the preset solves in float64, but the residuals are the model's.
        """
        preset: dict[str, Any] = {
            "damping": "gain_ratio", "damping_scaling": "running_max", "system_dtype": "float64",
            "min_error": None, "max_epochs": 1000, "inner_steps": 50, "form": "primal",
            "mu_min": 1e-300,
        }
        return cls(**{**preset, **{ALIASES.get(k, k): v for k, v in changes.items()}})

    # ------------------------------------------------------------------ reading configs
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], ignore: Iterable[str] = ()) -> TrainerSettings:
        """Typed settings from a config mapping; keys in ``ignore`` are skipped, any other
        unknown key is an error that lists the known ones."""
        known = field_types()
        skipped = set(ignore)
        chosen: dict[str, Any] = {}
        for key, value in dict(values).items():
            name = ALIASES.get(str(key), str(key))
            if name in known:
                chosen[name] = _cast(name, value, known[name])
            elif key not in skipped:
                raise ValueError(
                    f"unknown LM setting {key!r}; known: {sorted(known) + sorted(ALIASES)}"
                )
        return cls(**chosen)

    def with_(self, **changes: Any) -> TrainerSettings:
        """A copy with some fields changed (seed spellings accepted)."""
        return replace(self, **{ALIASES.get(k, k): v for k, v in changes.items()})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ------------------------------------------------------------------ the pieces
    def stopping_rules(self) -> StoppingRules:
        return StoppingRules(
            max_epochs=self.max_epochs,
            min_error=self.min_error,
            min_gradient=self.min_gradient,
            mu_max=self.mu_max,
            patience=self.patience,
            ftol=self.ftol,
            xtol=self.xtol,
            gtol=self.gtol,
            time_limit_s=self.time_limit_s,
        )

    def accelerator(self) -> GeodesicAcceleration | None:
        if self.acceleration not in ("none", "geodesic"):
            raise ValueError(
                f"acceleration must be 'none' or 'geodesic', got {self.acceleration!r}")
        return GeodesicAcceleration(self.geodesic_ratio) if self.acceleration == "geodesic" \
            else None

    def objective(self) -> Loss:
        return Loss(self.loss, huber_delta=self.huber_delta)

    def regularizer(self) -> Regularization:
        return make_regularization(self.weight_decay, self.regularization,
                                   self.bayesian_max_change)

    def damping_rule(self) -> DampingRule:
        return make_damping(
            self.damping, self.mu_init, self.damping_factor, self.gain_ratio_threshold,
            grow_factor=self.damping_grow_factor, shrink_factor=self.damping_shrink_factor,
            scaling=self.damping_scaling,
        )

    def resolved_engine(self, model: nn.Module) -> EngineName:
        """``auto`` resolved against the model's size and the memory budget."""
        if self.engine != "auto":
            return self.engine
        first = next(p for p in model.parameters() if p.requires_grad)
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        budget = self.memory_budget_bytes or available_memory_bytes(first.device)
        return resolve_auto(n_params, first.element_size(), budget, None if self.temp_folder else 0)

    def engine_for(self, model: nn.Module) -> LMEngine:
        """The engine object these settings name (``auto`` resolved for ``model``)."""
        return plan_engine(self.resolved_engine(model), self.form, self.temp_folder,
                           self.cg_max_iter)

    # ------------------------------------------------------------------ building and fitting
    def build(
        self,
        model: nn.Module,
        *,
        loss_fn: LossFn | None = None,
        callbacks: CallbackSpec = None,
        checkpoint_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        reducer: Reducer | None = None,
        loader_batches: bool = False,
    ) -> LevenbergMarquardt:
        """The trainer these settings describe, for ``model`` (moved to ``device`` first);
        ``loader_batches``: one LM step per batch of the loader it is fit on (mini-batch LM)."""
        check_device(device)
        if device is not None:
            model.to(device)
        engine = self.engine_for(model)
        mini_batch = self.mini_batch_size is not None or loader_batches
        return (MiniBatchLevenbergMarquardt if mini_batch else LevenbergMarquardt)(
            model,
            **({"batch_size": self.mini_batch_size, "seed": self.mini_batch_seed}
               if mini_batch else {}),
            loss=self.objective(),
            loss_fn=loss_fn,
            damping=self.damping_rule(),
            stopping=self.stopping_rules(),
            inner_steps=self.inner_steps,
            regularization=self.regularizer(),
            acceleration=self.accelerator(),
            engine=engine,
            reducer=reducer,
            jacobian_mode=self.jacobian_mode,
            system_dtype=getattr(torch, self.system_dtype) if self.system_dtype else None,
            chunk_rows=self.chunk_rows,
            jacobian_budget_bytes=self.jacobian_budget_bytes,
            mu_min=self.mu_min,
            callbacks=callbacks,
            checkpoint_dir=checkpoint_dir,
        )

    def fit(
        self,
        model: nn.Module,
        x: Any,
        y: Any,
        val: ValidationData = None,
        **build_options: Any,
    ) -> TrainingHistory:
        """Build the trainer and fit in-memory ``x``, ``y``; the streaming and cache engines
        read them in chunks of ``batch_size`` rows, as they would read a loader (mini-batch LM
        cuts its own batches of ``mini_batch_size`` rows from the tensors)."""
        trainer = self.build(model, **build_options)
        if self.mini_batch_size is not None or self.engine_for(model).source == "tensors":
            return trainer.fit(x, y, val=val)
        x_t = torch.as_tensor(x, dtype=trainer.flat.dtype, device=trainer.flat.device)
        y_t = torch.as_tensor(y, dtype=trainer.flat.dtype, device=trainer.flat.device)
        step = self.batch_size
        chunks = [(x_t[i : i + step], y_t[i : i + step]) for i in range(0, len(x_t), step)]
        return trainer.fit_loader(chunks, val=val)


def available_memory_bytes(device: torch.device) -> int:
    """3/4 of the free memory where the system lives (GPU memory on CUDA, else RAM)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.75)
    return int(psutil.virtual_memory().available * 0.75)


@cache
def field_types() -> dict[str, type]:
    """Each ``TrainerSettings`` field's value type (``X | None`` -> X, a ``Literal`` -> str)."""
    hints = typing.get_type_hints(TrainerSettings)
    return {f.name: _value_type(hints[f.name]) for f in fields(TrainerSettings)}


def optional_fields() -> frozenset[str]:
    """The fields that accept None (``null`` in a config)."""
    hints = typing.get_type_hints(TrainerSettings)
    return frozenset(
        f.name for f in fields(TrainerSettings) if type(None) in typing.get_args(hints[f.name])
    )


def cast_setting(key: str, value: Any) -> Any:
    """``value`` in the type of setting ``key`` (config spelling accepted); None passes."""
    name = ALIASES.get(key, key)
    return _cast(key, value, field_types()[name])


def _value_type(hint: Any) -> type:
    if typing.get_origin(hint) in (Union, types.UnionType):
        (hint,) = (a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is Literal:
        return str
    return hint


def _cast(name: str, value: Any, kind: type) -> Any:
    """A config value in its field's type; None passes through."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{name}: NaN is not a valid setting; use null to disable")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a {kind.__name__}, got {value!r}") from None
