"""Checkpoints that cannot run code or be silently wrong, and clear errors for bad arguments."""

import errno
import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lmbench
from lmbench.core import (
    DiskSpaceError,
    GainRatioDamping,
    InvalidInputError,
    LevenbergMarquardt,
    StoppingRules,
)
from lmbench.core import cache as cache_module
from lmbench.core.checkpoint import load_checkpoint
from lmbench.core.checks import check_temp_folder
from lmbench.core.errors import CheckpointError, TempFolderError
from lmbench.core.regularization import Regularization


def data(n=32):
    x = torch.randn(n, 2)
    return x, (x[:, :1] * x[:, 1:]).tanh()


def net(hidden=5):
    return nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))


def trained_checkpoint(folder, model=None, epochs=2):
    x, y = data()
    LevenbergMarquardt(model or net(), stopping=StoppingRules(max_epochs=epochs, min_error=None),
                       checkpoint_dir=folder).fit(x, y)
    return folder / f"epoch_{epochs:04d}.pt"


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def resume(model, path):
    x, y = data()
    LevenbergMarquardt(model, stopping=StoppingRules(max_epochs=4, min_error=None)).fit(
        x, y, resume_from=path)


# ------------------------------------------------------------------ checkpoints
def test_checkpoint_loads_with_weights_only_and_carries_a_checksum(tmp_path):
    path = trained_checkpoint(tmp_path)
    raw = torch.load(path, weights_only=True)
    assert len(raw["checksum"]) == 64 and raw["format"].startswith("lmbench-checkpoint")
    assert load_checkpoint(path)["optimizer_state"]["epoch"] == 2


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_crafted_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model_state": {}, "optimizer_state": _Payload(marker), "history": {}}, path)
    model = net()
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="could run code"):
        resume(model, path)
    assert not marker.exists()
    assert_unchanged(model, before)


def test_flipped_bit_is_detected_and_the_model_is_untouched(tmp_path):
    trained = net()
    path = trained_checkpoint(tmp_path, trained)
    weight = trained[0].weight.detach().contiguous().numpy().tobytes()
    blob = bytearray(path.read_bytes())
    at = bytes(blob).find(weight)
    assert at >= 0
    blob[at + 5] ^= 0x10
    path.write_bytes(bytes(blob))
    model = net()
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="corrupted: the SHA-256"):
        resume(model, path)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (os.urandom(4096), "not a PyTorch file"),
        ("state_dict", "plain state_dict .* MLflow 'weights'"),
        ([1, 2], "holds a list"),
        ({"model_state": {}}, "lacks"),
    ],
)
def test_foreign_files_say_what_they_are(tmp_path, content, message):
    path = tmp_path / "file.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "state_dict":
        torch.save(net().state_dict(), path)
    else:
        torch.save(content, path)
    model = net()
    before = snapshot(model)
    with pytest.raises(CheckpointError, match=message) as info:
        resume(model, path)
    assert "expected an lmbench checkpoint" in str(info.value)
    assert_unchanged(model, before)


