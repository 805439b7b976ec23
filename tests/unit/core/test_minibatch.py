"""Mini-batch LM (``lmbench.core.minibatch``): one step per batch, mu carried across batches.

The step sequence is pinned against an independent float64 reference written here (numpy
solves of (J^T J + mu I) delta = -J^T r per batch); the rest pins the equivalence with the
full-batch trainer, seeded shuffling, loaders, resume, the settings, the seed API and errors.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.func import functional_call, jacrev
from torch.utils.data import DataLoader, TensorDataset

import lmbench
from lmbench.core import TrainerSettings
from lmbench.core.checkpoint import latest_checkpoint
from lmbench.core.minibatch import MiniBatchLevenbergMarquardt, check_batch_size, epoch_order
from lmbench.harness.runners.lm import trainer_settings

WORKER = Path(__file__).with_name("_minibatch_parallel_worker.py")
SETTINGS = TrainerSettings(max_epochs=4, min_error=None, system_dtype="float64")


def curve(n=120, seed=3):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=generator, dtype=torch.float64) * 2 - 1
    return x, torch.sin(3 * x) + 0.5 * x**2


def fresh_net(seed=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 6), nn.Tanh(), nn.Linear(6, 1)).double()


def reference_minibatch_lm(net, x, y, batch_size, epochs, mu, factor=10.0, inner=10,
                           carry=True):
    """Plain mini-batch LM in numpy: batches in row order, the seed rule (accept when the
    batch's 1/2 ||r||^2 does not increase), mu carried across batches when ``carry``.
    Returns the full-pass MSE and mu after each epoch."""
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    theta = torch.cat([p.detach().flatten() for p in net.parameters()]).numpy()

    def outputs(vector, rows):
        pieces = torch.split(torch.as_tensor(vector), [s.numel() for s in shapes])
        params = {n: p.view(s) for n, p, s in zip(names, pieces, shapes, strict=True)}
        return functional_call(net, params, (rows,))

    def objective(vector, rows, targets):
        return 0.5 * float(((outputs(vector, rows) - targets) ** 2).sum())

    mu_init, losses, mus = mu, [], []
    for _ in range(epochs):
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            jac = jacrev(lambda v, xb=xb: outputs(v, xb).reshape(-1))(torch.as_tensor(theta))
            jac = jac.numpy()
            residuals = (outputs(theta, xb) - yb).reshape(-1).detach().numpy()
            base = objective(theta, xb, yb)
            mu_batch = mu if carry else mu_init
            for _ in range(inner):
                delta = -np.linalg.solve(jac.T @ jac + mu_batch * np.eye(theta.size),
                                         jac.T @ residuals)
                if objective(theta + delta, xb, yb) <= base:
                    theta, mu_batch = theta + delta, mu_batch / factor
                    break
                mu_batch *= factor
            mu = mu_batch
        losses.append(float(((outputs(theta, x) - y) ** 2).mean()))
        mus.append(mu)
    return losses, mus


def test_one_batch_of_all_rows_equals_the_full_batch_trainer_exactly():
    x, y = curve()
    val = curve(40, seed=9)
    full = SETTINGS.fit(fresh_net(), x, y, val=val)
    mini = SETTINGS.with_(mini_batch_size=len(x)).fit(fresh_net(), x, y, val=val)
    assert mini.loss == full.loss
    assert mini.val_loss == full.val_loss
    assert mini.mu == full.mu
    assert mini.trials == full.trials
    assert mini.stop_reason == full.stop_reason == "max_epochs"


def test_steps_match_an_independent_minibatch_reference_with_mu_carried():
    x, y = curve()
    trainer = TrainerSettings(max_epochs=3, min_error=None, system_dtype="float64", mu_init=1.0,
                              mini_batch_size=30).build(fresh_net())
    trainer.shuffle = False  # batches in row order, as the reference takes them
    result = trainer.fit(x, y)
    losses, mus = reference_minibatch_lm(fresh_net(), x, y, 30, 3, mu=1.0)
    np.testing.assert_allclose(result.loss[1:], losses, rtol=1e-9)
    np.testing.assert_allclose(result.mu[1:], mus, rtol=1e-12)
    # Carrying is what explains mu: four batches per epoch restarting from mu_init would end
    # the epoch elsewhere.
    _, reset_mus = reference_minibatch_lm(fresh_net(), x, y, 30, 3, mu=1.0, carry=False)
    assert not np.allclose(result.mu[1:], reset_mus)


def test_damping_state_carries_across_batches_within_an_epoch():
    x, y = curve()
    history = SETTINGS.with_(mini_batch_size=20, max_epochs=1, mu_init=10.0).fit(
        fresh_net(), x, y
    )
    # Seed rule: each kept step divides mu by 10 and each rejected trial multiplies it, over
    # all six batches; a per-batch reset would leave at most one batch's moves.
    kept = 6 if history.accepted[1] else 0
    rejected = history.trials[1] - kept
    assert kept == 6
    assert history.mu[1] == pytest.approx(10.0 * 10.0 ** (rejected - kept))
    assert history.mu[1] < 10.0 / 10.0  # more than one batch's decrease: mu was carried


def test_same_seed_same_history_other_seed_other_history():
    x, y = curve()
    runs = [SETTINGS.with_(mini_batch_size=25, mini_batch_seed=seed).fit(fresh_net(), x, y)
            for seed in (5, 5, 6)]
    assert runs[0].loss == runs[1].loss and runs[0].mu == runs[1].mu
    assert runs[0].loss != runs[2].loss
    order = epoch_order(50, seed=5, epoch=2)
    assert torch.equal(order, epoch_order(50, seed=5, epoch=2))
    assert sorted(order.tolist()) == list(range(50))
    assert not torch.equal(order, epoch_order(50, seed=5, epoch=3))


def test_minibatch_lm_reduces_the_loss_of_a_small_regression():
    x, y = curve(400)
    history = SETTINGS.with_(mini_batch_size=50, max_epochs=8).fit(fresh_net(), x, y)
    assert history.loss[-1] < history.loss[0] / 100
    assert history.epochs == 8 and all(history.accepted[1:])
    assert all(t > 0 for t in history.epoch_time[1:])


def test_loader_batches_are_the_steps():
    x, y = curve()
    settings = TrainerSettings(max_epochs=3, min_error=None, system_dtype="float64")
    from_rows = settings.with_(mini_batch_size=40).build(fresh_net())
    from_rows.shuffle = False
    expected = from_rows.fit(x, y)
    loader = DataLoader(TensorDataset(x, y), batch_size=40, shuffle=False)
    trainer = settings.build(fresh_net(), loader_batches=True)
    assert isinstance(trainer, MiniBatchLevenbergMarquardt)
    # the same steps; the full-pass loss sums the loader's chunks (rounding only)
    np.testing.assert_allclose(trainer.fit_loader(loader).loss, expected.loss, rtol=1e-12)


def test_resume_sees_the_batches_an_uninterrupted_run_sees(tmp_path):
    x, y = curve()
    settings = SETTINGS.with_(mini_batch_size=25)
    straight = settings.fit(fresh_net(), x, y)
    settings.with_(max_epochs=2).fit(fresh_net(), x, y, checkpoint_dir=tmp_path)
    trainer = settings.build(fresh_net())
    resumed = trainer.fit(x, y, resume_from=latest_checkpoint(tmp_path))
    assert resumed.loss == straight.loss
    assert resumed.mu == straight.mu


def test_callbacks_run_once_per_epoch_and_can_stop():
    x, y = curve()
    epochs = []

    def stop_after_two(info):
        epochs.append(info.epoch)
        return info.epoch >= 2

    history = SETTINGS.with_(mini_batch_size=30).fit(fresh_net(), x, y,
                                                    callbacks=[stop_after_two])
    assert epochs == [0, 1, 2]
    assert history.stop_reason == "callback"


def test_min_error_stops_on_the_full_pass_loss():
    x, y = curve()
    history = SETTINGS.with_(mini_batch_size=30, max_epochs=50, min_error=1e-3).fit(
        fresh_net(), x, y
    )
    assert history.stop_reason == "min_error"
    assert history.loss[-1] <= 1e-3 < min(history.loss[:-1])


def test_seed_api_batch_size_and_mini_batch_loader():
    x, y = curve()
    result = lmbench.train_levenberg(fresh_net(), x, y, nn.MSELoss(), max_epochs=3,
                                     min_error=0.0, batch_size=30, shuffle_seed=4)
    expected = TrainerSettings(max_epochs=3, min_error=0.0, mini_batch_size=30,
                               mini_batch_seed=4).fit(fresh_net(), x, y)
    assert list(result[0]) == expected.loss
    loader = DataLoader(TensorDataset(x, y), batch_size=30, shuffle=False)
    loss, _, mu, _ = lmbench.train_distributed_levenberg(
        fresh_net(), loader, nn.MSELoss(), max_epochs=3, min_error=0.0, engine="streaming",
        mini_batch=True,
    )
    assert len(loss) == 4 and loss[-1] < loss[0] / 10
    assert mu[-1] != mu[0]


def test_the_shipped_trainer_config_reaches_the_settings():
    lm_yaml = OmegaConf.load(Path(lmbench.__file__).parent / "conf" / "trainer" / "lm.yaml")
    assert lm_yaml.mini_batch_size is None  # full batch unless asked
    assert trainer_settings(lm_yaml, "regression").mini_batch_size is None
    lm_yaml.mini_batch_size, lm_yaml.mini_batch_seed = 64, 3  # trainer.mini_batch_size=64
    settings = trainer_settings(lm_yaml, "regression")
    assert (settings.mini_batch_size, settings.mini_batch_seed) == (64, 3)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_batch_size_is_refused(bad):
    with pytest.raises(ValueError, match="batch_size"):
        check_batch_size(bad)
    with pytest.raises(ValueError, match="batch_size"):
        MiniBatchLevenbergMarquardt(fresh_net(), batch_size=bad)


def test_bad_settings_are_refused_with_the_knob_named():
    with pytest.raises(ValueError, match="mini_batch_size must be >= 1"):
        TrainerSettings(mini_batch_size=0)
    with pytest.raises(ValueError, match="mini_batch_size needs the in_memory or streaming"):
        TrainerSettings(mini_batch_size=10, engine="cache", temp_folder="t")
    with pytest.raises(ValueError, match="cache engine"):
        MiniBatchLevenbergMarquardt(fresh_net(), batch_size=8, solver="cg", temp_folder="t")
    x, y = curve()
    trainer = SETTINGS.with_(mini_batch_size=10).build(fresh_net())
    with pytest.raises(ValueError, match="loader's own batches are the LM steps"):
        trainer.fit_loader(DataLoader(TensorDataset(x, y), batch_size=10))


def run_worker(*args, expect_ok=True):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=240)
    assert (done.returncode == 0) == expect_ok, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_two_gloo_ranks_take_the_steps_of_one_process_on_the_union_batches(tmp_path):
    single, pair = tmp_path / "single.pt", tmp_path / "pair.pt"
    run_worker(str(WORKER), "--out", str(single))
    run_worker("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(WORKER), "--out", str(pair))
    one, two = torch.load(single), torch.load(pair)
    assert one["loss"][-1] < one["loss"][0] / 10
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-9)
    assert two["mu"] == pytest.approx(one["mu"], rel=1e-12)
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-9, atol=1e-12)
    out = run_worker("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                     str(WORKER), "--extra-on-last-rank", "--out", str(tmp_path / "x.pt"),
                     expect_ok=False)
    assert "ran out of batches first" in out
