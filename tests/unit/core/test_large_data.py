"""Streaming, disk-cache and data-parallel engines against the in-memory engine."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

import lmbench
from lmbench.core import DiskSpaceError, InvalidInputError, LevenbergMarquardt, StoppingRules
from lmbench.core import cache as cache_module
from lmbench.core.engines import plan_engine
from lmbench.core.fingerprint import RowsFingerprint
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


# ------------------------------------------------------------------ rows that change between passes
class ShrinkingLoader:
    """Yields one row fewer on every pass: a loader whose rows change between passes."""

    def __init__(self, x, y):
        self.x, self.y, self.passes = x, y, 0

    def __iter__(self):
        end = len(self.x) - self.passes
        self.passes += 1
        for start in range(0, end, 30):
            yield self.x[start:min(start + 30, end)], self.y[start:min(start + 30, end)]


def bootstrap_loader(x, y):
    """Draws rows with replacement: other rows (same count) on every pass."""
    dataset = TensorDataset(x, y)
    sampler = RandomSampler(dataset, replacement=True, generator=torch.Generator().manual_seed(3))
    return DataLoader(dataset, batch_size=30, sampler=sampler)


@pytest.mark.parametrize("engine", ["streaming", "cache", "matrix_free"])
@pytest.mark.parametrize(("make_loader", "message"), [
    (bootstrap_loader, r"90 rows again, but the sum of x"),
    (ShrinkingLoader, r"88 rows instead of 89"),  # the first batch's peek took 90
])
def test_loader_whose_rows_change_between_passes_is_refused(engine, make_loader, message,
                                                            tmp_path):
    x, y = problem()
    trainer = LevenbergMarquardt(fresh_net(), stopping=RULES,
                                 engine=plan_engine(engine, temp_folder=tmp_path / "t"))
    with pytest.raises(InvalidInputError, match=rf"x_loader yielded other rows on pass 2 than "
                                                rf"on its first pass \({message}.*"
                                                r"replacement=True"):
        trainer.fit_loader(make_loader(x, y))
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("engine", ["streaming", "cache", "matrix_free"])
def test_shuffled_loader_of_the_same_rows_trains_as_the_ordered_one(engine, tmp_path):
    x, y = problem()

    def history(shuffle):
        loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=shuffle,
                            generator=torch.Generator().manual_seed(0))
        trainer = LevenbergMarquardt(fresh_net(), stopping=RULES,
                                     engine=plan_engine(engine, temp_folder=tmp_path / "t"))
        return trainer.fit_loader(loader)

    ordered, shuffled = history(False), history(True)
    assert shuffled.epochs == RULES.max_epochs
    assert shuffled.loss == pytest.approx(ordered.loss, rel=1e-6)


def test_rows_fingerprint_ignores_order_and_sees_other_rows():
    x, y = problem()
    same = RowsFingerprint.of(x, y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    assert same.difference(RowsFingerprint.of(x[order], y[order])) is None
    drawn = torch.randint(len(x), (len(x),), generator=torch.Generator().manual_seed(2))
    assert "sum of" in same.difference(RowsFingerprint.of(x[drawn], y[drawn]))
    assert same.difference(RowsFingerprint.of(x[1:], y[1:])) == "89 rows instead of 90"
    assert RowsFingerprint.from_dict(same.to_dict()) == same


def test_rows_fingerprint_tells_apart_discrete_rows_whose_plain_sums_tie():
    x = torch.tensor([[(i >> bit) & 1 for bit in range(4)] for i in range(16)],
                     dtype=torch.float64)
    y = x.sum(dim=1, keepdim=True) % 2  # parity-4, every row once
    # Drop (1,0,0,0) and (0,1,1,0), repeat (1,1,1,0) and (0,0,0,0): the count and the sums of
    # x, x^2, y and y^2 are unchanged, only the per-row hash sees other rows.
    rows = [i for i in range(16) if i not in (1, 6)] + [7, 0]
    other = RowsFingerprint.of(x[rows], y[rows])
    same = RowsFingerprint.of(x, y)
    assert other.sums[:4] == same.sums[:4]
    assert "row hash" in same.difference(other)


def test_batches_with_a_third_element_are_refused():
    x, y = problem()
    weights = torch.rand(len(x), dtype=torch.float64)
    weighted = DataLoader(TensorDataset(x, y, weights), batch_size=30)
    with pytest.raises(InvalidInputError, match=r"x_loader batch 0 is a list of 3 items.*"
                                                r"sample weights\) would be ignored"):
        LevenbergMarquardt(fresh_net(), stopping=RULES).fit_loader(weighted)
    pairs = DataLoader(TensorDataset(x, y), batch_size=30)
    with pytest.raises(InvalidInputError, match=r"val_loader batch 0 is a list of 3 items"):
        LevenbergMarquardt(fresh_net(), stopping=RULES).fit_loader(pairs, val=weighted)
