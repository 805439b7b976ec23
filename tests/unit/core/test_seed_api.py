"""The seed-compatible API: names, defaults, return shapes, checkpoints, callbacks, min_error."""

import inspect
import math
import pickle

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lmbench
from lmbench.core import LevenbergMarquardt, StoppingRules
from lmbench.core.checkpoint import latest_checkpoint, load_checkpoint


def regression_data(n=64):
    x = torch.randn(n, 3)
    y = torch.stack([x[:, 0] * x[:, 1], torch.sin(x[:, 2])], dim=1)
    return x, y


def small_net():
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))


def test_signature_matches_the_seed():
    params = inspect.signature(lmbench.train_levenberg).parameters
    assert list(params)[:12] == [
        "model", "x", "y", "loss_fn", "val_loader", "snap_folder", "mu_init", "min_error",
        "max_epochs", "inner_steps", "demping_coef", "device",
    ]
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    assert defaults == {
        "val_loader": None, "snap_folder": None, "mu_init": 10, "min_error": 1e-2,
        "max_epochs": 10, "inner_steps": 10, "demping_coef": 10, "device": None,
        "metrics_callbacks": None, "metric_callbacks": None, "mu_max": 1e10, "verbose": None,
        "return_history": False, "batch_size": None, "shuffle_seed": 0, "engine": "in_memory",
        "weight_decay": 0.0, "regularization": None,  # new keywords: no penalty by default
    }


def test_returns_four_lists_with_initial_values_first():
    x, y = regression_data()
    model = small_net()
    with torch.no_grad():
        initial = float(nn.MSELoss()(model(x), y))
    loss, val, mu, times = lmbench.train_levenberg(
        model, x, y, nn.MSELoss(), min_error=0.0, max_epochs=5
    )
    assert all(isinstance(seq, list) for seq in (loss, val, mu, times))
    assert len(loss) == len(mu) == len(times) == 6
    assert val == []  # no validation set
    assert loss[0] == pytest.approx(initial)
    assert mu[0] == 10 and times[0] == 0.0
    assert loss[-1] < loss[0]
    assert all(b <= a for a, b in zip(loss, loss[1:], strict=False))  # never increases


def test_min_error_is_checked_on_validation_when_given():
    x, y = regression_data()
    xv, yv = regression_data(32)
    yv = yv + 10.0  # validation can never reach the target
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=16)
    loss, val, _, _ = lmbench.train_levenberg(
        small_net(), x, y, nn.MSELoss(), val_loader=val_loader, min_error=50.0, max_epochs=4
    )
    assert len(val) == len(loss) == 5  # train loss < 50 at once, but validation is > 50
    loss2, val2, _, _ = lmbench.train_levenberg(
        small_net(), x, y, nn.MSELoss(), val_loader=val_loader, min_error=1000.0, max_epochs=4
    )
    # below min_error from the start: as the original, one epoch is trained before stopping
    assert len(loss2) == 2 and val2[0] < 1000.0


def test_snap_folder_gets_a_loadable_checkpoint_per_epoch(tmp_path):
    x, y = regression_data()
    model = small_net()
    lmbench.train_levenberg(model, x, y, nn.MSELoss(), snap_folder=tmp_path, min_error=0.0,
                            max_epochs=3)
    files = sorted(p.name for p in tmp_path.glob("epoch_*.pt"))
    assert files == ["epoch_0000.pt", "epoch_0001.pt", "epoch_0002.pt", "epoch_0003.pt"]
    snapshots = sorted(p.name for p in tmp_path.glob("epoch_*.pth"))
    assert snapshots == [f"epoch_{i:06d}.pth" for i in range(4)]  # the seed's plain state_dicts
    seed_style = small_net()
    seed_style.load_state_dict(torch.load(tmp_path / "epoch_000003.pth"))
    torch.testing.assert_close(seed_style(x), model(x))
    payload = load_checkpoint(latest_checkpoint(tmp_path))
    restored = small_net()
    restored.load_state_dict(payload["model_state"])
    torch.testing.assert_close(restored(x), model(x))
    assert payload["optimizer_state"]["epoch"] == 3
    assert payload["optimizer_state"]["mu"] > 0


def test_resume_from_checkpoint_continues_the_same_trajectory(tmp_path):
    x, y = regression_data()
    torch.manual_seed(5)
    straight = small_net().double()
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    full = LevenbergMarquardt(straight, stopping=StoppingRules(max_epochs=6, min_error=None))
    full_history = full.fit(x, y)

    first = small_net().double()
    first.load_state_dict(init)
    LevenbergMarquardt(first, stopping=StoppingRules(max_epochs=3, min_error=None),
                       checkpoint_dir=tmp_path).fit(x, y)
    resumed = small_net().double()
    resumed_history = LevenbergMarquardt(
        resumed, stopping=StoppingRules(max_epochs=6, min_error=None)
    ).fit(x, y, resume_from=tmp_path / "epoch_0003.pt")
    assert resumed_history.loss == pytest.approx(full_history.loss, rel=1e-9)
    torch.testing.assert_close(resumed(x.double()), straight(x.double()))


