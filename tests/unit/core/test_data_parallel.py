"""Two gloo processes started by torchrun take the same steps as one process on all rows."""

import subprocess
import sys

import pytest
import torch

ARGS = ["--rows", "600", "--features", "5", "--hidden", "12", "--epochs", "3",
        "--dtype", "float64"]


def run(command, timeout=240):
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_gloo_ranks_match_one_process(tmp_path):
    single = tmp_path / "single.pt"
    pair = tmp_path / "pair.pt"
    run([sys.executable, "-m", "lmbench.examples.data_parallel", *ARGS, "--out", str(single)])
    out = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "lmbench.examples.data_parallel", *ARGS,
               "--out", str(pair)])
    assert "world=2" in out
    one, two = torch.load(single), torch.load(pair)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-6)
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("loss", ["cross_entropy", "bce", "huber", "sqrt_cross_entropy"])
def test_two_gloo_ranks_match_one_process_for_every_loss(tmp_path, loss):
    args = [*ARGS, "--loss", loss]
    single, pair = tmp_path / "single.pt", tmp_path / "pair.pt"
    run([sys.executable, "-m", "lmbench.examples.data_parallel", *args, "--out", str(single)])
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "lmbench.examples.data_parallel", *args, "--out", str(pair)])
    one, two = torch.load(single), torch.load(pair)
    assert one["loss"][-1] < one["loss"][0]
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-6)
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-6, atol=1e-9)
