"""Weight decay and Bayesian regularisation against independent references.

Ridge, BayesianRidge and LogisticRegression (scikit-learn) solve the same penalised problems in
closed form or by their own solvers; every engine and form must take the same penalised step.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.linear_model import BayesianRidge, LogisticRegression, Ridge
from torch import nn

from lmbench.compat import train_levenberg
from lmbench.core import TrainerSettings
from lmbench.core.minibatch import MiniBatchLevenbergMarquardt
from lmbench.core.regularization import Regularization, RegularizationState, weight_energy

F64 = torch.float64


def linear_problem(n=40, p=5, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=F64)
    w = torch.randn(p, 1, generator=g, dtype=F64)
    return x, x @ w + noise * torch.randn(n, 1, generator=g, dtype=F64)


def linear(p, outputs=1):
    torch.manual_seed(1)
    return nn.Linear(p, outputs, bias=False).double()


def mlp(p=3, hidden=8, seed=2):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(p, hidden), nn.Tanh(), nn.Linear(hidden, 1)).double()


@pytest.mark.parametrize("form", ["primal", "dual"])
@pytest.mark.parametrize("damping", ["seed", "marquardt"])
def test_weight_decay_lm_equals_ridge(form, damping):
    x, y = linear_problem()
    ridge = Ridge(alpha=2.5, fit_intercept=False).fit(x.numpy(), y.numpy().ravel())
    model = linear(x.shape[1])
    history = TrainerSettings(form=form, damping=damping, weight_decay=2.5, mu_init=1e-3,
                              max_epochs=25, min_error=None).fit(model, x, y)
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), ridge.coef_, atol=1e-8)
    # the history keeps the data objective and the penalised one side by side
    e_w = 0.5 * float((model.weight.detach() ** 2).sum())
    assert history.penalised_objective[-1] == pytest.approx(history.objective[-1] + 2.5 * e_w)
    assert history.weight_decay[-1] == 2.5 and math.isnan(history.gamma[-1])


@pytest.mark.parametrize("form", ["primal", "dual"])
def test_bayesian_lm_matches_bayesian_ridge(form):
    x, y = linear_problem()
    reference = BayesianRidge(fit_intercept=False, alpha_1=1e-12, alpha_2=1e-12, lambda_1=1e-12,
                              lambda_2=1e-12, tol=1e-14, max_iter=10_000)
    reference.fit(x.numpy(), y.numpy().ravel())
    model = linear(x.shape[1])
    history = TrainerSettings(form=form, regularization="bayesian", mu_init=1e-3,
                              max_epochs=60, min_error=None).fit(model, x, y)
    # sklearn's lambda_ is the weights' precision (alpha here), alpha_ the noise's (beta here)
    assert history.alpha[-1] == pytest.approx(reference.lambda_, rel=1e-4)
    assert history.beta[-1] == pytest.approx(reference.alpha_, rel=1e-4)
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), reference.coef_, atol=1e-6)
    assert 0 < history.gamma[-1] < x.shape[1]


def test_bayesian_streaming_engine_matches_in_memory():
    x, y = linear_problem()
    runs = []
    for engine in ("in_memory", "streaming"):
        model = linear(x.shape[1])
        runs.append(TrainerSettings(engine=engine, form="primal", regularization="bayesian",
                                    batch_size=16, max_epochs=8, min_error=None).fit(model, x, y))
    assert runs[1].alpha == pytest.approx(runs[0].alpha, rel=1e-9)
    assert runs[1].gamma[1:] == pytest.approx(runs[0].gamma[1:], rel=1e-9)


@pytest.mark.parametrize("loss", ["bce", "cross_entropy"])
def test_weight_decay_logistic_regression_matches_sklearn(loss):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(80, 4, generator=g, dtype=F64)
    classes = 2 if loss == "bce" else 3
    labels = (x @ torch.randn(4, classes, generator=g, dtype=F64)
              + 0.8 * torch.randn(80, classes, generator=g, dtype=F64)).argmax(1)
    c = 0.7
    reference = LogisticRegression(C=c, fit_intercept=False, tol=1e-12, max_iter=10_000)
    reference.fit(x.numpy(), labels.numpy())
    outputs = 1 if loss == "bce" else classes
    y = labels.double().unsqueeze(1) if loss == "bce" else torch.eye(classes, dtype=F64)[labels]
    model = linear(4, outputs)
    TrainerSettings(loss=loss, weight_decay=1 / c, mu_init=1e-3, max_epochs=40,
                    min_error=None).fit(model, x, y)
    lm_w = model.weight.detach().numpy()
    sk_w = reference.coef_
    np.testing.assert_allclose(lm_w, sk_w, atol=1e-6)
    # the same log-loss on the training rows
    with torch.no_grad():
        logits = model(x)
    lm_proba = (torch.sigmoid(logits).numpy().ravel() if loss == "bce"
                else torch.softmax(logits, 1).numpy())
    sk_proba = reference.predict_proba(x.numpy())
    sk_proba = sk_proba[:, 1] if loss == "bce" else sk_proba
    np.testing.assert_allclose(lm_proba, sk_proba, atol=1e-7)


ENGINES = [
    {"engine": "in_memory", "form": "primal"},
    {"engine": "in_memory", "form": "dual"},
    {"engine": "streaming"},
    {"engine": "cache"},
    {"engine": "matrix_free"},
]


@pytest.mark.parametrize("damping", ["seed", "marquardt"])
def test_every_engine_takes_the_same_penalised_step(tmp_path, damping):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(30, 3, generator=g, dtype=F64)
    y = torch.sin(2 * x[:, :1]) + 0.1 * torch.randn(30, 1, generator=g, dtype=F64)
    weights = []
    for options in ENGINES:
        model = mlp()
        settings = TrainerSettings(damping=damping, weight_decay=0.3, mu_init=0.1, max_epochs=2,
                                   min_error=None, temp_folder=str(tmp_path), batch_size=7,
                                   cg_max_iter=400, **options)
        history = settings.fit(model, x, y)
        assert all(history.accepted[1:]), options
        weights.append(torch.cat([p.detach().ravel() for p in model.parameters()]))
    for options, w in zip(ENGINES[1:], weights[1:], strict=True):
        torch.testing.assert_close(w, weights[0], rtol=1e-6, atol=1e-9, msg=str(options))


def test_dual_penalised_step_equals_the_primal_normal_equations():
    """M < P: the Woodbury step against (J^T J + lambda I + mu D) delta = -(J^T r + lambda w)."""
    from lmbench.core.system import SystemAccumulator

    g = torch.Generator().manual_seed(6)
    jac = torch.randn(4, 9, generator=g, dtype=F64)
    res = torch.randn(4, generator=g, dtype=F64)
    w = torch.randn(9, generator=g, dtype=F64)
    lam, mu = 0.7, 0.05
    for by_diagonal in (False, True):
        acc = SystemAccumulator(9, "dual", F64, torch.device("cpu"))
        acc.add(jac, res)
        system = acc.finish().penalised(lam, w)
        d = system.scaling(by_diagonal)
        a = jac.T @ jac + lam * torch.eye(9, dtype=F64) + mu * torch.diag(d)
        expected = torch.linalg.solve(a, -(jac.T @ res + lam * w))
        step = system.solve(mu, by_diagonal)
        torch.testing.assert_close(step.delta, expected, rtol=1e-10, atol=1e-12)


def test_minibatch_steps_share_the_penalty_by_batch_rows():
    x, y = linear_problem(n=40)
    model = linear(x.shape[1])
    trainer = MiniBatchLevenbergMarquardt(model, batch_size=20, shuffle=False,
                                          regularization=Regularization(weight_decay=4.0))
    trainer.stopping = TrainerSettings(max_epochs=1, min_error=None).stopping_rules()
    trainer.fit(x, y)
    # the same two steps by hand: each batch with half the penalty, mu carried on
    manual = linear(x.shape[1])
    mu = 10.0
    for rows in (slice(0, 20), slice(20, 40)):
        history = TrainerSettings(weight_decay=2.0, mu_init=mu, max_epochs=1, min_error=None,
                                  form="primal").fit(manual, x[rows], y[rows])
        mu = history.mu[-1]
    torch.testing.assert_close(model.weight, manual.weight, rtol=1e-10, atol=1e-12)


def test_two_gloo_ranks_match_one_process_with_bayesian_regularization(tmp_path):
    args = ["--rows", "200", "--features", "3", "--hidden", "6", "--epochs", "4",
            "--regularization", "bayesian"]
    single, pair = tmp_path / "single.pt", tmp_path / "pair.pt"
    for command, out in (([sys.executable, "-m", "lmbench.examples.data_parallel"], single),
                         ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "lmbench.examples.data_parallel"],
                          pair)):
        done = subprocess.run([*command, *args, "--out", str(out)], capture_output=True,
                              text=True, timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
    one, two = torch.load(single), torch.load(pair)
    assert two["gamma"][1:] == pytest.approx(one["gamma"][1:], rel=1e-6)
    assert two["alpha"] == pytest.approx(one["alpha"], rel=1e-6)
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-6, atol=1e-9)


def test_bayesian_state_survives_a_checkpoint_resume(tmp_path):
    x, y = linear_problem()
    settings = TrainerSettings(regularization="bayesian", max_epochs=6, min_error=None)
    straight = linear(x.shape[1])
    full = settings.fit(straight, x, y)
    resumed = linear(x.shape[1])
    settings.with_(max_epochs=3).fit(resumed, x, y, checkpoint_dir=tmp_path)
    trainer = settings.build(resumed)
    again = trainer.fit(x, y, resume_from=tmp_path / "epoch_0003.pt")
    assert again.alpha == pytest.approx(full.alpha, rel=1e-12)
    torch.testing.assert_close(resumed.weight, straight.weight, rtol=1e-12, atol=0)


def _lambda_sequence(max_change, epochs=30):
    """lambda = alpha / beta epoch by epoch, Bayesian LM on 6 noisy points with 61 weights:
    the evidence drives the weights to zero (gamma -> 0, Poland 2001's collapse)."""
    g = torch.Generator().manual_seed(1)
    x = torch.linspace(-1, 1, 6, dtype=F64).unsqueeze(1)
    y = torch.sin(3 * x) + 0.3 * torch.randn(6, 1, generator=g, dtype=F64)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(1, 20), nn.Tanh(), nn.Linear(20, 1)).double()
    history = TrainerSettings(regularization="bayesian", bayesian_max_change=max_change,
                              max_epochs=epochs, min_error=None, mu_max=1e30).fit(model, x, y)
    return np.array(history.weight_decay[1:])


