"""Matrix-free LM end to end: the same steps as Cholesky LM, every loss, data parallelism,
the seed API, the automatic engine choice and its input errors."""

import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lmbench.compat import train_distributed_levenberg, train_levenberg
from lmbench.core.engines import plan_engine, resolve_auto
from lmbench.core.losses import LOSS_NAMES
from lmbench.core.settings import TrainerSettings
from lmbench.core.trainer import LevenbergMarquardt


def small_problem(loss: str, rows: int = 48):
    torch.manual_seed(0)
    x = torch.randn(rows, 3, dtype=torch.float64)
    y = torch.stack([torch.sin(x[:, 0]) * x[:, 1], x[:, 2] ** 2 - 0.5], dim=1)
    if loss in ("cross_entropy", "sqrt_cross_entropy", "bce"):
        y = nn.functional.one_hot(y.argmax(dim=1), 2).double()
    return x, y


def fresh_model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_loss_history_matches_cholesky_lm(loss):
    """float64, CG to its 1e-10 relative residual: the same trials are accepted and the loss
    histories agree to 1e-7 relative (observed ~1e-12); Marquardt scaling for cross-entropy and
    the gain-ratio rule (which reads the predicted reduction) for bce."""
    x, y = small_problem(loss)
    damping = {"cross_entropy": "marquardt", "bce": "gain_ratio"}.get(loss, "seed")
    base = TrainerSettings(max_epochs=3, min_error=None, form="primal", loss=loss,
                           damping=damping, chunk_rows=24)
    reference = base.fit(fresh_model(), x, y)
    free = base.with_(engine="matrix_free", batch_size=24).fit(fresh_model(), x, y)
    assert free.form == "matrix_free" and reference.form == "primal"
    assert free.trials == reference.trials
    assert free.loss == pytest.approx(reference.loss, rel=1e-7)
    assert free.loss[-1] < free.loss[0]


def test_truncated_float32_cg_trains_with_checkpoints_callbacks_and_resume(tmp_path):
    x, y = small_problem("mse", rows=64)
    x, y = x.float(), y.float()
    seen = []
    settings = TrainerSettings(engine="matrix_free", max_epochs=3, min_error=None,
                               cg_max_iter=3, damping="gain_ratio")
    model = fresh_model().float()
    first = settings.fit(model, x, y, checkpoint_dir=tmp_path,
                         callbacks=[lambda info: seen.append(info.epoch)])
    assert seen == [0, 1, 2, 3]
    assert first.loss[-1] < first.loss[0] and first.stop_reason == "max_epochs"
    trainer = settings.with_(max_epochs=5).build(model)
    resumed = trainer.fit(x, y, resume_from=tmp_path / "epoch_0003.pt")
    assert resumed.loss[:4] == first.loss and len(resumed.loss) == 6
    assert resumed.loss[-1] <= first.loss[-1]


def test_seed_api_runs_matrix_free_from_tensors_and_loaders(tmp_path):
    x, y = small_problem("mse", rows=40)
    dense = train_levenberg(fresh_model(), x, y, nn.MSELoss(), max_epochs=3, min_error=0.0)
    free = train_levenberg(fresh_model(), x, y, nn.MSELoss(), max_epochs=3, min_error=0.0,
                           engine="matrix_free")
    assert free.history.form == "matrix_free"
    assert free[0] == pytest.approx(dense[0], rel=1e-7)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    streamed = train_distributed_levenberg(fresh_model(), loader, nn.MSELoss(), max_epochs=3,
                                           min_error=0.0, engine="matrix_free",
                                           temp_folder=tmp_path / "unused")
    assert streamed.history.form == "matrix_free"
    assert streamed[0] == pytest.approx(dense[0], rel=1e-7)
    assert not (tmp_path / "unused").exists()  # nothing written to disk


def test_auto_picks_matrix_free_when_nothing_else_fits_a_tiny_budget(tmp_path):
    model = fresh_model()
    n_params = sum(p.numel() for p in model.parameters())
    tiny = 4 * n_params  # not J^T J, not the cache's vectors
    settings = TrainerSettings(engine="auto", memory_budget_bytes=tiny, max_epochs=2,
                               min_error=None)
    assert settings.resolved_engine(model) == "matrix_free"
    # a folder for the cache does not help when the budget cannot hold its vectors either
    assert settings.with_(temp_folder=str(tmp_path)).resolved_engine(model) == "matrix_free"
    # ample memory, but no folder (or no disk) for the Jacobian cache once J^T J does not fit
    assert resolve_auto(10**6, 4, 10**9) == "cache"
    assert resolve_auto(10**6, 4, 10**9, disk_bytes=0) == "matrix_free"
    assert resolve_auto(10**6, 4, 10**9, disk_bytes=10**9, n_rows=10**4) == "matrix_free"
    assert resolve_auto(1_000, 4, 10**9, disk_bytes=0) == "streaming"
    x, y = small_problem("mse", rows=30)
    history = settings.fit(model, x, y)
    assert history.form == "matrix_free" and history.loss[-1] < history.loss[0]


def test_bad_input_errors():
    with pytest.raises(ValueError, match="matrix_free"):
        plan_engine("matrix-free")
    with pytest.raises(ValueError, match="engine must be one of"):
        TrainerSettings(engine="jvp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="solver must be 'cholesky', 'cg' or 'matrix_free'"):
        LevenbergMarquardt(fresh_model(), solver="cgs")  # type: ignore[arg-type]
    x, y = small_problem("mse", rows=8)
    with pytest.raises(ValueError, match="'in_memory' or 'matrix_free'"):
        train_levenberg(fresh_model(), x, y, nn.MSELoss(), engine="cache")
    with pytest.raises(ValueError, match="'cache' or 'matrix_free'"):
        train_distributed_levenberg(fresh_model(), [(x, y)], nn.MSELoss(), engine="dense")
    with pytest.raises(ValueError, match="cg_max_iter must be >= 1"):
        TrainerSettings(engine="matrix_free", cg_max_iter=0)
    with pytest.raises(ValueError, match="y has shape"):
        TrainerSettings(engine="matrix_free").fit(fresh_model(), x, y[:, :1].repeat(1, 3))


def run(command, timeout=300):
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_two_gloo_ranks_match_one_process(tmp_path, loss):
    args = ["--rows", "120", "--features", "4", "--hidden", "6", "--epochs", "3",
            "--dtype", "float64", "--engine", "matrix_free", "--loss", loss]
    single, pair = tmp_path / "single.pt", tmp_path / "pair.pt"
    run([sys.executable, "-m", "lmbench.examples.data_parallel", *args, "--out", str(single)])
    out = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "lmbench.examples.data_parallel", *args,
               "--out", str(pair)])
    assert "world=2" in out
    one, two = torch.load(single), torch.load(pair)
    assert one["loss"][-1] < one["loss"][0]
    # sums over two shards add in another order: agreement to rounding, not bit for bit
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-6)
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-6, atol=1e-9)


def test_shipped_hydra_config_selects_matrix_free():
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    import lmbench
    import lmbench.harness  # noqa: F401  (registers the trainer config schemas)
    from lmbench.harness.runners.lm import trainer_settings

    conf = Path(lmbench.__file__).parent / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose(config_name="config", overrides=["trainer=lm_matrix_free"])
    settings = trainer_settings(cfg.trainer, "regression")
    assert settings.engine == "matrix_free" and settings.cg_max_iter == 50
    assert plan_engine(settings.engine).solver == "matrix_free"
