"""Stopping rules and bad input: clear errors, recorded stops, weights left at good values."""

import math

import pytest
import torch
from torch import nn

from lmbench.core import (
    InvalidInputError,
    LevenbergMarquardt,
    NonFiniteLossError,
    SeedDamping,
    StoppingRules,
)


def data(n=40):
    x = torch.randn(n, 2)
    return x, (x[:, :1] * x[:, 1:]).tanh()


def net():
    return nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1))


@pytest.mark.parametrize("which", ["x", "y"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_data_is_refused_with_location(which, bad):
    x, y = data()
    (x if which == "x" else y)[7, 0] = bad
    with pytest.raises(InvalidInputError, match=rf"{which} contains 1 non-finite .* row 7"):
        LevenbergMarquardt(net()).fit(x, y)


def test_mismatched_lengths_and_wrong_target_shape():
    x, y = data()
    with pytest.raises(InvalidInputError, match="same number of samples"):
        LevenbergMarquardt(net()).fit(x, y[:-1])
    with pytest.raises(InvalidInputError, match=r"model produces 1 output"):
        LevenbergMarquardt(net()).fit(x, torch.cat([y, y], dim=1))


def test_one_dimensional_target_for_single_output_is_accepted():
    x, y = data()
    history = LevenbergMarquardt(net(), stopping=StoppingRules(max_epochs=2)).fit(x, y[:, 0])
    assert history.epochs >= 1


def grid_net():
    """Two rows of three outputs per sample: outputs shaped (N, 2, 3)."""
    return nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 6), nn.Unflatten(1, (2, 3)))


@pytest.mark.parametrize("shape", [(40, 6), (40, 3, 2)])
def test_targets_of_the_same_size_but_another_shape_than_the_outputs_are_refused(shape):
    x, _ = data()
    y = torch.randn(*shape)

    def refusal(name, rows=40):
        return (rf"{name} has shape \({rows}, {', '.join(map(str, shape[1:]))}\) but the "
                rf"model's output for one sample has shape \(2, 3\): {name} must be "
                r"\(n_samples, 2, 3\)")

    with pytest.raises(InvalidInputError, match=refusal("y")):
        LevenbergMarquardt(grid_net()).fit(x, y)
    with pytest.raises(InvalidInputError, match=refusal("validation y")):
        LevenbergMarquardt(grid_net()).fit(x, torch.randn(40, 2, 3), val=(x, y))
    loader = [(x[:20], y[:20]), (x[20:], y[20:])]
    with pytest.raises(InvalidInputError, match=refusal("x_loader batch 0 y", rows=20)):
        LevenbergMarquardt(grid_net()).fit_loader(loader)


def test_targets_shaped_as_the_outputs_train_and_one_value_per_sample_broadcasts():
    x, _ = data()
    y = torch.randn(40, 2, 3)
    history = LevenbergMarquardt(grid_net(), stopping=StoppingRules(max_epochs=2)).fit(x, y)
    assert history.epochs == 2
    flat_output = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0))
    for target in (torch.randn(40), torch.randn(40, 1)):  # (N,) outputs: (N,) or (N, 1) targets
        history = LevenbergMarquardt(flat_output, stopping=StoppingRules(max_epochs=1)).fit(
            x, target)
        assert history.epochs == 1


def test_model_without_trainable_parameters():
    model = net()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(InvalidInputError, match="no trainable parameters"):
        LevenbergMarquardt(model)


class Explosive(nn.Module):
    """Finite near its start, non-finite once the weight grows past 2."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))

    def forward(self, x):
        w = self.w
        return x * w + torch.where(w > 2.0, torch.full_like(w, math.inf), torch.zeros_like(w))


def test_non_finite_trial_loss_is_rejected_and_weights_stay_good():
    x = torch.linspace(0, 1, 20, dtype=torch.float64).unsqueeze(1)
    y = 3.0 * x  # the optimum w = 3 lies where the loss is infinite
    model = Explosive()
    history = LevenbergMarquardt(
        model, damping=SeedDamping(mu_init=1e-6), stopping=StoppingRules(max_epochs=20,
                                                                         min_error=None)
    ).fit(x, y)
    assert model.w.item() <= 2.0
    assert all(math.isfinite(v) for v in history.loss)
    assert history.stop_reason in ("mu_max", "max_epochs")


def test_non_finite_initial_loss_raises():
    model = Explosive()
    with torch.no_grad():
        model.w.fill_(5.0)
    with pytest.raises(NonFiniteLossError, match="starting weights"):
        LevenbergMarquardt(model).fit(torch.ones(4, 1, dtype=torch.float64),
                                      torch.ones(4, 1, dtype=torch.float64))


def test_patience_restores_best_validation_weights():
    torch.manual_seed(1)
    x, y = data(30)
    xv, yv = data(30)
    yv = -yv  # validation disagrees with training: it worsens as training improves
    model = net()
    history = LevenbergMarquardt(
        model, stopping=StoppingRules(max_epochs=30, min_error=None, patience=3)
    ).fit(x, y, val=(xv, yv))
    assert history.stop_reason == "validation_patience"
    best = history.best_epoch
    assert history.val_loss[best] == min(history.val_loss)
    with torch.no_grad():
        restored_val = float(nn.MSELoss()(model(xv), yv))
    assert restored_val == pytest.approx(history.val_loss[best], rel=1e-5)


def test_min_gradient_and_mu_max_stops():
    x = torch.randn(50, 2, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    lin = nn.Linear(2, 1).double()
    history = LevenbergMarquardt(
        lin, stopping=StoppingRules(max_epochs=50, min_error=None, min_gradient=1e-9,
                                    ftol=0.0, xtol=0.0, gtol=0.0)  # the convergence tests off
    ).fit(x, y)
    assert history.stop_reason == "min_gradient"
    stuck = Explosive()  # at w = 2 every step toward the optimum w = 3 is non-finite
    with torch.no_grad():
        stuck.w.fill_(2.0)
    xs = torch.linspace(0, 1, 20, dtype=torch.float64).unsqueeze(1)
    history = LevenbergMarquardt(
        stuck, damping=SeedDamping(mu_init=1.0), inner_steps=3,
        stopping=StoppingRules(max_epochs=50, min_error=None, mu_max=1e6),
    ).fit(xs, 3.0 * xs)
    assert history.stop_reason == "mu_max"
    assert history.mu[-1] > 1e6 and not any(history.accepted)
    assert stuck.w.item() == 2.0


def test_keyboard_interrupt_keeps_last_accepted_weights():
    x, y = data()
    model = net()

    def interrupt(info):
        if info.epoch == 2:
            raise KeyboardInterrupt

    trainer = LevenbergMarquardt(model, stopping=StoppingRules(max_epochs=5, min_error=None),
                                 callbacks=[interrupt])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(x, y)
    assert trainer.history.stop_reason == "interrupted"
    with torch.no_grad():
        now = float(nn.MSELoss()(model(x), y))
    assert now == pytest.approx(trainer.history.loss[2], rel=1e-5)