def test_metrics_callbacks_are_recorded_each_epoch():
    x, y = regression_data()
    seen = []
    history = LevenbergMarquardt(
        small_net(),
        stopping=StoppingRules(max_epochs=3, min_error=None),
        callbacks={"first_weight": lambda m: m[0].weight[0, 0].item()},
    ).fit(x, y)
    assert len(history.metrics["first_weight"]) == 4
    lmbench.train_levenberg(
        small_net(), x, y, nn.MSELoss(), max_epochs=2, min_error=0.0,
        metrics_callbacks=[lambda info: seen.append(info.epoch)],
    )
    assert seen == [0, 1, 2]


def test_callback_can_stop_training():
    x, y = regression_data()
    history = LevenbergMarquardt(
        small_net(), stopping=StoppingRules(max_epochs=10, min_error=None),
        callbacks=[lambda info: info.epoch >= 2],
    ).fit(x, y)
    assert history.stop_reason == "callback" and history.epochs == 2


def test_history_pickle_and_training_report(tmp_path):
    x, y = regression_data()
    history = LevenbergMarquardt(
        small_net(), stopping=StoppingRules(max_epochs=3, min_error=None)
    ).fit(x, y, val=regression_data(16))
    path = history.save_pickle(tmp_path / "run.pkl")
    with path.open("rb") as fh:
        data = pickle.load(fh)
    assert set(data) == {"loss", "val", "mu", "time"} and len(data["val"]) == 4
    out = tmp_path / "report.png"
    fig = lmbench.plot_train_report(path, out=out)
    assert out.stat().st_size > 10_000
    assert len(fig.axes) == 4
    assert [ax.get_yscale() for ax in fig.axes] == ["log"] * 4


def test_table_loader_feeds_a_dataloader():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    y = np.eye(2)[rng.integers(0, 2, size=50)]
    loader = DataLoader(lmbench.TableLoader(x, y, device="cpu"), batch_size=20, shuffle=False)
    xb, yb = next(iter(loader))
    assert xb.shape == (20, 4) and yb.shape == (20, 2) and xb.dtype == torch.float32
    assert lmbench.get_weights_count(small_net()) == 3 * 8 + 8 + 8 * 2 + 2
    assert math.isfinite(float(xb.sum()))


def test_seed_metric_callbacks_spelling_and_zero_argument_functions():
    x, y = regression_data()
    model = small_net()
    calls = []

    def first_bias():
        calls.append(1)
        return model[0].bias[0].item()

    result = lmbench.train_levenberg(model, x, y, nn.MSELoss(), max_epochs=2, min_error=0.0,
                                     metric_callbacks=[first_bias], verbose=False)
    assert len(result.metrics["first_bias"]) == 3 == len(calls)
    assert result.metrics["first_bias"][-1] == model[0].bias[0].item()
    loss, val, mu, times = result  # still the seed's 4-tuple
    assert result.history.loss == loss
    mapped = lmbench.train_levenberg(
        small_net(), x, y, nn.MSELoss(), max_epochs=2, min_error=0.0, verbose=False,
        metrics_callbacks={"w": lambda m: m[0].weight[0, 0].item(), "const": lambda: 1.0},
    )
    assert len(mapped.metrics["w"]) == 3 and mapped.metrics["const"] == [1.0] * 3
    with pytest.raises(ValueError, match="not both"):
        lmbench.train_levenberg(small_net(), x, y, nn.MSELoss(), metrics_callbacks={},
                                metric_callbacks={})


def test_return_history_gives_five_values():
    x, y = regression_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    loss, val, mu, times, history = lmbench.train_distributed_levenberg(
        small_net(), loader, nn.MSELoss(), max_epochs=2, min_error=0.0, engine="streaming",
        return_history=True, verbose=False, metric_callbacks={"one": lambda: 1})
    assert history.loss == loss and history.mu == mu and len(times) == 3
    assert history.metrics == {"one": [1.0, 1.0, 1.0]}


def test_verbose_shows_a_progress_bar(capsys):
    x, y = regression_data()
    lmbench.train_levenberg(small_net(), x, y, nn.MSELoss(), max_epochs=2, min_error=0.0,
                            verbose=True)
    err = capsys.readouterr().err
    assert "train_levenberg" in err and "loss=" in err and "mu=" in err and "trials=" in err
    lmbench.train_levenberg(small_net(), x, y, nn.MSELoss(), max_epochs=2, min_error=0.0,
                            verbose=False)
    assert capsys.readouterr().err == ""


def test_at_least_one_epoch_before_min_error_and_mu_max():
    x, y = regression_data()
    loss, _, _, _, history = lmbench.train_levenberg(
        small_net(), x, y, nn.MSELoss(), min_error=1e6, max_epochs=5, verbose=False,
        return_history=True)
    assert len(loss) == 2 and history.stop_reason == "min_error"
    engine_history = LevenbergMarquardt(
        small_net(), stopping=StoppingRules(min_error=1e6, max_epochs=5)).fit(x, y)
    assert engine_history.epochs == 0  # the engine itself still stops at once
    *_, history = lmbench.train_levenberg(
        small_net(), x, y, nn.MSELoss(), min_error=0.0, max_epochs=5, mu_max=0.5,
        verbose=False, return_history=True)
    assert history.stop_reason == "mu_max" and history.epochs == 1
