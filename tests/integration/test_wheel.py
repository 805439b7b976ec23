"""A wheel built from pyproject.toml runs `lmbench-run` outside the repository: the configs and
named experiments ship inside the package."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(command, cwd=None, env=None):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def test_wheel_runs_a_job_from_an_empty_folder(tmp_path):
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(REPO)])
    (wheel,) = wheels.glob("lmbench-*.whl")
    # A fresh environment: the wheel is its only lmbench; the dependencies (torch, hydra, ...)
    # come from this environment's site-packages through a path file, so nothing downloads.
    fresh = tmp_path / "fresh"
    run([sys.executable, "-m", "venv", "--without-pip", str(fresh)])
    python = fresh / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                    ).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # no PYTHONPATH: a checkout on it would count as lmbench already installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)], env=env)
    empty = tmp_path / "empty"
    empty.mkdir()
    where = run([str(python), "-c", "import lmbench; print(lmbench.__file__)"], empty, env)
    assert str(fresh) in where
    out = run([str(fresh / "bin" / "lmbench-run"), "dataset=iris", "trainer.max_epochs=2",
               "tracking=none", "+experiment=quick", "--cfg", "job"], empty, env)
    assert "mu_init" in out  # a named experiment composes from the installed package
    out = run([str(fresh / "bin" / "lmbench-run"), "dataset=iris", "trainer.max_epochs=2",
               "tracking=none"], empty, env)
    assert "lm on iris: accuracy=" in out
