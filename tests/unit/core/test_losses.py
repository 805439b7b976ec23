"""Generalised Gauss-Newton losses against independent references: autograd Hessians, Newton
steps, scikit-learn's logistic regression, and the loss recomputed outside the engine."""

import dataclasses
import pickle
import typing
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from torch import nn

import lmbench
from lmbench.core import LevenbergMarquardt, StoppingRules, TrainerSettings
from lmbench.core.errors import InvalidInputError
from lmbench.core.gram import symmetrize_upper
from lmbench.core.jacobian import ResidualFunction
from lmbench.core.losses import (
    LOSS_NAMES,
    LOSS_TYPES,
    BinaryCrossEntropy,
    CrossEntropy,
    Huber,
    Loss,
    LossName,
    MeanSquaredError,
    as_loss,
    loss_from_module,
    takes_logits,
)
from lmbench.core.params import FlatParameters
from lmbench.core.system import SystemAccumulator

N, D, K = 60, 3, 4


def classification(n=N, d=D, k=K, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    logits = x @ torch.randn(d, k, generator=gen, dtype=torch.float64)
    noisy = logits + 1.5 * torch.randn(n, k, generator=gen, dtype=torch.float64)
    return x, noisy.argmax(dim=1)


def linear(k):
    torch.manual_seed(1)
    return nn.Linear(D, k).double()


def ggn(model, loss, x, y):
    """(J^T H J, J^T g) assembled by the engine's own accumulator."""
    flat = FlatParameters(model)
    jac, out = ResidualFunction(flat, out_dim(model)).jacobian(flat.vector(), x)
    rows, res = loss.gauss_newton_rows(jac, out, loss.targets(y, out_dim(model)), torch.float64)
    acc = SystemAccumulator(flat.count, "primal", torch.float64, torch.device("cpu"))
    acc.add(rows, res)
    system = acc.finish()
    return symmetrize_upper(system.gram), system.gradient, system


def out_dim(model):
    return model.out_features


@pytest.mark.parametrize("name", ["cross_entropy", "bce"])
def test_ggn_of_a_linear_model_is_the_exact_hessian(name):
    x, labels = classification()
    k = K if name == "cross_entropy" else 1
    y = labels if name == "cross_entropy" else (labels == 0).double()
    model = linear(k)
    loss = Loss(name)
    gram, gradient, _ = ggn(model, loss, x, y)

    names = [n for n, _ in model.named_parameters()]

    def total(*values):
        out = torch.func.functional_call(model, dict(zip(names, values, strict=True)), (x,))
        if name == "cross_entropy":
            return F.cross_entropy(out, y, reduction="sum")
        return F.binary_cross_entropy_with_logits(out[:, 0], y, reduction="sum")

    params = tuple(p.detach().clone() for p in model.parameters())
    hess = torch.autograd.functional.hessian(total, params)
    sizes = [p.numel() for p in params]
    exact = torch.cat([
        torch.cat([hess[i][j].reshape(sizes[i], sizes[j]) for j in range(len(params))], dim=1)
        for i in range(len(params))
    ])
    grads = torch.autograd.grad(total(*(p.requires_grad_(True) for p in params)), params)
    # the mean loss's Hessian is this one divided by N: same matrix up to that scale
    torch.testing.assert_close(gram, exact, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gradient, torch.cat([g.reshape(-1) for g in grads]),
                               rtol=1e-10, atol=1e-12)


class PinnedLastLogit(nn.Module):
    """Multinomial logistic regression with the last logit fixed at 0: a strictly convex loss
    (a free last logit would make H singular, since softmax ignores a shared shift)."""

    def __init__(self, k):
        super().__init__()
        self.linear = nn.Linear(D, k - 1)

    def forward(self, x):
        return torch.cat([self.linear(x), torch.zeros(x.shape[0], 1, dtype=x.dtype)], dim=1)


@pytest.mark.parametrize("name", ["cross_entropy", "bce"])
def test_lm_step_with_vanishing_mu_is_the_newton_step(name):
    x, labels = classification()
    torch.manual_seed(1)
    model = (PinnedLastLogit(K) if name == "cross_entropy" else nn.Linear(D, 1)).double()
    y = labels if name == "cross_entropy" else (labels == 0).double()
    n_out = K if name == "cross_entropy" else 1
    flat = FlatParameters(model)
    jac, out = ResidualFunction(flat, n_out).jacobian(flat.vector(), x)
    loss = Loss(name)
    rows, res = loss.gauss_newton_rows(jac, out, loss.targets(y, n_out), torch.float64)
    acc = SystemAccumulator(flat.count, "primal", torch.float64, torch.device("cpu"))
    acc.add(rows, res)
    step = acc.finish().solve(1e-12, False)
    # Newton's step from autograd alone: -H^-1 dE/dtheta of the summed loss
    theta = flat.vector()

    def total(vector):
        logits = torch.func.functional_call(model, flat.as_dict(vector), (x,))
        if name == "cross_entropy":
            return F.cross_entropy(logits, y, reduction="sum")
        return F.binary_cross_entropy_with_logits(logits[:, 0], y, reduction="sum")

    hessian = torch.autograd.functional.hessian(total, theta)
    gradient = torch.func.grad(total)(theta)
    newton = -torch.linalg.solve(hessian, gradient)
    torch.testing.assert_close(step.delta, newton, rtol=1e-7, atol=1e-9)


def test_multinomial_logistic_regression_matches_scikit_learn():
    x, labels = classification(n=300, seed=3)
    reference = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-12).fit(x.numpy(),
                                                                            labels.numpy())
    expected = log_loss(labels.numpy(), reference.predict_proba(x.numpy()))
    model = linear(K)
    loss, _, _, _ = lmbench.train_levenberg(model, x, labels, nn.CrossEntropyLoss(),
                                            min_error=0.0, max_epochs=60)
    assert loss[-1] == pytest.approx(expected, rel=1e-4)
    with torch.no_grad():
        assert float(F.cross_entropy(model(x), labels)) == pytest.approx(expected, rel=1e-4)


