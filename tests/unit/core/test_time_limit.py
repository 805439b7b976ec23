"""``StoppingRules.time_limit_s``: a wall-clock limit that also cuts an epoch short, dropping it."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from lmbench.core import LevenbergMarquardt, StoppingRules, TrainerSettings
from lmbench.core.minibatch import MiniBatchLevenbergMarquardt
from lmbench.core.stopping import FitClock


def data(n=64):
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    return x, (x[:, :1] * x[:, 1:]).tanh()


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1))


def weights(model):
    return parameters_to_vector(model.parameters()).detach().clone()


@pytest.mark.parametrize("engine", ["in_memory", "streaming", "matrix_free"])
def test_a_limit_shorter_than_an_epoch_stops_inside_it_and_keeps_the_start(engine):
    """The limit has passed by the first chunk of epoch 1: that epoch is dropped, the weights
    are the initial ones, and the history holds epoch 0 only."""
    x, y = data()
    model = net()
    start = weights(model)
    history = TrainerSettings(engine=engine, time_limit_s=1e-9, min_error=None, max_epochs=50,
                              batch_size=16).fit(model, x, y)
    assert history.stop_reason == "time_limit"
    assert history.epochs == 0 and len(history.loss) == 1
    assert torch.equal(weights(model), start)


def test_an_epoch_cut_between_batches_returns_to_where_the_last_one_ended(monkeypatch):
    """Mini-batch LM moves the weights at every batch: when the limit passes after epoch 2's
    first step, the weights go back to epoch 1's, which the history ends with."""
    x, y = data()
    model = net()
    after_epoch: dict[int, torch.Tensor] = {}

    def remember(info):
        after_epoch[info.epoch] = weights(info.model)

    def expired(self):  # the limit passes once epoch 2 has moved the weights
        return 1 in after_epoch and not torch.equal(weights(model), after_epoch[1])

    monkeypatch.setattr(FitClock, "expired", expired)
    trainer = MiniBatchLevenbergMarquardt(
        model, batch_size=16, stopping=StoppingRules(max_epochs=10, min_error=None,
                                                     time_limit_s=60.0), callbacks=[remember])
    history = trainer.fit(x, y)
    assert history.stop_reason == "time_limit"
    assert history.epochs == 1 and sorted(after_epoch) == [0, 1]
    assert torch.equal(weights(model), after_epoch[1])


def test_the_limit_is_checked_between_damping_trials(monkeypatch):
    """A system is built, then the limit passes: no trial is solved after it."""
    x, y = data()
    solves = []
    trainer = LevenbergMarquardt(net(), stopping=StoppingRules(max_epochs=5, min_error=None,
                                                               time_limit_s=60.0))
    original = trainer._assemble

    def assemble_then_expire(*args, **kwargs):
        system = original(*args, **kwargs)
        monkeypatch.setattr(FitClock, "expired", lambda self: True)
        solve = system.solve
        system.solve = lambda *a, **k: solves.append(1) or solve(*a, **k)
        return system

    monkeypatch.setattr(trainer, "_assemble", assemble_then_expire)
    history = trainer.fit(x, y)
    assert history.stop_reason == "time_limit" and history.epochs == 0 and solves == []


def test_a_fit_that_ends_in_time_is_untouched():
    x, y = data()
    limited, free = net(), net()
    settings = TrainerSettings(min_error=None, max_epochs=4)
    a = settings.with_(time_limit_s=3600.0).fit(limited, x, y)
    b = settings.fit(free, x, y)
    assert a.stop_reason == b.stop_reason and a.loss == b.loss
    assert torch.equal(weights(limited), weights(free))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_a_limit_must_be_positive(bad):
    with pytest.raises(ValueError, match="time_limit_s must be > 0 seconds"):
        StoppingRules(time_limit_s=bad)
