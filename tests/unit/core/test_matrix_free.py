"""The matrix-free engine's pieces against explicit float64 references.

References are built independently of the engine: J by ``torch.autograd.functional.jacobian``
of the model's outputs over all rows, each sample's output-space curvature H from its
definition (the exact Hessian of the loss for mse, cross_entropy and bce, by ``torch.func``;
Huber's IRLS weight; the square-root trick's a a^T), the gradient by autograd of the summed
loss, and the Cholesky step by ``torch.linalg.solve`` on the explicit J^T H J.
"""

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, hessian

from lmbench.core.distributed import LocalReducer
from lmbench.core.jacobian import ResidualFunction
from lmbench.core.losses import LOSS_NAMES, Loss
from lmbench.core.matrix_free import (
    GaussNewtonProducts,
    StreamedSystem,
    WarmStart,
    gradient_and_diagonal,
    preconditioned_cg,
)
from lmbench.core.params import FlatParameters
from lmbench.core.solve import conjugate_gradient
from lmbench.core.sources import TensorSource
from lmbench.core.system import SystemAccumulator

N_SAMPLES, N_INPUTS, N_OUTPUTS = 23, 3, 3


def problem(loss_name: str):
    """A small tanh MLP, rows and targets suited to ``loss_name``, all float64."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(N_INPUTS, 4), nn.Tanh(), nn.Linear(4, N_OUTPUTS)).double()
    x = torch.randn(N_SAMPLES, N_INPUTS, dtype=torch.float64)
    if loss_name in ("cross_entropy", "sqrt_cross_entropy"):
        y = nn.functional.one_hot(torch.arange(N_SAMPLES) % N_OUTPUTS, N_OUTPUTS).double()
    elif loss_name == "bce":
        y = (torch.rand(N_SAMPLES, N_OUTPUTS) > 0.5).double()
    else:
        y = 2.0 * torch.randn(N_SAMPLES, N_OUTPUTS, dtype=torch.float64)  # huber: both regimes
    return model, x, y


def explicit_jacobian(model, flat, theta, x):
    """J of all outputs (N*O, P) by autograd's functional jacobian."""

    def outputs(t):
        return functional_call(model, flat.as_dict(t), (x,)).reshape(-1)

    return torch.autograd.functional.jacobian(outputs, theta)


