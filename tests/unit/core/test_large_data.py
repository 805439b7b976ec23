"""Streaming, disk-cache and data-parallel engines against the in-memory engine."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lmbench
from lmbench.core import DiskSpaceError, LevenbergMarquardt, StoppingRules
from lmbench.core import cache as cache_module
from lmbench.core.solve import solve_damped
from lmbench.core.system import SystemAccumulator


def problem(n=90, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y = torch.stack([torch.sin(x[:, 0]) * x[:, 1], x[:, 2] ** 2 - 1], dim=1)
    return x, y


def fresh_net(seed=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).double()


RULES = StoppingRules(max_epochs=6, min_error=None)


def in_memory_history():
    x, y = problem()
    return LevenbergMarquardt(fresh_net(), stopping=RULES, form="primal").fit(x, y)


@pytest.mark.parametrize("batch_size", [7, 16, 90])  # 90 = one chunk; 7 and 16 leave a remainder
@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_streaming_and_cache_match_in_memory(batch_size, solver, tmp_path):
    x, y = problem()
    reference = in_memory_history()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    trainer = LevenbergMarquardt(
        fresh_net(), stopping=RULES, form="primal", solver=solver, temp_folder=tmp_path / "tmp"
    )
    history = trainer.fit_loader(loader)
    assert history.loss == pytest.approx(reference.loss, rel=1e-5)
    assert history.mu == reference.mu
    assert not (tmp_path / "tmp").exists()


def test_cg_step_agrees_with_cholesky_step(tmp_path):
    x, y = problem(40)
    model = fresh_net()
    from lmbench.core.jacobian import ResidualFunction
    from lmbench.core.params import FlatParameters

    flat = FlatParameters(model)
    jac, out = ResidualFunction(flat, 2).jacobian(flat.vector(), x)
    residuals = (out - y).reshape(-1)
    matrix_free = SystemAccumulator(flat.count, "cache_cg", torch.float64, torch.device("cpu"))
    matrix_free.add(jac, residuals)
    system_mf = matrix_free.finish(operator=lambda v: jac.T @ (jac @ v))
    for mu, scaled in ((1e-2, False), (1.0, True)):
        reference = solve_damped(_primal(jac, residuals), mu, scaled)
        candidate = solve_damped(system_mf, mu, scaled)
        torch.testing.assert_close(candidate.delta, reference.delta, rtol=1e-5, atol=1e-8)
        assert candidate.predicted_reduction == pytest.approx(reference.predicted_reduction,
                                                              rel=1e-6)


def _primal(jac, residuals):
    acc = SystemAccumulator(jac.shape[1], "primal", torch.float64, torch.device("cpu"))
    acc.add(jac, residuals)
    return acc.finish()


class FailingLoader:
    """Yields two good chunks, then raises: an error in the middle of an epoch."""

    def __init__(self, x, y, fail_on_pass):
        self.x, self.y, self.fail_on_pass, self.passes = x, y, fail_on_pass, 0

    def __iter__(self):
        self.passes += 1
        for start in range(0, len(self.x), 30):
            if self.passes >= self.fail_on_pass and start == 60:
                raise RuntimeError("disk read failed")
            yield self.x[start:start + 30], self.y[start:start + 30]


def test_cache_folder_removed_after_success_error_and_interrupt(tmp_path):
    x, y = problem()
    temp = tmp_path / "temp"
    lmbench.train_distributed_levenberg(
        fresh_net(), DataLoader(TensorDataset(x, y), batch_size=30), nn.MSELoss(),
        temp_folder=temp, engine="cache", max_epochs=2, min_error=0.0,
    )
    assert not temp.exists()

    with pytest.raises(RuntimeError, match="disk read failed"):
        lmbench.train_distributed_levenberg(
            fresh_net(), FailingLoader(x, y, fail_on_pass=4), nn.MSELoss(),
            temp_folder=temp, engine="cache", max_epochs=5, min_error=0.0,
        )
    assert not temp.exists()

    def interrupt(info):
        if info.epoch == 1:
            assert any(temp.rglob("jac_*.npy"))  # the cache really was on disk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lmbench.train_distributed_levenberg(
            fresh_net(), DataLoader(TensorDataset(x, y), batch_size=30), nn.MSELoss(),
            temp_folder=temp, engine="cache", max_epochs=5, min_error=0.0,
            metrics_callbacks=[interrupt],
        )
    assert not temp.exists()


def test_existing_temp_folder_is_kept_but_emptied(tmp_path):
    x, y = problem()
    (tmp_path / "user_file.txt").write_text("mine")
    lmbench.train_distributed_levenberg(
        fresh_net(), DataLoader(TensorDataset(x, y), batch_size=30), nn.MSELoss(),
        temp_folder=tmp_path, engine="cache", max_epochs=1, min_error=0.0,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user_file.txt"]


def test_disk_preflight_refuses_a_cache_larger_than_free_space(tmp_path, monkeypatch):
    x, y = problem()
    monkeypatch.setattr(cache_module, "free_bytes", lambda folder: 10_000)
    needed = cache_module.estimate_cache_bytes(90, 2, 38, itemsize=8)
    assert needed > 10_000
    with pytest.raises(DiskSpaceError, match=r"needs about .* GiB .* only .* GiB is free"):
        lmbench.train_distributed_levenberg(
            fresh_net(), DataLoader(TensorDataset(x, y), batch_size=30), nn.MSELoss(),
            temp_folder=tmp_path / "temp", engine="cache", max_epochs=1,
        )
    assert not (tmp_path / "temp").exists()


def test_seed_formula_estimate():
    # The seed's example: 100k samples, 5k weights, 3 outputs -> about 5.6 GB in float32.
    gib = cache_module.estimate_cache_bytes(100_000, 3, 5_000, itemsize=4) / 2**30
    assert gib == pytest.approx(5.59 * (1 + cache_module.CACHE_OVERHEAD), rel=0.01)


def test_streaming_seed_api_returns_seed_lists(tmp_path):
    x, y = problem()
    loss, val, mu, times = lmbench.train_distributed_levenberg(
        fresh_net(), DataLoader(TensorDataset(x, y), batch_size=25), nn.MSELoss(),
        val_loader=DataLoader(TensorDataset(*problem(30, seed=5)), batch_size=10),
        max_epochs=3, min_error=0.0, temp_folder=tmp_path / "t",
    )
    assert len(loss) == len(val) == len(mu) == len(times) == 4
    assert all(math.isfinite(v) for v in loss + val)