def test_bounded_updates_stop_the_estimates_oscillating():
    free = _lambda_sequence(math.inf)
    # unguarded: once gamma rounds to 0, alpha = 0 (plain LM), then gamma = P makes it huge
    zero = np.flatnonzero(free == 0)
    assert zero.size >= 2 and free[zero[0] - 1] > 1e10 and free[zero[0] + 1] > 1e10
    guarded = _lambda_sequence(10.0)
    assert np.all(np.isfinite(guarded)) and np.all(guarded > 0)
    steps = np.abs(np.diff(np.log10(guarded)))
    assert steps.max() <= 2 + 1e-9  # alpha and beta each move at most x10 per update


@pytest.mark.parametrize("options", [
    {"regularization": "bayesian", "engine": "cache", "temp_folder": "/tmp"},
    {"regularization": "bayesian", "engine": "matrix_free"},
    {"regularization": "bayesian", "mini_batch_size": 8},
    {"regularization": "bayesian", "weight_decay": 0.1},
    {"weight_decay": -1.0},
    {"weight_decay": math.inf},
    {"regularization": "ridge"},
])
def test_bad_regularization_settings_are_refused_naming_the_knob(options):
    with pytest.raises(ValueError, match="regularization|weight_decay"):
        TrainerSettings(**options)