def test_binary_logistic_regression_matches_scikit_learn():
    x, labels = classification(n=300, seed=4)
    y = (labels == 0).double()
    reference = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-12).fit(x.numpy(), y.numpy())
    expected = log_loss(y.numpy(), reference.predict_proba(x.numpy())[:, 1])
    loss, _, _, _ = lmbench.train_levenberg(linear(1), x, y.unsqueeze(1), nn.BCEWithLogitsLoss(),
                                            min_error=0.0, max_epochs=60)
    assert loss[-1] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_rows_reproduce_the_gradient_of_the_objective(name):
    """J^^T r^ = J^T g = dE/dtheta, with E recomputed by autograd from the loss's objective."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(D, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x, labels = classification(k=3)
    loss = Loss(name, huber_delta=0.3)
    y = labels if "entropy" in name else torch.randn(N, 3, dtype=torch.float64)
    if name == "bce":
        y = (torch.rand(N, 3, dtype=torch.float64) > 0.5).double()
    flat = FlatParameters(model)
    jac, out = ResidualFunction(flat, 3).jacobian(flat.vector(), x)
    targets = loss.targets(y, 3)
    rows, res = loss.gauss_newton_rows(jac, out, targets, torch.float64)
    theta = flat.vector().requires_grad_(True)
    value = loss.objective_tensor(torch.func.functional_call(model, flat.as_dict(theta), (x,)),
                                  targets)
    (expected,) = torch.autograd.grad(value, theta)
    torch.testing.assert_close(rows.T @ res, expected, rtol=1e-9, atol=1e-11)
    assert float(value.detach()) == pytest.approx(loss.objective(out, targets), rel=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_engines_and_forms_agree_for_every_loss(tmp_path, name):
    x, labels = classification(n=90, k=3, seed=5)
    y = labels if "entropy" in name else torch.randn(90, 3, dtype=torch.float64)
    if name == "bce":
        y = (torch.rand(90, 3, dtype=torch.float64) > 0.5).double()
    base = TrainerSettings(loss=name, huber_delta=0.5, max_epochs=4, min_error=None,
                           system_dtype="float64", batch_size=32, chunk_rows=32,
                           temp_folder=str(tmp_path))
    histories = {}
    for label, settings in {
        "primal": base.with_(form="primal"),
        "dual": base.with_(form="dual"),
        "streaming": base.with_(engine="streaming"),
        "cache": base.with_(engine="cache", cg_max_iter=2000),
    }.items():
        torch.manual_seed(7)
        model = nn.Sequential(nn.Linear(D, 6), nn.Tanh(), nn.Linear(6, 3)).double()
        histories[label] = settings.fit(model, x, y)
    reference = histories["primal"].loss
    assert reference[-1] < reference[0]
    for label, history in histories.items():
        assert history.loss == pytest.approx(reference, rel=1e-5), label


def test_mlp_cross_entropy_on_iris_reports_the_true_loss_and_never_increases():
    data = load_iris()
    x = torch.tensor((data.data - data.data.mean(0)) / data.data.std(0), dtype=torch.float32)
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    trainer = LevenbergMarquardt(model, loss="cross_entropy",
                                 stopping=StoppingRules(max_epochs=25, min_error=None))
    history = trainer.fit(x, y)
    with torch.no_grad():
        assert history.loss[-1] == pytest.approx(float(F.cross_entropy(model(x), y)), rel=1e-5)
    for before, after, accepted in zip(history.loss[:-1], history.loss[1:], history.accepted[1:],
                                       strict=True):
        if accepted:
            assert after <= before
    assert history.loss[-1] < 0.5 * history.loss[0]


def test_seed_api_maps_loss_modules_and_honours_reduction():
    x, labels = classification(n=80, k=3)
    torch.manual_seed(0)
    model = nn.Linear(D, 3).double()
    loss, _, _, _ = lmbench.train_levenberg(model, x, labels, nn.CrossEntropyLoss(reduction="sum"),
                                            min_error=0.0, max_epochs=3)
    with torch.no_grad():
        assert loss[-1] == pytest.approx(float(F.cross_entropy(model(x), labels,
                                                               reduction="sum")))
    huber, _, _, _ = lmbench.train_levenberg(nn.Linear(D, 1).double(), x, x[:, :1] * 3,
                                             nn.HuberLoss(delta=0.2), min_error=0.0, max_epochs=3)
    assert huber[-1] < huber[0]
    with pytest.raises(ValueError, match="reduction='none'"):
        lmbench.train_levenberg(model, x, labels, nn.CrossEntropyLoss(reduction="none"))
    with pytest.raises(ValueError, match="L1Loss is none of them"):
        lmbench.train_levenberg(model, x, labels.double(), nn.L1Loss())
    with pytest.raises(ValueError, match="label_smoothing"):
        lmbench.train_levenberg(model, x, labels, nn.CrossEntropyLoss(label_smoothing=0.1))


def test_an_accepted_epoch_never_raises_the_cross_entropy_through_the_seed_api():
    x, labels = classification(n=120, k=3, seed=9)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(D, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    loss, _, mu, _ = lmbench.train_levenberg(model, x, labels, nn.CrossEntropyLoss(),
                                             min_error=0.0, max_epochs=15)
    assert all(after <= before for before, after in zip(loss, loss[1:], strict=False))
    assert loss[-1] < loss[0]


@pytest.mark.parametrize("layer", [nn.BatchNorm1d(6), nn.Dropout(0.2)])
def test_training_mode_batchnorm_or_dropout_gets_a_clear_error(layer):
    model = nn.Sequential(nn.Linear(D, 6), layer, nn.Tanh(), nn.Linear(6, 1)).double()
    x = torch.randn(20, D, dtype=torch.float64)
    with pytest.raises(InvalidInputError, match=r"model\.eval\(\)"):
        LevenbergMarquardt(model).fit(x, x[:, :1])
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = LevenbergMarquardt(model, stopping=StoppingRules(max_epochs=2)).fit(
            x, x[:, :1])
    assert history.epochs >= 1


def test_bfloat16_model_trains_with_a_float32_system():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = torch.sin(3 * x)
    model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1)).to(torch.bfloat16)
    trainer = LevenbergMarquardt(model, stopping=StoppingRules(max_epochs=5, min_error=None))
    assert trainer.system_dtype == torch.float32
    history = trainer.fit(x, y)
    assert next(model.parameters()).dtype == torch.bfloat16
    assert history.loss[-1] < history.loss[0]


# ---------------------------------------------------------------- one class per loss, a registry
def test_every_loss_name_is_one_registered_class():
    assert set(typing.get_args(LossName)) == set(LOSS_NAMES) == set(LOSS_TYPES)
    assert LOSS_NAMES == ("mse", "cross_entropy", "bce", "huber", "sqrt_cross_entropy")
    for name, kind in LOSS_TYPES.items():
        loss = as_loss(name, huber_delta=0.5)
        assert type(loss) is kind and type(Loss(name)) is kind and loss.name == name
        assert loss == kind(huber_delta=0.5) and loss != Loss("mse" if name != "mse" else "bce")
        assert repr(loss) == f"Loss(name={name!r}, huber_delta=0.5)"
        assert pickle.loads(pickle.dumps(loss)) == loss
        assert loss.is_classification == loss.takes_logits == takes_logits(name)
    assert Loss() == as_loss(None) == MeanSquaredError()
    assert {n for n in LOSS_NAMES if takes_logits(n)} == {"cross_entropy", "sqrt_cross_entropy",
                                                           "bce"}
    assert not takes_logits("auto") and not takes_logits("hinge")


def test_bad_names_and_deltas_keep_their_errors():
    with pytest.raises(ValueError, match=r"loss must be one of \('mse', 'cross_entropy', 'bce'"):
        as_loss("hinge")
    with pytest.raises(ValueError, match="huber_delta must be > 0, got 0"):
        Loss("mse", huber_delta=0)
    with pytest.raises(ValueError, match="Huber is the loss 'huber', not 'mse'"):
        Huber("mse")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Loss("huber").huber_delta = 2.0  # type: ignore[misc]


def test_loss_modules_map_to_their_classes():
    assert type(loss_from_module(nn.MSELoss())) is MeanSquaredError
    assert type(loss_from_module(nn.CrossEntropyLoss())) is CrossEntropy
    assert type(loss_from_module(nn.BCEWithLogitsLoss())) is BinaryCrossEntropy
    assert loss_from_module(nn.HuberLoss(delta=0.25)) == Huber(huber_delta=0.25)
    with pytest.raises(ValueError, match="LM minimises MSELoss, CrossEntropyLoss, "
                                         "BCEWithLogitsLoss or HuberLoss exactly"):
        loss_from_module(nn.L1Loss())


def test_probabilities_and_factor_follow_the_loss():
    z = torch.tensor([[0.5, -1.0, 2.0]])
    torch.testing.assert_close(Loss("cross_entropy").probabilities(z), torch.softmax(z, dim=-1))
    torch.testing.assert_close(Loss("bce").probabilities(z), torch.sigmoid(z))
    assert Loss("mse").probabilities(z) is z and Loss("huber").probabilities(z) is z
    assert {n: Loss(n).factor for n in LOSS_NAMES} == {
        "mse": "identity", "cross_entropy": "dense", "bce": "diagonal", "huber": "diagonal",
        "sqrt_cross_entropy": "dense"}


def test_a_new_loss_is_one_class():
    class Cauchy(Loss):  # a new loss: one subclass with a name is all the registry needs
        name = "cauchy_test"
        label = "Cauchy loss"
        factor = "diagonal"

        def objective_tensor(self, out, y):
            return 0.5 * torch.log1p((out - y).to(torch.float64).pow(2)).sum()

        def report(self, out, y):
            return 0.5 * torch.log1p((out - y).pow(2)).mean()

        def gauss_newton_rows(self, jac, out, y, dtype):
            r = (out - y).to(dtype)
            root = (1 + r.pow(2)).rsqrt()
            m, o = r.shape
            return (jac.to(dtype).reshape(m, o, -1) * root.unsqueeze(2)).reshape(m * o, -1), (
                root * r).reshape(-1)

    try:
        loss = as_loss("cauchy_test")
        assert type(loss) is Cauchy and not takes_logits("cauchy_test")
        x = torch.linspace(-1, 1, 40, dtype=torch.float64).unsqueeze(1)
        y = 2 * x + 0.1 * torch.sin(7 * x)
        torch.manual_seed(0)
        model = nn.Linear(1, 1).double()
        history = LevenbergMarquardt(model, loss=loss,
                                     stopping=StoppingRules(max_epochs=5, min_error=None)).fit(x, y)
        assert history.loss[-1] < history.loss[0]
        with pytest.raises(ValueError, match="already registered"):
            type("Again", (Loss,), {"name": "cauchy_test"})
    finally:
        LOSS_TYPES.pop("cauchy_test", None)
    assert "cauchy_test" not in LOSS_TYPES
