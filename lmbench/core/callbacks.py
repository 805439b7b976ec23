"""Per-epoch hooks: metrics, logging, progress bars. The engine calls them; they never steer
the numerics, except that returning True from ``on_epoch_end`` asks training to stop."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import nn

from lmbench.core.history import TrainingHistory


@dataclass(frozen=True)
class EpochInfo:
    """What a callback sees after each epoch (epoch 0 is the initial state)."""

    epoch: int
    model: nn.Module
    history: TrainingHistory


@runtime_checkable
class Callback(Protocol):
    def on_epoch_end(self, info: EpochInfo) -> bool | None:
        """Called after each epoch; return True to stop training (reason ``callback``)."""
        ...


def required_arguments(fn: Callable[..., Any]) -> int:
    """Positional arguments ``fn`` needs (1 when its signature cannot be read)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(
        p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in params
    )


class MetricsCallback:
    """Evaluates ``{name: fn(model) -> float}`` each epoch into ``history.metrics[name]``;
    a function of no arguments (the seed's ``metric_callbacks``) is called as ``fn()``.
    A metric that returns None records nothing for that epoch."""

    def __init__(self, metrics: Mapping[str, Callable[..., Any]]) -> None:
        self.metrics = dict(metrics)
        self._no_args = {name: required_arguments(fn) == 0 for name, fn in self.metrics.items()}

    def on_epoch_end(self, info: EpochInfo) -> None:
        was_training = info.model.training
        info.model.eval()
        try:
            for name, fn in self.metrics.items():
                value = fn() if self._no_args[name] else fn(info.model)
                if value is not None:
                    info.history.metrics.setdefault(name, []).append(float(value))
        finally:
            info.model.train(was_training)


class _FunctionCallback:
    def __init__(self, fn: Callable[[EpochInfo], bool | None]) -> None:
        self.fn = fn

    def on_epoch_end(self, info: EpochInfo) -> bool | None:
        return self.fn(info)


CallbackSpec = (
    Mapping[str, Callable[[nn.Module], float] | Callable[[], float]]
    | Sequence[Callback | Callable[[EpochInfo], bool | None] | Callable[[], float]]
    | None
)


def as_callbacks(spec: CallbackSpec) -> list[Callback]:
    """Normalise what users pass: a metrics mapping ``{name: fn(model)}`` (or ``fn()``),
    callback objects, functions of ``EpochInfo``, or the seed's zero-argument functions
    returning a number (recorded in ``history.metrics`` under the function's ``__name__``)."""
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        return [MetricsCallback(spec)]
    if callable(spec) and not hasattr(spec, "on_epoch_end"):
        spec = [spec]
    callbacks: list[Callback] = []
    for item in spec:
        if hasattr(item, "on_epoch_end"):
            callbacks.append(item)  # type: ignore[arg-type]
        elif callable(item) and required_arguments(item) == 0:
            name = getattr(item, "__name__", None) or type(item).__name__
            callbacks.append(MetricsCallback({name: item}))
        elif callable(item):
            callbacks.append(_FunctionCallback(item))
        else:
            raise TypeError(
                f"callbacks must be objects with on_epoch_end(info), functions of EpochInfo, "
                f"or functions of no arguments returning a number; got {type(item).__name__}"
            )
    return callbacks