def test_seed_function_takes_the_new_keywords_with_unchanged_defaults():
    x, y = linear_problem()
    plain, penalised = linear(x.shape[1]), linear(x.shape[1])
    loss_plain, *_ = train_levenberg(plain, x, y, nn.functional.mse_loss, max_epochs=5)
    loss_wd, *_ = train_levenberg(penalised, x, y, nn.functional.mse_loss, max_epochs=5,
                                  weight_decay=50.0)
    assert float(penalised.weight.detach().norm()) < float(plain.weight.detach().norm())
    reference = linear(x.shape[1])
    history = TrainerSettings(max_epochs=5, min_error=1e-2, mu_init=10, damping_factor=10,
                              mu_max=1e10).fit(reference, x, y)
    assert loss_plain == pytest.approx(history.loss)


def test_state_and_energy_helpers():
    state = RegularizationState(alpha=3.0, beta=2.0, gamma=1.5, estimated=True)
    assert state.weight_decay == 1.5
    assert RegularizationState.from_dict(state.to_dict()) == state
    assert weight_energy(torch.tensor([3.0, 4.0])) == 12.5
    assert Regularization(weight_decay=2.0).penalty(RegularizationState(alpha=2.0),
                                                    torch.tensor([1.0, 1.0])) == 2.0