def sample_curvature(loss: Loss, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """H (O x O) of one sample from its definition."""
    if loss.name == "mse":
        return torch.eye(z.numel(), dtype=z.dtype)
    if loss.name in ("cross_entropy", "bce"):
        return hessian(lambda v: loss.objective_tensor(v.unsqueeze(0), t.unsqueeze(0)))(z)
    if loss.name == "huber":
        weight = torch.clamp(loss.huber_delta / (z - t).abs(), max=1.0)
        return torch.diag(weight)
    rho = lambda v: nn.functional.cross_entropy(v.unsqueeze(0), t.unsqueeze(0)).sqrt()  # noqa: E731
    a = grad(rho)(z)
    return torch.outer(a, a)


def explicit_system(loss_name: str):
    """(J^T H J, gradient, pieces) with the references above."""
    loss = Loss(loss_name, huber_delta=0.7)
    model, x, y = problem(loss_name)
    flat = FlatParameters(model)
    theta = flat.vector()
    jac = explicit_jacobian(model, flat, theta, x).reshape(N_SAMPLES, N_OUTPUTS, -1)
    with torch.no_grad():
        out = model(x)
    gram = sum(jac[i].T @ sample_curvature(loss, out[i], y[i]) @ jac[i] for i in range(N_SAMPLES))
    theta_grad = theta.clone().requires_grad_(True)
    objective = loss.objective_tensor(functional_call(model, flat.as_dict(theta_grad), (x,)), y)
    (gradient,) = torch.autograd.grad(objective, theta_grad)
    return gram, gradient, (loss, model, flat, theta, x, y)


def engine_pieces(loss, flat, theta, x, y, chunk_rows=5):
    residual_fn = ResidualFunction(flat, N_OUTPUTS)
    source = TensorSource(x, y, chunk_rows=chunk_rows)
    products = GaussNewtonProducts(residual_fn, loss, source.chunks, theta, LocalReducer(),
                                   torch.float64)
    pieces = gradient_and_diagonal(residual_fn, loss, source.chunks, theta, LocalReducer(),
                                   torch.float64, N_OUTPUTS)
    return products, pieces


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
def test_products_gradient_and_diagonal_match_explicit_references(loss_name):
    gram, gradient, (loss, _, flat, theta, x, y) = explicit_system(loss_name)
    products, pieces = engine_pieces(loss, flat, theta, x, y)
    for seed in range(3):
        v = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        torch.testing.assert_close(products(v), gram @ v, rtol=1e-10, atol=1e-12)
    assert products.count == 3
    torch.testing.assert_close(pieces.gradient, gradient, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(pieces.diagonal, gram.diagonal(), rtol=1e-10, atol=1e-12)
    rows = N_SAMPLES * loss.rows_per_sample(N_OUTPUTS)
    assert pieces.n_residuals == rows


def cholesky_system(loss, flat, theta, x, y):
    """The primal (Cholesky) system of the other engines, from the same rows."""
    residual_fn = ResidualFunction(flat, N_OUTPUTS)
    accumulator = SystemAccumulator(theta.numel(), "primal", torch.float64, theta.device)
    jac, out = residual_fn.jacobian(theta, x)
    accumulator.add(*loss.gauss_newton_rows(jac, out, y, torch.float64))
    return accumulator.finish()


@pytest.mark.parametrize("loss_name", ["mse", "cross_entropy"])
@pytest.mark.parametrize("scale_by_diagonal", [False, True])
def test_cg_to_tolerance_gives_the_cholesky_step(loss_name, scale_by_diagonal):
    gram, gradient, (loss, _, flat, theta, x, y) = explicit_system(loss_name)
    products, pieces = engine_pieces(loss, flat, theta, x, y)
    system = StreamedSystem(gradient=pieces.gradient, diagonal=pieces.diagonal, objective=0.0,
                            n_residuals=pieces.n_residuals, products=products, rtol=1e-12)
    mu = 0.05
    scale = system.scaling(scale_by_diagonal)
    damped = gram + mu * torch.diag(scale)
    expected = torch.linalg.solve(damped, -gradient)
    step = system.solve(mu, scale_by_diagonal)
    assert system.iterations[-1] <= system.max_iter
    torch.testing.assert_close(step.delta, expected, rtol=1e-8, atol=1e-10)
    # the Cholesky engine's own step (J^T J assembled from Jacobian rows, then factored)
    cholesky = cholesky_system(loss, flat, theta, x, y).solve(mu, scale_by_diagonal)
    torch.testing.assert_close(step.delta, cholesky.delta, rtol=1e-8, atol=1e-10)
    assert step.predicted_reduction == pytest.approx(cholesky.predicted_reduction, rel=1e-8)
    quadratic = -(gradient @ expected) - 0.5 * expected @ gram @ expected
    assert step.predicted_reduction == pytest.approx(float(quadratic), rel=1e-8)
    # warm start: the same system again starts at the solution and stops at once
    again = system.solve(mu, scale_by_diagonal)
    assert system.iterations[-1] == 0
    torch.testing.assert_close(again.delta, expected, rtol=1e-8, atol=1e-10)


def test_cg_warm_start_that_is_worse_than_zero_is_dropped():
    generator = torch.Generator().manual_seed(3)
    basis = torch.randn(30, 30, generator=generator, dtype=torch.float64)
    matrix = basis @ basis.T + 30 * torch.eye(30, dtype=torch.float64)
    rhs = torch.randn(30, generator=generator, dtype=torch.float64)
    exact = torch.linalg.solve(matrix, rhs)
    calls = []

    def operator(v):
        calls.append(1)
        return matrix @ v

    bad = preconditioned_cg(operator, rhs, matrix.diagonal(), 1e-12, 200, initial=-5 * exact)
    torch.testing.assert_close(bad.solution, exact, rtol=1e-9, atol=1e-11)
    assert bad.converged
    good = preconditioned_cg(operator, rhs, matrix.diagonal(), 1e-12, 200, initial=exact)
    assert good.iterations == 0 and good.converged
    capped = preconditioned_cg(operator, rhs, matrix.diagonal(), 1e-14, 2)
    assert capped.iterations == 2 and not capped.converged
    # the truncated solution still lowers the quadratic
    assert float(0.5 * capped.solution @ matrix @ capped.solution - rhs @ capped.solution) < 0


def test_cg_rejects_bad_settings():
    one = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        preconditioned_cg(lambda v: v, one, one, 1e-6, 0)
    with pytest.raises(ValueError, match="rtol must be > 0"):
        preconditioned_cg(lambda v: v, one, one, 0.0, 5)


def test_non_finite_warm_start_is_ignored():
    warm = WarmStart(torch.tensor([float("nan"), 1.0]))
    assert warm.initial(torch.zeros(2)) is None
    assert WarmStart(torch.ones(3)).initial(torch.zeros(2)) is None
    torch.testing.assert_close(WarmStart(torch.ones(2)).initial(torch.zeros(2)), torch.ones(2))


def random_spd(n, seed):
    """A random symmetric positive definite float64 matrix (condition number ~ 10)."""
    generator = torch.Generator().manual_seed(seed)
    basis = torch.randn(n, n, generator=generator, dtype=torch.float64)
    rhs = torch.randn(n, generator=generator, dtype=torch.float64)
    return basis @ basis.T / n + 0.5 * torch.eye(n, dtype=torch.float64), rhs


@pytest.mark.parametrize("preconditioned", [False, True])
def test_the_one_cg_solves_an_spd_system_like_linalg_solve(preconditioned):
    matrix, rhs = random_spd(40, 11)
    exact = torch.linalg.solve(matrix, rhs)
    calls = []

    def matvec(v):
        calls.append(1)
        return matrix @ v

    preconditioner = matrix.diagonal() if preconditioned else None
    result = conjugate_gradient(matvec, rhs, preconditioner=preconditioner, rtol=1e-12,
                                max_iter=200)
    torch.testing.assert_close(result.solution, exact, rtol=1e-9, atol=1e-11)
    assert result.converged and result.stop == "converged" and not result.indefinite
    assert 1 <= result.iterations == len(calls) <= 200
    torch.testing.assert_close(result.residual, rhs - matrix @ result.solution, rtol=0.0,
                               atol=1e-10)
    # warm start at the exact solution: one product to check it, then no iteration at all
    calls.clear()
    warm = conjugate_gradient(matvec, rhs, preconditioner=preconditioner, x0=exact, rtol=1e-10,
                              max_iter=200)
    assert warm.iterations == 0 and warm.converged and len(calls) == 1
    torch.testing.assert_close(warm.solution, exact, rtol=0.0, atol=0.0)
    assert warm.solution is not exact  # the caller's start is not updated in place
    capped = conjugate_gradient(matvec, rhs, preconditioner=preconditioner, rtol=1e-14,
                                max_iter=3)
    assert capped.iterations == 3 and capped.stop == "max_iter" and not capped.converged


def test_the_one_cg_reports_an_indefinite_matrix():
    diagonal = torch.tensor([[1.0, 0.0], [0.0, -2.0]], dtype=torch.float64)
    one = torch.ones(2, dtype=torch.float64)
    result = conjugate_gradient(lambda v: diagonal @ v, one, rtol=1e-10, max_iter=10)
    assert result.indefinite and result.stop == "indefinite" and not result.converged
    assert result.iterations == 1  # p0 = r0 = (1, 1): p^T A p = -1 <= 0 at once
    torch.testing.assert_close(result.solution, torch.zeros(2, dtype=torch.float64))
    matrix, rhs = random_spd(20, 12)
    negative = conjugate_gradient(lambda v: -(matrix @ v), rhs, preconditioner=matrix.diagonal(),
                                  rtol=1e-10, max_iter=50)
    assert negative.indefinite and negative.iterations == 1
    # an exactly singular direction (p^T A p = 0) is not positive definite either
    zero = conjugate_gradient(lambda v: torch.zeros_like(v), one, rtol=1e-10, max_iter=10)
    assert zero.indefinite and zero.iterations == 1
    nan = conjugate_gradient(lambda v: torch.full_like(v, float("nan")), one, rtol=1e-10,
                             max_iter=10)
    assert nan.stop == "not_finite" and not nan.indefinite and not nan.converged


def test_the_one_cg_rejects_bad_settings():
    one = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        conjugate_gradient(lambda v: v, one, rtol=1e-6, max_iter=0)
    with pytest.raises(ValueError, match="rtol must be > 0"):
        conjugate_gradient(lambda v: v, one, rtol=0.0, max_iter=5)


def test_cache_cg_and_streamed_systems_report_distinct_forms():
    generator = torch.Generator().manual_seed(4)
    jac = torch.randn(8, 5, generator=generator, dtype=torch.float64)
    residuals = torch.randn(8, generator=generator, dtype=torch.float64)
    accumulator = SystemAccumulator(5, "cache_cg", torch.float64, torch.device("cpu"))
    accumulator.add(jac, residuals)
    cache_system = accumulator.finish(operator=lambda v: jac.T @ (jac @ v))
    assert cache_system.form == "cache_cg" and StreamedSystem.form == "matrix_free"
    step = cache_system.solve(1e-3, False)
    expected = torch.linalg.solve(jac.T @ jac + 1e-3 * torch.eye(5, dtype=torch.float64),
                                  -(jac.T @ residuals))
    torch.testing.assert_close(step.delta, expected, rtol=1e-8, atol=1e-10)
    # a NaN operator makes no step (a rejected trial), never NaN weights
    broken = accumulator.finish(operator=lambda v: torch.full_like(v, float("nan")))
    assert broken.solve(1e-3, False) is None
