"""`lmbench-run --help` describes the app, its config groups and examples."""

import subprocess
import sys


def test_help_lists_groups_and_examples():
    done = subprocess.run(
        [sys.executable, "-m", "lmbench.harness.run", "--help"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    out = done.stdout
    assert out.startswith("lmbench-run: train and benchmark networks with Levenberg-Marquardt")
    for group in ("dataset:", "trainer:", "job:", "experiment:", "model:", "tracking:"):
        assert group in out
    assert "lmbench-run +experiment=quick" in out
