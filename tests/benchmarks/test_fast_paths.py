"""The speed paths of the solver give the same steps as the plain torch path (cheap; not skipped).

``solve.py`` factors with LAPACK ?potrf in a reused buffer on CPU and solves with two
triangular solves; ``LMBENCH_NATIVE_CHOLESKY=0`` (here: the cached lookup replaced by None)
selects ``torch.linalg.cholesky_ex`` + ``cholesky_solve``. Both must agree with numpy.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from lmbench.core import solve
from lmbench.core.gram import accumulate_upper_gram, symmetrize_upper
from lmbench.core.solve import solve_damped
from lmbench.core.system import SystemAccumulator


@pytest.fixture(params=["native", "torch"])
def cholesky_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the LAPACK path and again with the torch.linalg path."""
    if request.param == "torch":
        monkeypatch.setattr(solve, "_native_potrf", lambda: None)
    elif solve._native_potrf() is None:
        pytest.skip("no LAPACK ?potrf in this torch build: only the torch path exists")
    yield request.param


def _system(rows: int, cols: int, form: str, dtype: torch.dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    jac = torch.randn(rows, cols, generator=gen, dtype=torch.float64)
    res = torch.randn(rows, generator=gen, dtype=torch.float64)
    acc = SystemAccumulator(cols, form, dtype, torch.device("cpu"))  # type: ignore[arg-type]
    for part_j, part_r in zip(torch.tensor_split(jac, 3), torch.tensor_split(res, 3), strict=True):
        acc.add(part_j.to(dtype), part_r.to(dtype))
    return acc.finish(), jac.numpy(), res.numpy()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("form", "rows", "cols"), [("primal", 90, 40), ("dual", 25, 60)])
@pytest.mark.parametrize("scale_by_diagonal", [False, True])
def test_step_matches_numpy_on_both_paths(
    cholesky_path: str, dtype: torch.dtype, form: str, rows: int, cols: int,
    scale_by_diagonal: bool,
) -> None:
    system, jac, res = _system(rows, cols, form, dtype)
    gram = jac.T @ jac
    scale = np.diag(gram) if scale_by_diagonal else np.ones(cols)
    rtol = 1e-9 if dtype == torch.float64 else 2e-3
    for mu in (0.5, 5.0, 0.05):  # several trials reuse one workspace
        step = solve_damped(system, mu, scale_by_diagonal)
        assert step is not None
        expected = -np.linalg.solve(gram + mu * np.diag(scale), jac.T @ res)
        np.testing.assert_allclose(step.delta.double().numpy(), expected, rtol=rtol,
                                   atol=rtol * np.abs(expected).max())


def test_system_matrix_is_left_unchanged(cholesky_path: str) -> None:
    system, _, _ = _system(50, 20, "primal", torch.float64)
    assert system.gram is not None
    before = system.gram.clone()
    solve_damped(system, 1.0, False)
    torch.testing.assert_close(system.gram, before, rtol=0, atol=0)


def test_not_positive_definite_is_none_then_recovers(cholesky_path: str) -> None:
    acc = SystemAccumulator(3, "primal", torch.float64, torch.device("cpu"))
    acc.add(torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64), torch.tensor([1.0]))
    system = acc.finish()
    assert solve_damped(system, 0.0, False) is None
    step = solve_damped(system, 1e-3, False)
    assert step is not None and bool(torch.isfinite(step.delta).all())


@pytest.mark.parametrize("cols", [1, 7, 513, 1500])
def test_upper_gram_matches_full_product(cols: int) -> None:
    jac = torch.randn(37, cols, dtype=torch.float64)
    gram = torch.zeros(cols, cols, dtype=torch.float64)
    accumulate_upper_gram(gram, jac)
    accumulate_upper_gram(gram, jac)
    torch.testing.assert_close(symmetrize_upper(gram), 2 * jac.T @ jac)