def test_other_architecture_names_the_mismatch_and_leaves_the_model(tmp_path):
    path = trained_checkpoint(tmp_path, net(hidden=5))
    model = net(hidden=7)
    before = snapshot(model)
    with pytest.raises(CheckpointError, match=r"another architecture.*0\.weight: checkpoint "
                                              r"\(5, 2\) vs model \(7, 2\)"):
        resume(model, path)
    assert_unchanged(model, before)
    other = nn.Sequential(nn.Linear(2, 1))
    with pytest.raises(CheckpointError, match=r"unexpected 2\.weight"):
        resume(other, path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resume(net(), tmp_path / "nope.pt")


def resume_with(path, model=None, x=None, y=None, **options):
    """Resume ``path`` for two more epochs with the trainer ``options`` on (x, y)."""
    allow = options.pop("allow_changed_setup", False)
    default_x, default_y = data()
    trainer = LevenbergMarquardt(model or net(), **options,
                                 stopping=StoppingRules(max_epochs=4, min_error=None))
    return trainer.fit(default_x if x is None else x, default_y if y is None else y,
                       resume_from=path, allow_changed_setup=allow)


@pytest.mark.parametrize(("options", "message"), [
    ({"loss": "huber"}, r"loss: checkpoint mse vs now huber\(delta=1\.0\)"),
    ({"damping": GainRatioDamping()}, r"damping: checkpoint SeedDamping\(factor=10\.0, .*"
                                      r"scale_by_diagonal=False.*\) vs now GainRatioDamping"),
    ({"regularization": Regularization(weight_decay=0.1)},
     r"regularization: checkpoint Regularization\(weight_decay=0\.0.* vs now "
     r"Regularization\(weight_decay=0\.1"),
])
def test_resume_with_another_loss_damping_or_penalty_is_refused(tmp_path, options, message):
    torch.manual_seed(0)
    path = trained_checkpoint(tmp_path)
    model = net()
    before = snapshot(model)
    with pytest.raises(CheckpointError, match=rf"another setup than this run: {message}.*"
                                              r"allow_changed_setup=True"):
        resume_with(path, model, **options)
    assert_unchanged(model, before)
    history = resume_with(path, model, allow_changed_setup=True, **options)
    assert history.epochs == 4  # the explicit request continues from the checkpoint


def test_resume_on_other_rows_is_refused_and_same_rows_in_any_order_resume(tmp_path):
    torch.manual_seed(0)
    x, y = data()
    LevenbergMarquardt(net(), stopping=StoppingRules(max_epochs=2, min_error=None),
                       checkpoint_dir=tmp_path).fit(x, y)
    path = tmp_path / "epoch_0002.pt"
    with pytest.raises(CheckpointError, match=r"training rows: now 31 rows instead of 32"):
        resume_with(path, x=x[1:], y=y[1:])
    with pytest.raises(CheckpointError, match=r"training rows: now 32 rows again, but the sum"):
        resume_with(path, x=x + 1.0, y=y)
    shuffled = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    history = LevenbergMarquardt(net(), stopping=StoppingRules(max_epochs=4, min_error=None)
                                 ).fit_loader(shuffled, resume_from=path)
    assert history.epochs == 4
    other = DataLoader(TensorDataset(x * 2, y), batch_size=8)
    with pytest.raises(CheckpointError, match=r"training rows: now 32 rows again"):
        LevenbergMarquardt(net(), stopping=StoppingRules(max_epochs=4, min_error=None)
                           ).fit_loader(other, resume_from=path)


def test_checkpoint_without_a_setup_record_resumes_with_a_warning(tmp_path):
    path = trained_checkpoint(tmp_path)
    payload = torch.load(path, weights_only=True)
    assert payload.pop("setup")["loss"] == "mse"
    torch.save(payload, path)
    with pytest.warns(UserWarning, match="records no training setup"):
        history = resume_with(path, loss="huber")
    assert history.epochs == 4


# ------------------------------------------------------------------ devices and inputs
def test_cuda_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    x, y = data()
    model = net()
    with pytest.raises(InvalidInputError, match=r"device='cuda:0' but CUDA is not available"):
        lmbench.train_levenberg(model, x, y, nn.MSELoss(), device="cuda:0", verbose=False)
    assert next(model.parameters()).device.type == "cpu"


def test_model_on_meta_device():
    with pytest.raises(InvalidInputError, match="'meta' device.*to_empty"):
        LevenbergMarquardt(nn.Linear(2, 1, device="meta"))


def test_wrong_number_of_features_names_shapes():
    x, y = data()
    x3 = torch.cat([x, x[:, :1]], dim=1)
    with pytest.raises(InvalidInputError, match=r"x has 3 feature.*0 \(Linear\) takes 2 "
                                                r"features.*\(n_samples, 2\)") as info:
        LevenbergMarquardt(net()).fit(x3, y)
    assert isinstance(info.value.__cause__, RuntimeError)
    conv = nn.Sequential(nn.Conv1d(3, 2, 2), nn.Flatten(), nn.Linear(6, 1))
    with pytest.raises(InvalidInputError, match=r"Conv1d\) takes 3 channels"):
        LevenbergMarquardt(conv).fit(torch.randn(4, 2, 4), torch.randn(4, 1))


def test_frozen_layer_of_another_dtype_is_named_as_the_cause():
    x, y = data()
    model = nn.Sequential(nn.Linear(2, 5).double(), nn.Tanh(), nn.Linear(5, 1))
    model[0].requires_grad_(False)  # frozen float64 layer, float32 trainable head
    with pytest.raises(InvalidInputError, match=r"dtypes differ: x is float32.*0\.weight "
                                                r"\(float64\).*model\.float\(\)") as info:
        LevenbergMarquardt(model).fit(x, y)
    assert "feature" not in str(info.value)  # the width is right: it is not the cause
    # a wrong width is still reported as such, whatever the dtypes
    with pytest.raises(InvalidInputError, match=r"x has 3 feature.*takes 2 features"):
        LevenbergMarquardt(model).fit(torch.cat([x, x[:, :1]], dim=1), y)
    model.float()
    LevenbergMarquardt(model, stopping=StoppingRules(max_epochs=1, min_error=None)).fit(x, y)


def test_loader_of_x_only_and_empty_loader():
    x, y = data()
    only_x = DataLoader(TensorDataset(x), batch_size=8)
    with pytest.raises(InvalidInputError, match=r"x_loader must yield \(x, y\) pairs.*"
                                                r"TensorDataset\(x, y\)"):
        lmbench.train_distributed_levenberg(net(), only_x, nn.MSELoss(), engine="streaming",
                                            verbose=False)
    empty = DataLoader(TensorDataset(x[:0], y[:0]), batch_size=8)
    with pytest.raises(InvalidInputError, match="x_loader yielded no batches"):
        lmbench.train_distributed_levenberg(net(), empty, nn.MSELoss(), engine="streaming",
                                            verbose=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_error": -1.0}, "min_error must be a loss >= 0"),
        ({"min_error": math.nan}, "min_error must be a loss >= 0"),
        ({"demping_coef": math.inf}, "demping_coef / factor must be a finite number > 1"),
        ({"demping_coef": math.nan}, "demping_coef / factor must be a finite number > 1"),
        ({"max_epochs": 2.5}, r"max_epochs must be a whole number.*max_epochs=2"),
        ({"mu_max": 0.0}, "mu_max must be > 0"),
    ],
)
def test_bad_seed_arguments_are_refused_before_training(kwargs, message):
    x, y = data()
    model = net()
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        lmbench.train_levenberg(model, x, y, nn.MSELoss(), verbose=False, **kwargs)
    assert_unchanged(model, before)


