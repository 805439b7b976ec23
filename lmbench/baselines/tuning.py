"""Equal-budget tuning with Optuna: the default configuration, then K sampled ones.

Every method is tuned the same way (TabArena-style protocol):

* trial 0 is the method's default configuration (``params`` under the selected budget); it is
  enqueued in the Optuna study and told like any other trial, so TPE learns from it;
* trials 1..K are asked from the sampler (``TPESampler`` or ``RandomSampler``, seeded by the run
  seed, so one seed always yields the same trials) over the config's ``space``; K is
  ``tuning.n_samples`` from ``conf/config.yaml``, the same for every method;
* every trial fits on train with the method's early stopping on validation and a cooperative
  time limit (``tuning.trial_time_limit_s``: LM's engine checks it inside an epoch too, the
  other methods after each epoch or boosting round); a trial that hits it keeps the model
  trained so far, is scored like the others and is recorded with ``timed_out=True`` (stop
  reason ``time_limit``); every trial records its epochs (boosting rounds), best epoch
  (``best_iteration``), stop reason and fit time (``TrialScore``);
* selection is on the validation split by ``PRIMARY_METRIC`` (ties keep the earlier trial, so
  the default wins ties); no refit. Only two models stay in memory: the selected one and the
  default's.

Space entries (``space.<setting>``, the setting's default value must lie in the space):

* ``{type: float, low, high, log: false}`` and ``{type: int, low, high, log: false}``;
* ``{type: categorical, choices: [...]}``: choices of any YAML value (lists included, e.g. hidden
  widths); Optuna sees the index of the choice, the fit sees the value;
* ``null``: not searched (a config that extends another removes an inherited entry this way).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmbench.baselines.common import (
    STOP_TIME_LIMIT,
    BaselineResult,
    Deadline,
    FitOutcome,
    FitTrial,
    InverseTarget,
    TrialScore,
    budget_params,
    plain,
)
from lmbench.metrics import PRIMARY_METRIC, evaluate_predictions, is_better, primary_score

SAMPLERS: tuple[str, ...] = ("tpe", "random")
SPACE_TYPES: tuple[str, ...] = ("float", "int", "categorical")
ORIGIN_DEFAULT = "default"
ORIGIN_SAMPLED = "sampled"


@dataclass(frozen=True)
class TuningSettings:
    """The top-level ``tuning`` node: the same budget for every method."""

    n_samples: int = 4
    """K: sampled configurations after the default one."""
    sampler: str = "tpe"
    tpe_startup_trials: int = 2
    """Trials (the default one included) TPE samples at random before it models the scores."""
    trial_time_limit_s: float | None = 60.0
    """Cooperative time limit of one trial's fit (None: no limit)."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> TuningSettings:
        """Typed settings from ``cfg.tuning``; bad values name the knob."""
        values = plain(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown tuning settings {unknown}; known: {sorted(known)}")
        n_samples = values.get("n_samples", cls.n_samples)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 0:
            raise ValueError(f"tuning.n_samples must be an integer >= 0, got {n_samples!r}")
        sampler = str(values.get("sampler", cls.sampler))
        if sampler not in SAMPLERS:
            raise ValueError(f"tuning.sampler must be one of {SAMPLERS}, got {sampler!r}")
        startup = values.get("tpe_startup_trials", cls.tpe_startup_trials)
        if isinstance(startup, bool) or not isinstance(startup, int) or startup < 1:
            raise ValueError(f"tuning.tpe_startup_trials must be an integer >= 1, got {startup!r}")
        limit = values.get("trial_time_limit_s", cls.trial_time_limit_s)
        if limit is not None and not (float(limit) > 0):
            raise ValueError(
                f"tuning.trial_time_limit_s must be > 0 seconds or null, got {limit!r}"
            )
        return cls(n_samples, sampler, startup, None if limit is None else float(limit))


@dataclass(frozen=True)
class Dimension:
    """One tuned setting."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value ``trial`` asks for (categorical: the choice behind the sampled index)."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        index = trial.suggest_categorical(self.name, list(range(len(self.choices))))
        return plain(self.choices[index])

    def encode(self, value: Any) -> Any:
        """The Optuna value of a configuration value; errors say how to fix the space."""
        if self.kind == "categorical":
            for index, choice in enumerate(self.choices):
                if plain(choice) == plain(value):
                    return index
            raise ValueError(
                f"the default trainer.params.{self.name}={value!r} is not among "
                f"trainer.space.{self.name}.choices {list(self.choices)}; add it to the choices"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"trainer.params.{self.name} must be a number, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(
                f"the default trainer.params.{self.name}={value} lies outside "
                f"trainer.space.{self.name} [{self.low}, {self.high}]; widen the range"
            )
        return int(value) if self.kind == "int" else float(value)


def parse_space(space: Mapping[str, Any] | None) -> list[Dimension]:
    """``trainer.space`` as typed dimensions, checked."""
    dimensions = []
    for name, spec in plain(space or {}).items():
        if spec is None:
            continue  # removed by an extending config
        where = f"trainer.space.{name}"
        if not isinstance(spec, dict) or spec.get("type") not in SPACE_TYPES:
            raise ValueError(f"{where} must be a mapping with type one of {SPACE_TYPES}")
        kind = spec["type"]
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ValueError(f"{where}.choices must be a non-empty list")
            dimensions.append(Dimension(name, kind, choices=tuple(choices)))
            continue
        low, high, log = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
        if not isinstance(low, int | float) or not isinstance(high, int | float) or low >= high:
            raise ValueError(f"{where} needs numbers low < high, got low={low!r} high={high!r}")
        if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
            raise ValueError(f"{where} is an int range: low and high must be whole numbers")
        if log and low <= 0:
            raise ValueError(f"{where} has log: true, so low must be > 0, got {low}")
        dimensions.append(Dimension(name, kind, float(low), float(high), log))
    return dimensions


def make_sampler(tuning: TuningSettings, seed: int) -> Any:
    """The Optuna sampler ``tuning.sampler`` seeded by the run seed."""
    import optuna

    if tuning.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tuning.tpe_startup_trials)


def run_tuning(
    name: str,
    task: str,
    cfg: Mapping[str, Any],
    fit_trial: FitTrial,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    tuning: TuningSettings,
    seed: int,
    inverse_target: InverseTarget | None,
    model_size: Callable[[FitOutcome], dict[str, int]],
) -> BaselineResult:
    """Fit the default configuration and ``tuning.n_samples`` sampled ones, score each on
    validation, keep the best (earlier trial on ties) and the default. No refit afterwards."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    default = budget_params(cfg)
    dimensions = parse_space(cfg.get("space"))
    missing = [d.name for d in dimensions if d.name not in default]
    if missing:
        raise ValueError(
            f"trainer.space tunes {missing} but trainer.params gives no default for them; "
            "add the default configuration's values to trainer.params"
        )
    direction = "maximize" if PRIMARY_METRIC[task][1] == "max" else "minimize"
    study = optuna.create_study(direction=direction, sampler=make_sampler(tuning, seed))
    study.enqueue_trial({d.name: d.encode(default[d.name]) for d in dimensions})
    scores: list[TrialScore] = []
    kept: dict[str, tuple[TrialScore, FitOutcome]] = {}
    start = time.perf_counter()
    for number in range(1 + tuning.n_samples):
        trial = study.ask()
        params = {**default, **{d.name: d.suggest(trial) for d in dimensions}}
        deadline = Deadline(tuning.trial_time_limit_s)
        outcome = fit_trial(dict(params), deadline)
        fit_time = time.perf_counter() - deadline.started
        metrics = evaluate_predictions(
            task, y_val, outcome.predictor(x_val), inverse_target=inverse_target
        )
        score = TrialScore(
            number=number,
            params=params,
            origin=ORIGIN_DEFAULT if number == 0 else ORIGIN_SAMPLED,
            val_score=primary_score(task, metrics),
            val_metrics=metrics,
            fit_time_s=fit_time,
            best_iteration=outcome.best_iteration,
            timed_out=deadline.hit,
            epochs=outcome.epochs,
            stop_reason=STOP_TIME_LIMIT if deadline.hit else outcome.stop_reason,
        )
        scores.append(score)
        if math.isfinite(score.val_score):
            study.tell(trial, score.val_score)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if number == 0:
            kept["default"] = (score, outcome)
        if "best" not in kept or is_better(task, score.val_score, kept["best"][0].val_score):
            kept["best"] = (score, outcome)
    search_time = time.perf_counter() - start
    best_score, best_outcome = kept["best"]
    return BaselineResult(
        name=name,
        task=task,
        primary_metric=PRIMARY_METRIC[task][0],
        best_params=dict(best_score.params),
        best_val_score=best_score.val_score,
        best_val_metrics=dict(best_score.val_metrics),
        trials=scores,
        selected_trial=best_score.number,
        search_time_s=search_time,
        best_fit_time_s=best_score.fit_time_s,
        model_size=model_size(best_outcome),
        model=best_outcome.model,
        predictor=best_outcome.predictor,
        default_predictor=kept["default"][1].predictor,
        history=best_outcome.history,
    )

