"""What the harness may call on a tracker: the ``Tracker`` protocol, and ``NullTracker``, the
tracker used when tracking is off (same interface, does nothing)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

from lmbench.tracking.schema import CONFIG_ARTIFACT

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]


@runtime_checkable
class Tracker(Protocol):
    """What the harness may call on a tracker; ``RunTracker`` and ``NullTracker`` satisfy it."""

    run_id: str | None
    log_weights: bool
    log_report: bool

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...

    def start(self) -> Self: ...

    def end(self, status: RunStatus = "FINISHED") -> None: ...

    def set_tags(self, tags: Mapping[str, Any]) -> None: ...

    def log_config(
        self, config: Mapping[str, Any], artifact_file: str = CONFIG_ARTIFACT
    ) -> dict[str, str]: ...

    def log_epoch_history(
        self,
        history: Mapping[str, Iterable[Any]],
        step_offset: int = 0,
        *,
        timestamp_ms: int | None = None,
    ) -> int: ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> int: ...

    def log_text(self, text: str, artifact_file: str) -> None: ...

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None: ...

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None: ...

    def log_figure(
        self, figure: Any, artifact_file: str = "figure.png", dpi: int = 120, tight: bool = True
    ) -> None: ...

    def log_state_dict(self, state_dict: Mapping[str, Any], name: str = "model") -> str | None: ...

    def log_model(self, model: Any, x_example: Any) -> str | None: ...

    def log_dataset(
        self, name: str, source: Mapping[str, Any], splits: Mapping[str, tuple[Any, Any, str]]
    ) -> int: ...

    def log_child_runs(self, children: Iterable[Mapping[str, Any]]) -> list[str]: ...


#: What a tracker that logs nothing answers to the calls whose answer is not None.
_NULL_ANSWERS: dict[str, Callable[[], Any]] = {
    "log_config": dict,
    "log_epoch_history": int,
    "log_metrics": int,
    "log_dataset": int,
    "log_child_runs": list,
}


class NullTracker:
    """The tracker used when tracking is off: every ``Tracker`` method, doing nothing.

    The methods are made from the protocol (same signatures), so the interface is written once.
    """

    def __init__(
        self, *args: Any, log_weights: bool = False, log_report: bool = False, **kwargs: Any
    ) -> None:
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.tracking_uri: str | None = None
        self.artifact_uri: str | None = None
        self.status: str | None = None
        self.log_weights = log_weights
        self.log_report = log_report
        self.log_models = False
        self.log_datasets = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return False

    def start(self) -> Self:
        return self


def _does_nothing(name: str) -> Callable[..., Any]:
    answer = _NULL_ANSWERS.get(name)

    def method(self: NullTracker, *args: Any, **kwargs: Any) -> Any:
        return answer() if answer is not None else None

    method.__name__ = method.__qualname__ = name
    method.__doc__ = "Does nothing: tracking is off."
    method.__signature__ = inspect.signature(getattr(Tracker, name))  # type: ignore[attr-defined]
    return method


for _name, _value in vars(Tracker).items():
    if callable(_value) and not _name.startswith("_") and _name not in vars(NullTracker):
        setattr(NullTracker, _name, _does_nothing(_name))