def test_the_penalty_on_the_mean_loss_is_the_same_penalty_on_the_objective():
    """lm_tuned's weight_decay is in Adam's units: E / mean loss is each loss's fixed factor."""
    from lmbench.baselines.lm import LMSettings
    from lmbench.core.losses import LOSS_NAMES, Loss

    g = torch.Generator().manual_seed(7)
    for name in LOSS_NAMES:
        loss = Loss(name)
        out = torch.randn(9, 3, generator=g, dtype=F64)
        y = (torch.eye(3, dtype=F64)[torch.randint(0, 3, (9,), generator=g)] if loss.takes_logits
             else torch.randn(9, 3, generator=g, dtype=F64))
        ratio = float(loss.objective(out, y)) / float(loss.report(out, y))
        assert ratio == pytest.approx(loss.objective_per_mean(9, 3), rel=1e-12), name
    settings = LMSettings(weight_decay=1e-3).trainer_settings("multiclass", 500, 4)
    assert settings.weight_decay == pytest.approx(1e-3 * 500)  # cross-entropy: x N
    settings = LMSettings(weight_decay=1e-3).trainer_settings("regression", 500, 2)
    assert settings.weight_decay == pytest.approx(1e-3 * 500 * 2 / 2)  # 1/2 sum r^2: x N O / 2


def test_bayesian_cost_is_priced_and_refused_where_there_is_no_factorisation():
    from lmbench.core.cost_model import Problem, estimate

    problem = Problem(n_samples=2000, n_outputs=1, n_params=1000)
    plain = estimate(problem, "in_memory_primal")
    bayes = estimate(problem, "in_memory_primal", bayesian=True)
    assert bayes.flops - plain.flops == pytest.approx(2 * 1000**3 / 3)
    with pytest.raises(ValueError, match="factorisation"):
        estimate(problem, "matrix_free", bayesian=True)


def test_the_overparameterised_example_runs_and_reports_gamma(capsys):
    from lmbench.examples.bayesian_regularization import main

    main(["--seeds", "1", "--epochs", "15", "--hidden", "10"])
    out = capsys.readouterr().out
    assert "mean     bayesian: test MSE" in out and "gamma/P" in out


def test_training_report_adds_gamma_against_p_for_a_bayesian_run():
    from lmbench.plotting import plot_train_report

    x, y = linear_problem()
    bayes = TrainerSettings(regularization="bayesian", max_epochs=3, min_error=None)
    history = bayes.fit(linear(x.shape[1]), x, y)
    figure = plot_train_report(history)
    assert len(figure.axes) == 6
    assert any(line.get_label().startswith("P = 5") for line in figure.axes[4].lines)
    plain = TrainerSettings(max_epochs=3, min_error=None).fit(linear(x.shape[1]), x, y)
    assert len(plot_train_report(plain).axes) == 4
