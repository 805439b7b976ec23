"""Per-epoch series logged while an LM run trains, and what an interrupted run keeps.

``EpochLogger`` is an engine callback: it sends the epochs not yet logged to the tracker's
batched per-epoch logging every ``every_epochs`` epochs or ``every_seconds`` seconds (one
``log_batch`` round per flush, so the store is not written every epoch). ``salvage`` is what
the runner calls when training stops on an interruption or an error: the epochs so far, the
last accepted weights and the history file, so a KILLED run still holds what it trained.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from lmbench.core import EpochInfo, TrainingHistory
from lmbench.harness.signals import raise_if_stop_requested
from lmbench.tracking import Tracker, redact_text, schema

#: Defaults: flush after this many new epochs, or this many seconds since the last flush.
FLUSH_EVERY_EPOCHS = 100
FLUSH_EVERY_SECONDS = 10.0
#: The seed's history dict, logged with every LM run (and with an interrupted one).
HISTORY_ARTIFACT = "history_seed.json"

SeriesOf = Callable[[TrainingHistory], Mapping[str, Sequence[Any]]]
_log = logging.getLogger(__name__)


class EpochLogger:
    """Engine callback feeding ``tracker.log_epoch_history`` in flushes (step = epoch)."""

    def __init__(
        self,
        tracker: Tracker,
        series_of: SeriesOf,
        *,
        every_epochs: int = FLUSH_EVERY_EPOCHS,
        every_seconds: float = FLUSH_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every_epochs < 1 or every_seconds < 0:
            raise ValueError("every_epochs must be >= 1 and every_seconds >= 0")
        self.tracker = tracker
        self.series_of = series_of
        self.every_epochs = every_epochs
        self.every_seconds = every_seconds
        self.clock = clock
        self.history: TrainingHistory | None = None
        self.model: nn.Module | None = None
        #: Entries (index 0 = the initial state) already in the store.
        self.logged = 0
        self._last_flush = clock()
        self._warned = False
        self._retry_timestamp: int | None = None

    def on_epoch_end(self, info: EpochInfo) -> None:
        raise_if_stop_requested()  # a stop signal that landed where it was dropped
        self.history, self.model = info.history, info.model
        pending = len(info.history.loss) - self.logged
        if pending >= self.every_epochs or (
            pending > 0 and self.clock() - self._last_flush >= self.every_seconds
        ):
            self.flush(strict=False)

    def flush(self, *, strict: bool = True) -> int:
        """Log the epochs not yet logged; returns how many values were sent. With
        ``strict=False`` (during training) a store error is a warning and the epochs are
        retried at the next flush, so a store hiccup does not stop training."""
        history = self.history
        if history is None:
            return 0
        end = len(history.loss)
        if end <= self.logged:
            return 0
        chunk = {
            name: list(values)[self.logged : end]
            for name, values in self.series_of(history).items()
        }
        # A failed call may have stored part of the chunk; its retry reuses the timestamp, so the
        # values already stored are the same metrics and are not stored twice.
        if self._retry_timestamp is None:
            self._retry_timestamp = int(time.time() * 1000)
        try:
            sent = self.tracker.log_epoch_history(
                chunk, step_offset=self.logged, timestamp_ms=self._retry_timestamp
            )
        except Exception as exc:
            if strict:
                raise
            if not self._warned:
                _log.warning("could not log epochs %d-%d yet (retried later): %s",
                             self.logged, end - 1, redact_text(str(exc)))
                self._warned = True
            return 0
        finally:
            self._last_flush = self.clock()
        self.logged = end
        self._retry_timestamp = None
        return sent


def salvage(tracker: Tracker, logger: EpochLogger, model: nn.Module,
            exc: BaseException) -> None:
    """Keep what an interrupted or failed run trained: the epochs not yet logged, the model's
    weights (the last accepted step: the engine never leaves a rejected trial in the model),
    the seed history file and the stop reason. Every step is tried; none hides ``exc``."""
    history = logger.history
    if history is None:  # stopped before the first epoch: nothing trained
        return
    reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("epochs", logger.flush),
        ("stop reason", lambda: tracker.set_tags({schema.TAG_STOP_REASON: reason})),
        ("weights", lambda: tracker.log_state_dict(model.state_dict(), "model")),
        ("history", lambda: tracker.log_dict(history.to_seed_dict(), HISTORY_ARTIFACT)),
    ]
    for what, step in steps:
        try:
            step()
        except Exception as log_exc:
            _log.warning("could not log the %s of the %s run: %s", what, reason,
                         redact_text(str(log_exc)))


def log_training_report(tracker: Tracker, seed: Mapping[str, Sequence[float]],
                        evidence: Mapping[str, Any] | None = None) -> None:
    """The seed's four-panel training report (PNG) and its history dict, for one LM run;
    ``evidence`` (gamma, alpha, beta, n_params of a Bayesian run) adds the gamma-against-P row.

    The figure fills its fixed grid, so it is saved without the tight-bbox pre-draw, and
    cleared afterwards so that a long sweep does not keep every job's figure alive.
    """
    from lmbench.plotting import plot_train_report

    figure = plot_train_report({**seed, **(evidence or {})})
    tracker.log_figure(figure, schema.TRAINING_REPORT_ARTIFACT, dpi=100, tight=False)
    figure.clear()
    tracker.log_dict(dict(seed), HISTORY_ARTIFACT)
