"""One LM step against independent float64 references (numpy closed forms)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lmbench.core import LevenbergMarquardt, SeedDamping, StoppingRules
from lmbench.core.gram import accumulate_upper_gram, symmetrize_upper
from lmbench.core.jacobian import ResidualFunction
from lmbench.core.params import FlatParameters
from lmbench.core.solve import GramBuffer, solve_damped
from lmbench.core.system import SystemAccumulator


def one_step_model(x, y, mu, form="primal", scale_by_diagonal=False):
    model = nn.Sequential(nn.Linear(x.shape[1], 5), nn.Tanh(), nn.Linear(5, y.shape[1])).double()
    flat = FlatParameters(model)
    theta = flat.vector()
    jac, out = ResidualFunction(flat, y.shape[1]).jacobian(theta, x)
    residuals = (out - y).reshape(-1)
    acc = SystemAccumulator(flat.count, form, torch.float64, torch.device("cpu"))
    acc.add(jac, residuals)
    step = solve_damped(acc.finish(), mu, scale_by_diagonal)
    return step, jac.numpy(), residuals.numpy()


def test_linear_model_with_tiny_mu_gives_least_squares_solution():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = x @ np.array([[1.5], [-2.0], [0.3], [0.0]]) + 0.7 + 0.05 * rng.normal(size=(200, 1))
    model = nn.Linear(4, 1).double()
    trainer = LevenbergMarquardt(
        model,
        damping=SeedDamping(mu_init=1e-12, factor=10),
        stopping=StoppingRules(max_epochs=1, min_error=None),
    )
    trainer.fit(x, y)
    design = np.hstack([x, np.ones((200, 1))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), coef[:4, 0], rtol=1e-8)
    np.testing.assert_allclose(model.bias.detach().numpy(), coef[4], rtol=1e-8)


@pytest.mark.parametrize("mu", [1e-3, 0.1, 10.0])
def test_damped_step_equals_numpy_float64(mu):
    x = torch.randn(30, 3, dtype=torch.float64)
    y = torch.randn(30, 2, dtype=torch.float64)
    step, jac, residuals = one_step_model(x, y, mu, form="primal")
    expected = -np.linalg.solve(jac.T @ jac + mu * np.eye(jac.shape[1]), jac.T @ residuals)
    np.testing.assert_allclose(step.delta.numpy(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scale_by_diagonal", [False, True])
def test_primal_and_dual_forms_give_the_same_step(scale_by_diagonal):
    x = torch.randn(6, 3, dtype=torch.float64)  # 12 residuals < 32 weights
    y = torch.randn(6, 2, dtype=torch.float64)
    torch.manual_seed(1)
    primal, jac, residuals = one_step_model(x, y, 0.5, "primal", scale_by_diagonal)
    torch.manual_seed(1)
    dual, _, _ = one_step_model(x, y, 0.5, "dual", scale_by_diagonal)
    np.testing.assert_allclose(dual.delta.numpy(), primal.delta.numpy(), rtol=1e-9, atol=1e-12)
    assert dual.predicted_reduction == pytest.approx(primal.predicted_reduction, rel=1e-9)
    if scale_by_diagonal:
        d = np.diag(np.diag(jac.T @ jac))
        expected = -np.linalg.solve(jac.T @ jac + 0.5 * d, jac.T @ residuals)
        np.testing.assert_allclose(primal.delta.numpy(), expected, rtol=1e-8)


def test_predicted_reduction_is_the_linear_models():
    x = torch.randn(40, 3, dtype=torch.float64)
    y = torch.randn(40, 1, dtype=torch.float64)
    step, jac, r = one_step_model(x, y, 0.2)
    delta = step.delta.numpy()
    linear_model_drop = 0.5 * r @ r - 0.5 * np.sum((r + jac @ delta) ** 2)
    assert step.predicted_reduction == pytest.approx(linear_model_drop, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 70),
    block=st.integers(1, 80),
    chunks=st.integers(1, 4),
)
def test_upper_gram_accumulated_in_chunks_equals_full_product(rows, cols, block, chunks):
    jac = torch.randn(rows, cols, dtype=torch.float64)
    gram = torch.zeros(cols, cols, dtype=torch.float64)
    for part in torch.tensor_split(jac, chunks):
        accumulate_upper_gram(gram, part, block=block)
    torch.testing.assert_close(symmetrize_upper(gram), jac.T @ jac)


def test_singular_system_is_reported_not_nan():
    acc = SystemAccumulator(3, "primal", torch.float64, torch.device("cpu"))
    acc.add(torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64), torch.tensor([1.0]))
    system = acc.finish()
    assert solve_damped(system, 0.0, False) is None  # rank 1 of 3: not positive definite
    step = solve_damped(system, 1e-3, False)
    assert step is not None and torch.isfinite(step.delta).all()


def test_default_jacobian_budget_is_half_the_gram_within_its_floors():
    from lmbench.core.sources import (
        MAX_JACOBIAN_BUDGET,
        MIN_CHUNK_ROWS,
        MIN_JACOBIAN_BUDGET,
        default_jacobian_budget,
    )

    cpu, f32 = torch.device("cpu"), torch.float32
    assert default_jacobian_budget(4000, 1, f32, cpu) == 4000 * 4000 * 4 // 2
    assert default_jacobian_budget(4000, 1, torch.float64, cpu) == 4000 * 4000 * 8 // 2
    assert default_jacobian_budget(1152, 2, f32, cpu) == MIN_CHUNK_ROWS * 2 * 1152 * 4
    assert default_jacobian_budget(61, 1, f32, cpu) == MIN_JACOBIAN_BUDGET
    assert default_jacobian_budget(100_000, 1, f32, cpu) == MAX_JACOBIAN_BUDGET
    assert default_jacobian_budget(4000, 2, f32, torch.device("cuda")) == MAX_JACOBIAN_BUDGET


@pytest.mark.parametrize("transposed", [False, True])
def test_native_syrk_and_the_gemm_panels_form_the_same_triangle(monkeypatch, transposed):
    from lmbench.core import solve

    if solve._native_syrk() is None:
        pytest.skip("this torch build exports no BLAS ?syrk")
    base = torch.randn(130, 300, dtype=torch.float64)
    jac = base.T if transposed else base.T.contiguous()  # a transposed view: the dual kernel
    native = torch.zeros(130, 130, dtype=torch.float64)
    accumulate_upper_gram(native, jac)
    monkeypatch.setattr(solve, "_native_syrk", lambda: None)
    panels = torch.zeros(130, 130, dtype=torch.float64)
    accumulate_upper_gram(panels, jac, block=48)
    torch.testing.assert_close(torch.triu(native), torch.triu(panels))
    torch.testing.assert_close(symmetrize_upper(native), jac.T @ jac)
    assert not native.tril(-1).any()  # the other triangle is never written


def test_the_gram_buffer_is_reused_and_each_epoch_starts_from_zero():
    generator = torch.Generator().manual_seed(4)
    buffer = GramBuffer()
    previous = None
    for epoch in range(3):  # a later J much smaller than the first: stale sums would show
        jac = torch.randn(30, 6, generator=generator, dtype=torch.float64) * 10.0 ** -epoch
        residuals = torch.randn(30, generator=generator, dtype=torch.float64)
        shared = SystemAccumulator(6, "primal", torch.float64, torch.device("cpu"), buffer)
        shared.add(jac, residuals)
        system = shared.finish()
        fresh = SystemAccumulator(6, "primal", torch.float64, torch.device("cpu"))
        fresh.add(jac, residuals)
        expected = solve_damped(fresh.finish(), 1e-3, False)
        torch.testing.assert_close(torch.triu(system.gram), torch.triu(jac.T @ jac))
        torch.testing.assert_close(solve_damped(system, 1e-3, False).delta, expected.delta)
        if previous is not None:
            assert system.gram.data_ptr() == previous  # the same P x P memory, epoch after epoch
        previous = system.gram.data_ptr()
