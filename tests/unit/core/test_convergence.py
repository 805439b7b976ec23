"""The solver's convergence tests (ftol, xtol, gtol), More's scaling, geodesic acceleration,
asymmetric damping and the curve-fitting preset, against independent references: closed-form
least squares, scipy.optimize.least_squares (MINPACK) and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares
from torch import nn

from lmbench.bench.least_squares import scaled_gradient
from lmbench.bench.mgh import PROBLEMS, ResidualModule, problem_data, run_scipy
from lmbench.core import LevenbergMarquardt, SeedDamping, StoppingRules, TrainerSettings
from lmbench.core.damping import GainRatioDamping, MarquardtDamping, make_damping
from lmbench.core.distributed import LocalReducer
from lmbench.core.geodesic import GeodesicAcceleration
from lmbench.core.jacobian import ResidualFunction
from lmbench.core.params import FlatParameters
from lmbench.core.solve import Step
from lmbench.core.stopping import CONVERGED_FTOL, CONVERGED_GTOL, CONVERGED_XTOL
from lmbench.core.system import SystemAccumulator

CONVERGED = (CONVERGED_FTOL, CONVERGED_GTOL, CONVERGED_XTOL)


class Exponential(nn.Module):
    """y = a * exp(-b * t) + c: a three-parameter curve fit."""

    def __init__(self, a: float = 1.0, b: float = 0.1, c: float = 0.0) -> None:
        super().__init__()
        self.coefficients = nn.Parameter(torch.tensor([a, b, c], dtype=torch.float64))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        a, b, c = self.coefficients
        return a * torch.exp(-b * t) + c


def decay_data(noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    t = torch.linspace(0, 10, 40, dtype=torch.float64).unsqueeze(1)
    y = 2.5 * torch.exp(-0.7 * t) + 0.4
    return t, y + noise * torch.randn(t.shape, generator=generator, dtype=torch.float64)


def scipy_fit(t: torch.Tensor, y: torch.Tensor, start: list[float]) -> np.ndarray:
    tt, yy = t.squeeze(1).numpy(), y.squeeze(1).numpy()
    result = least_squares(lambda p: p[0] * np.exp(-p[1] * tt) + p[2] - yy, start, method="lm",
                           ftol=1e-12, xtol=1e-12, gtol=1e-12)
    return result.x


# ---------------------------------------------------------------- the curve-fitting preset
def test_curve_fit_preset_matches_minpack_and_says_it_converged():
    t, y = decay_data()
    model = Exponential()
    history = TrainerSettings.for_curve_fit().fit(model, t, y)
    assert history.stop_reason in CONVERGED
    assert len(history.loss) - 1 < 100  # stopped long before the preset's 1000 epochs
    expected = scipy_fit(t, y, [1.0, 0.1, 0.0])
    np.testing.assert_allclose(model.coefficients.detach().numpy(), expected, rtol=1e-6)


def test_curve_fit_preset_fields_and_overrides():
    preset = TrainerSettings.for_curve_fit()
    assert (preset.damping, preset.damping_scaling, preset.system_dtype) == (
        "gain_ratio", "running_max", "float64")
    assert preset.min_error is None and preset.max_epochs == 1000
    assert preset.ftol == preset.xtol == preset.gtol == 1e-8
    changed = TrainerSettings.for_curve_fit(max_epochs=5, demping_coef=3.0, damping="seed")
    assert changed.max_epochs == 5 and changed.damping_factor == 3.0
    assert changed.damping == "seed" and changed.damping_scaling == "running_max"


@pytest.mark.parametrize("name", ["rosenbrock", "meyer", "brown_badly_scaled", "osborne2"])
def test_preset_solves_classic_problems_within_minpacks_jacobian_count(name):
    problem = PROBLEMS[name]
    module = ResidualModule(problem)
    rows, targets = problem_data(problem)
    history = TrainerSettings.for_curve_fit().fit(module, rows, targets)
    value = float((problem.residuals(module.theta.detach()) ** 2).sum())
    assert problem.is_solved(value), (history.stop_reason, value)
    assert history.stop_reason in CONVERGED
    jacobians = 1 + sum(bool(a) for a in history.accepted[1:-1])
    assert jacobians <= 2 * run_scipy(problem, 1.0, "lm").n_jacobians


# ---------------------------------------------------------------- each convergence test
def linear_problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(60, 3, generator=generator, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3
    y = y + 0.1 * torch.randn(y.shape, generator=generator, dtype=torch.float64)
    return nn.Linear(3, 1).double(), x, y


def closed_form(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    design = np.hstack([x.numpy(), np.ones((x.shape[0], 1))])
    return np.linalg.lstsq(design, y.numpy(), rcond=None)[0].ravel()


@pytest.mark.parametrize(("tolerances", "reason"), [
    ({"ftol": 1e-8, "xtol": 0.0, "gtol": 0.0}, CONVERGED_FTOL),
    ({"ftol": 0.0, "xtol": 1e-8, "gtol": 0.0}, CONVERGED_XTOL),
    ({"ftol": 0.0, "xtol": 0.0, "gtol": 1e-8}, CONVERGED_GTOL),
])
def test_each_test_alone_stops_at_the_least_squares_solution(tolerances, reason):
    model, x, y = linear_problem()
    rules = StoppingRules(max_epochs=200, min_error=None, **tolerances)
    history = LevenbergMarquardt(model, damping=GainRatioDamping(), stopping=rules).fit(x, y)
    assert history.stop_reason == reason
    assert len(history.loss) - 1 < 50
    fitted = np.concatenate([model.weight.detach().numpy().ravel(),
                             model.bias.detach().numpy()])
    np.testing.assert_allclose(fitted, closed_form(x, y), rtol=1e-6, atol=1e-7)


def test_without_the_tests_a_converged_run_cannot_say_so():
    model, x, y = linear_problem()
    rules = StoppingRules(max_epochs=40, min_error=None, ftol=0.0, xtol=0.0, gtol=0.0)
    history = LevenbergMarquardt(model, damping=SeedDamping(), stopping=rules).fit(x, y)
    assert history.stop_reason == "max_epochs" and len(history.loss) - 1 == 40
    model, x, y = linear_problem()
    history = LevenbergMarquardt(model, damping=GainRatioDamping(), stopping=rules).fit(x, y)
    assert history.stop_reason == "mu_max"  # stuck and converged look the same


def test_network_training_stops_once_converged():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 40, dtype=torch.float64).unsqueeze(1)
    y = torch.sin(2 * x)
    net = nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    history = TrainerSettings(damping="gain_ratio", max_epochs=3000, min_error=None,
                              min_gradient=0.0).fit(net, x, y)
    assert history.stop_reason in CONVERGED
    assert len(history.loss) - 1 < 3000


@pytest.mark.parametrize("name", ["ftol", "xtol", "gtol"])
@pytest.mark.parametrize("value", [-1e-3, 1.0, math.nan])
def test_bad_tolerance_is_refused_naming_it(name, value):
    with pytest.raises(ValueError, match=name):
        StoppingRules(**{name: value})
    with pytest.raises(ValueError, match=name):
        TrainerSettings(**{name: value})


def test_reduction_and_step_rules():
    rules = StoppingRules(ftol=1e-3, xtol=1e-8)
    assert rules.reduction_converged(actual=0.5e-3, predicted=0.9e-3, objective=1.0)
    assert not rules.reduction_converged(actual=2e-3, predicted=0.5e-3, objective=1.0)
    assert not rules.reduction_converged(actual=0.5e-3, predicted=2e-3, objective=1.0)
    assert not rules.reduction_converged(actual=0.9e-3, predicted=0.4e-3, objective=1.0)  # rho>2
    theta = torch.tensor([1e6, 2e-6], dtype=torch.float64)
    # component by component: a step of 1e-3 on 1e6 is small, but 1e-7 on 2e-6 is not
    assert not rules.step_converged(torch.tensor([1e-3, 1e-7], dtype=torch.float64), theta)
    assert rules.step_converged(torch.tensor([1e-3, 1e-15], dtype=torch.float64), theta)
    assert not StoppingRules(xtol=0.0).step_converged(torch.zeros(2), theta)


def test_scaled_gradient_is_the_largest_cosine_between_residuals_and_columns():
    generator = torch.Generator().manual_seed(1)
    jac = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    residuals = torch.randn(8, generator=generator, dtype=torch.float64)
    acc = SystemAccumulator(3, "primal", torch.float64, torch.device("cpu"))
    acc.add(jac, residuals)
    system = acc.finish()
    cosines = (jac.T @ residuals).abs() / (jac.norm(dim=0) * residuals.norm())
    assert system.scaled_gradient == pytest.approx(float(cosines.max()), rel=1e-12)
    assert system.gradient_norm == pytest.approx(float((jac.T @ residuals).norm()), rel=1e-12)


# ---------------------------------------------------------------- More's scaling
def test_running_max_scaling_keeps_the_largest_diagonal_seen():
    acc = SystemAccumulator(2, "primal", torch.float64, torch.device("cpu"))
    acc.add(torch.tensor([[1.0, 0.0], [0.0, 0.1]], dtype=torch.float64),
            torch.tensor([1.0, 1.0], dtype=torch.float64))
    system = acc.finish()
    floor = torch.tensor([4.0, 0.0], dtype=torch.float64)
    scaled = system.with_scale_floor(floor)
    torch.testing.assert_close(scaled.scaling(True), torch.tensor([4.0, 0.01],
                                                                   dtype=torch.float64))
    torch.testing.assert_close(system.scaling(True), torch.tensor([1.0, 0.01],
                                                                   dtype=torch.float64))
    assert bool((scaled.scaling(False) == 1).all())


def test_running_max_is_accumulated_over_epochs_by_the_trainer():
    problem = PROBLEMS["meyer"]
    module = ResidualModule(problem)
    rows, targets = problem_data(problem)
    trainer = TrainerSettings.for_curve_fit(max_epochs=30).build(module)
    seen: list[torch.Tensor] = []
    original = trainer._assemble

    def spy(run, theta, timer, objective, share=1.0):
        system = original(run, theta, timer, objective, share)
        seen.append(system.scaling(True))
        return system

    trainer._assemble = spy
    trainer.fit(rows, targets)
    assert len(seen) > 3
    for before, after in zip(seen, seen[1:], strict=False):
        assert bool((after >= before).all())  # D never shrinks


def test_damping_scaling_options_and_their_refusals():
    assert make_damping("gain_ratio").scale_by_diagonal is False
    more = make_damping("gain_ratio", scaling="running_max")
    assert more.scale_by_diagonal and more.running_max_scaling
    assert make_damping("seed", scaling="diagonal").scale_by_diagonal
    assert MarquardtDamping().scale_by_diagonal and not MarquardtDamping().running_max_scaling
    with pytest.raises(ValueError, match="damping_scaling"):
        make_damping("seed", scaling="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale_by_diagonal"):
        GainRatioDamping(running_max_scaling=True)


# ---------------------------------------------------------------- asymmetric damping
def test_asymmetric_seed_updates_use_their_own_factors():
    rule = SeedDamping(mu_init=1.0, grow_factor=2.0, shrink_factor=3.0)
    state = rule.initial_state()
    assert rule.after_reject(state).mu == 2.0
    assert rule.after_accept(state, 0.5).mu == pytest.approx(1 / 3)
    symmetric = SeedDamping(mu_init=1.0, factor=10.0)
    assert symmetric.after_reject(state).mu == 10.0 and symmetric.after_accept(state, 1).mu == 0.1
    settings = TrainerSettings(damping="marquardt", damping_grow_factor=2.0,
                               damping_shrink_factor=3.0)
    rule = settings.damping_rule()
    assert (rule.grow_factor, rule.shrink_factor) == (2.0, 3.0)
    with pytest.raises(ValueError, match="damping_grow_factor"):
        TrainerSettings(damping_grow_factor=0.5)


# ---------------------------------------------------------------- geodesic acceleration
def test_pulled_back_curvature_matches_finite_differences():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x = torch.randn(7, 2, dtype=torch.float64)
    flat = FlatParameters(net)
    residual_fn = ResidualFunction(flat, n_outputs=2)
    theta = flat.vector()
    velocity = 0.1 * torch.randn_like(theta)
    exact = GeodesicAcceleration().pulled_back_curvature(
        residual_fn, [(x, torch.zeros(7, 2))], theta, velocity, LocalReducer())

    def outputs(t: torch.Tensor) -> torch.Tensor:
        return residual_fn.differentiable_outputs(t, x).reshape(-1)

    h = 1e-4
    second = (outputs(theta + h * velocity) - 2 * outputs(theta) + outputs(theta - h * velocity))
    second = second / h**2
    jac = torch.autograd.functional.jacobian(outputs, theta)
    assert float(exact.abs().max()) > 1e-3  # a real curvature, not an empty pull-back
    torch.testing.assert_close(exact, jac.T @ second, rtol=1e-5, atol=1e-7)


def test_acceleration_is_refused_when_too_large_and_kept_otherwise():
    accelerator = GeodesicAcceleration(ratio=0.75)
    velocity = Step(torch.tensor([1.0, 0.0], dtype=torch.float64), predicted_reduction=2.0)
    kept = accelerator.accelerated(velocity, torch.tensor([0.2, 0.2], dtype=torch.float64))
    assert kept is not None and kept.predicted_reduction == 2.0
    torch.testing.assert_close(kept.delta, torch.tensor([1.1, 0.1], dtype=torch.float64))
    assert accelerator.accelerated(velocity, torch.tensor([0.4, 0.0],
                                                          dtype=torch.float64)) is None
    with pytest.raises(ValueError, match="ratio"):
        GeodesicAcceleration(ratio=0.0)


def test_geodesic_acceleration_solves_rosenbrock_in_fewer_jacobians():
    problem = PROBLEMS["rosenbrock"]
    counts = {}
    for acceleration in ("none", "geodesic"):
        module = ResidualModule(problem)
        rows, targets = problem_data(problem)
        history = TrainerSettings.for_curve_fit(
            acceleration=acceleration, damping_scaling="rule").fit(module, rows, targets)
        value = float((problem.residuals(module.theta.detach()) ** 2).sum())
        assert problem.is_solved(value) and history.stop_reason in CONVERGED
        counts[acceleration] = 1 + sum(bool(a) for a in history.accepted[1:-1])
    assert counts["geodesic"] <= counts["none"]


@pytest.mark.parametrize("changes", [
    {"loss": "cross_entropy"}, {"form": "dual"}, {"engine": "cache"},
    {"mini_batch_size": 8}, {"geodesic_ratio": -1.0}, {"acceleration": "warp"},
])
def test_geodesic_acceleration_refusals_name_the_setting(changes):
    with pytest.raises(ValueError, match="geodesic|acceleration|ratio"):
        TrainerSettings(**{"acceleration": "geodesic", **changes})


# ---------------------------------------------------------------- with Bayesian regularisation
def test_a_bayesian_run_converges_once_its_penalty_has_travelled_and_settled():
    model, x, y = linear_problem()
    # lambda may move by 5% an epoch: it needs ~100 epochs to fall from its start
    history = TrainerSettings(regularization="bayesian", bayesian_max_change=1.05,
                              mu_init=1e-3, max_epochs=400, min_error=None).fit(model, x, y)
    assert history.stop_reason in CONVERGED
    lambdas = history.weight_decay
    assert 50 < len(history.loss) - 1 < 400
    assert lambdas[1] > 100 * lambdas[-1] > 0
    assert math.isclose(lambdas[-1], lambdas[-2], rel_tol=1e-3)


# ---------------------------------------------------------------- a step held back by the damping
def test_a_tiny_step_held_back_by_more_scaling_is_not_called_converged():
    # Chebyquad from 100 x0: D keeps the start's enormous column norms, so mu * D holds every
    # step to a sliver of the weights while the sum of squares still falls by ~40% an epoch
    problem = PROBLEMS["chebyquad"]
    module = ResidualModule(problem, scale=100.0)
    rows, targets = problem_data(problem)
    history = TrainerSettings.for_curve_fit(max_epochs=80).fit(module, rows, targets)
    assert history.stop_reason == "max_epochs"
    assert history.objective[-1] < 1e-6 * history.objective[0]


def test_held_back_weighs_each_weight_by_the_gradient_it_carries():
    acc = SystemAccumulator(2, "primal", torch.float64, torch.device("cpu"))
    acc.add(torch.tensor([[1e3, 0.0], [0.0, 1e-3]], dtype=torch.float64),
            torch.tensor([0.0, 1.0], dtype=torch.float64))
    system = acc.finish()  # diag(J^T J) = (1e6, 1e-6); the gradient (0, 1e-3) is all weight 2's
    faded = system.with_scale_floor(torch.tensor([1e6, 1.0], dtype=torch.float64))
    # mu D = (1e3, 1e-3): far below the largest curvature, yet weight 2's faded curvature (1e-6)
    # is swamped: the step it carries keeps ~0.1% of its undamped reduction
    assert faded.held_back(1e-3, True)
    assert not faded.held_back(1e-9, True)  # mu D_2 = 1e-9 << 1e-6: almost Gauss-Newton
    assert system.held_back(1e-3, False) and not system.held_back(1e-7, False)  # D = I
    # the threshold is half the undamped diagonal estimate sum_j g_j^2 / A_jj (= 1 here)
    assert not system.held_back(0.99e-6, False) and system.held_back(1.01e-6, False)
    # weight decay 1e-6 at w = 0: A_22 = 2e-6 (counted once), so the threshold moves to 2e-6
    decayed = system.penalised(1e-6, torch.zeros(2, dtype=torch.float64))
    assert not decayed.held_back(1.9e-6, False) and decayed.held_back(2.1e-6, False)


def test_a_damped_step_along_a_slow_valley_is_not_called_converged():
    # Beale from 100 x0: the steps along the valley x1 -> 0 are held to slivers by More's D
    # (the start's column norms) and each lowers F by < ftol F, with gain ratio ~1; the point
    # is not stationary (scaled gradient ~4e-3), so no convergence test may claim it
    problem = PROBLEMS["beale"]
    module = ResidualModule(problem, scale=100.0)
    rows, targets = problem_data(problem)
    history = TrainerSettings.for_curve_fit(max_epochs=60).fit(module, rows, targets)
    theta = module.theta.detach()
    assert history.stop_reason not in CONVERGED or scaled_gradient(problem, theta) <= 1e-4


def test_rejected_trials_at_a_nonzero_residual_minimum_still_converge():
    # Brown-Dennis (f* = 85822.2): at the minimum the trials are rejected on rounding while mu
    # grows; the ftol test still reads them (their gain ratio is poor), so the run says so
    problem = PROBLEMS["brown_dennis"]
    module = ResidualModule(problem)
    rows, targets = problem_data(problem)
    history = TrainerSettings.for_curve_fit().fit(module, rows, targets)
    assert history.stop_reason in CONVERGED
    assert problem.is_solved(float((problem.residuals(module.theta.detach()) ** 2).sum()))


def test_a_plateau_where_rounding_rejects_a_held_back_trial_is_not_called_converged():
    # Meyer from 100 x0 with mu_init = 1e-12: the first step lands where exp(x2 / (t + x3)) is
    # ~1e-12, so J and J^T r are tiny beside F ~ 2e9. More's D (the start's columns) holds the
    # next trial to a sliver whose reduction is lost in F's rounding, and the trial is
    # rejected; yet an undamped step could still remove most of F, so it is no minimum
    problem = PROBLEMS["meyer"]
    module = ResidualModule(problem, scale=100.0)
    rows, targets = problem_data(problem)
    history = TrainerSettings.for_curve_fit(mu_init=1e-12, max_epochs=30).fit(
        module, rows, targets)
    theta = module.theta.detach()
    assert history.objective[-1] > 1e8  # stuck on the plateau
    assert history.stop_reason not in CONVERGED
    assert scaled_gradient(problem, theta) > 1e-4  # not stationary: no test may claim it


def test_a_held_back_trial_is_read_only_where_nothing_is_left_to_gain():
    rules = StoppingRules(ftol=1e-8)
    assert rules.judges_trial(0.9, False, 1.0, 1.0)  # not held back: always read
    assert not rules.judges_trial(0.9, True, 0.0, 1.0)  # held back while the model agrees
    assert rules.judges_trial(0.1, True, 1e-9, 1.0)  # rounding at a minimum: read
    assert rules.judges_trial(math.nan, True, 1e-9, 1.0)
    assert not rules.judges_trial(0.1, True, 1e-3, 1.0)  # a plateau: an undamped step gains
    assert not StoppingRules(ftol=0.0).judges_trial(0.1, True, 1e-20, 1.0)  # ftol disabled
