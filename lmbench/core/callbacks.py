"""Per-epoch hooks: metrics, logging, progress bars. The engine calls them; they never steer
the numerics, except that returning True from ``on_epoch_end`` asks training to stop."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


class MetricsCallback:
    """Evaluates ``{name: fn(model) -> float}`` each epoch into ``history.metrics[name]``."""

    def __init__(self, metrics: Mapping[str, Callable[[nn.Module], float]]) -> None:
        self.metrics = dict(metrics)

    def on_epoch_end(self, info: EpochInfo) -> None:
        was_training = info.model.training
        info.model.eval()
        try:
            for name, fn in self.metrics.items():
                info.history.metrics.setdefault(name, []).append(float(fn(info.model)))
        finally:
            info.model.train(was_training)


class _FunctionCallback:
    def __init__(self, fn: Callable[[EpochInfo], bool | None]) -> None:
        self.fn = fn

    def on_epoch_end(self, info: EpochInfo) -> bool | None:
        return self.fn(info)


CallbackSpec = (
    Mapping[str, Callable[[nn.Module], float]]
    | Sequence[Callback | Callable[[EpochInfo], bool | None]]
    | None
)


def as_callbacks(spec: CallbackSpec) -> list[Callback]:
    """Normalise what users pass: a metrics mapping, callback objects or plain functions."""
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        return [MetricsCallback(spec)]
    callbacks: list[Callback] = []
    for item in spec:
        if hasattr(item, "on_epoch_end"):
            callbacks.append(item)  # type: ignore[arg-type]
        elif callable(item):
            callbacks.append(_FunctionCallback(item))
        else:
            raise TypeError(
                f"callbacks must be objects with on_epoch_end(info) or functions of EpochInfo, "
                f"got {type(item).__name__}"
            )
    return callbacks
