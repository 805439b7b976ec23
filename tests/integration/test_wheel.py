"""A wheel built from pyproject.toml works outside the repository: `lmbench-run` and the Python
API (datasets, estimators, plots) find the configs that ship inside the package."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from lmbench.data import list_datasets

REPO = Path(__file__).resolve().parents[2]

#: The Python API as a new user calls it after `pip install`, from an empty folder.
API_SCRIPT = """
import lmbench
from lmbench.data import list_datasets, prepare_dataset
from lmbench.estimators import LMClassifier

names = list_datasets()
assert "wine" in names and "iris" in names, names
ds = prepare_dataset("wine")
clf = LMClassifier(max_epochs=5, random_state=0).fit(ds.x_train, ds.y_train)
lmbench.plot_train_report(clf.history_, "report.png")
print(f"{len(names)} datasets; wine accuracy={clf.score(ds.x_test, ds.y_test):.3f}")
"""


def run(command, cwd=None, env=None):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(fresh environment, its environment variables, an empty folder): the wheel installed."""
    tmp_path = tmp_path_factory.mktemp("wheel")
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
    return fresh, env, empty


def test_wheel_runs_a_job_from_an_empty_folder(installed):
    fresh, env, empty = installed
    out = run([str(fresh / "bin" / "lmbench-run"), "dataset=iris", "trainer.max_epochs=2",
               "tracking=none", "+experiment=quick", "--cfg", "job"], empty, env)
    assert "mu_init" in out  # a named experiment composes from the installed package
    out = run([str(fresh / "bin" / "lmbench-run"), "dataset=iris", "trainer.max_epochs=2",
               "tracking=none"], empty, env)
    assert "lm on iris: accuracy=" in out


def test_wheel_python_api_from_an_empty_folder(installed):
    fresh, env, empty = installed
    folder = empty / "api"
    folder.mkdir()
    out = run([str(fresh / "bin" / "python"), "-c", API_SCRIPT], folder, env)
    # every dataset config of the checkout ships in the wheel
    assert f"{len(list_datasets())} datasets; wine accuracy=" in out
    assert float(out.rsplit("accuracy=", 1)[1].split()[0]) > 0.8
    assert (folder / "report.png").stat().st_size > 0