def test_memory_budget_must_be_positive():
    x, y = data()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    for budget in (0, -5):
        with pytest.raises(ValueError, match="memory_budget_bytes must be > 0"):
            lmbench.train_distributed_levenberg(net(), loader, nn.MSELoss(),
                                                memory_budget_bytes=budget, verbose=False)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc and /sys")
@pytest.mark.parametrize("folder", ["/proc/lmbench-temp", "/sys/lmbench-temp"])
def test_temp_folder_on_a_pseudo_filesystem(folder):
    with pytest.raises(TempFolderError, match="pseudo-filesystem.*real disk"):
        check_temp_folder(folder)
    x, y = data()
    with pytest.raises(TempFolderError, match="temp_folder="):
        lmbench.train_distributed_levenberg(
            net(), DataLoader(TensorDataset(x, y), batch_size=8), nn.MSELoss(),
            temp_folder=folder, engine="cache", verbose=False)


def test_temp_folder_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(TempFolderError, match="is a file"):
        check_temp_folder(tmp_path / "f")


def test_full_disk_while_caching_is_a_disk_space_error(tmp_path, monkeypatch):
    def full(fh, array):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "write_array", full)
    x, y = data()
    temp = tmp_path / "temp"
    with pytest.raises(DiskSpaceError, match=r"disk filled up.*needed .* MiB in .*temp.*"
                                             r"needs about .* GiB") as info:
        lmbench.train_distributed_levenberg(
            net(), DataLoader(TensorDataset(x, y), batch_size=8), nn.MSELoss(),
            temp_folder=temp, engine="cache", verbose=False)
    assert isinstance(info.value.__cause__, OSError)
    assert not temp.exists()  # the cache is removed even then
