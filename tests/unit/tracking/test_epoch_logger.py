"""EpochLogger: per-epoch series sent while training, in flushes; salvage on interruption."""

from __future__ import annotations

import torch

from lmbench.core import EpochInfo, TrainingHistory
from lmbench.harness.epoch_log import EpochLogger, salvage
from lmbench.tracking import NullTracker


class _Recorder(NullTracker):
    def __init__(self) -> None:
        super().__init__(log_weights=True)
        self.calls: list[tuple[dict, int]] = []
        self.weights: list[str] = []
        self.tags: dict = {}
        self.fail = False

    def log_epoch_history(self, history, step_offset=0, *, timestamp_ms=None):
        if self.fail:
            raise ConnectionError("store away")
        self.calls.append(({k: list(v) for k, v in history.items()}, step_offset))
        return sum(len(v) for v in history.values())

    def log_state_dict(self, state_dict, name="model"):
        self.weights.append(name)
        return name

    def set_tags(self, tags):
        self.tags.update(tags)


def _epochs(logger: EpochLogger, history: TrainingHistory, model, n: int) -> None:
    for _ in range(n):
        history.record(loss=float(len(history.loss)), mu=1.0)
        logger.on_epoch_end(EpochInfo(len(history.loss) - 1, model, history))


def _series(history: TrainingHistory) -> dict[str, list[float]]:
    return {"train_loss": history.loss}


def test_epochs_are_sent_every_n_epochs_with_their_steps() -> None:
    tracker, now = _Recorder(), [0.0]
    logger = EpochLogger(tracker, _series, every_epochs=4, every_seconds=1e9, clock=lambda: now[0])
    history, model = TrainingHistory(), torch.nn.Linear(1, 1)
    _epochs(logger, history, model, 10)
    assert [(c[0]["train_loss"], c[1]) for c in tracker.calls] == [
        ([0.0, 1.0, 2.0, 3.0], 0), ([4.0, 5.0, 6.0, 7.0], 4)
    ]
    logger.flush()
    assert tracker.calls[-1] == ({"train_loss": [8.0, 9.0]}, 8)
    assert logger.flush() == 0


def test_epochs_are_sent_after_t_seconds_and_kept_through_a_store_error() -> None:
    tracker, now = _Recorder(), [0.0]
    logger = EpochLogger(tracker, _series, every_epochs=1000, every_seconds=5, clock=lambda: now[0])
    history, model = TrainingHistory(), torch.nn.Linear(1, 1)
    _epochs(logger, history, model, 3)
    assert tracker.calls == []
    now[0] = 6.0
    tracker.fail = True
    _epochs(logger, history, model, 1)  # the store is away: no error, epochs kept
    tracker.fail = False
    now[0] = 12.0
    _epochs(logger, history, model, 1)
    assert tracker.calls == [({"train_loss": [0.0, 1.0, 2.0, 3.0, 4.0]}, 0)]


def test_salvage_logs_pending_epochs_weights_and_the_stop_reason() -> None:
    tracker = _Recorder()
    logger = EpochLogger(tracker, _series, every_epochs=1000, every_seconds=1e9)
    history, model = TrainingHistory(), torch.nn.Linear(1, 1)
    _epochs(logger, history, model, 3)
    salvage(tracker, logger, model, KeyboardInterrupt())
    assert tracker.calls == [({"train_loss": [0.0, 1.0, 2.0]}, 0)]
    assert tracker.weights == ["model"] and tracker.tags == {"stop_reason": "interrupted"}
    salvage(tracker, EpochLogger(tracker, _series), model, ValueError())  # nothing trained
    assert tracker.weights == ["model"]


def test_a_retried_flush_stores_no_epoch_twice_in_a_real_store(tmp_path) -> None:
    """A flush that fails after the store kept part of its chunk is retried with the same
    timestamp; MLflow stores identical metrics once, so the history has each epoch once."""
    from mlflow.tracking import MlflowClient

    from lmbench.tracking import RunTracker

    class _FailsAfterWriting(RunTracker):
        fail_next = False

        def log_epoch_history(self, history, step_offset=0, *, timestamp_ms=None):
            sent = super().log_epoch_history(history, step_offset, timestamp_ms=timestamp_ms)
            if self.fail_next:  # the values are stored, then the call reports a failure
                self.fail_next = False
                raise ConnectionError("store away after writing")
            return sent

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with _FailsAfterWriting("retry", tracking_uri=uri, experiment_name="retry") as tracker:
        logger = EpochLogger(tracker, _series, every_epochs=3, every_seconds=1e9)
        history, model = TrainingHistory(), torch.nn.Linear(1, 1)
        tracker.fail_next = True
        _epochs(logger, history, model, 3)  # first flush: stored, then "failed"
        _epochs(logger, history, model, 3)  # retried together with the next epochs
        logger.flush()
        run_id = tracker.run_id
    steps = [m.step for m in MlflowClient(uri).get_metric_history(run_id, "train_loss")]
    assert sorted(steps) == list(range(6))
