"""lmbench-report, lmbench-compare and lmbench-run fail alike: exit 2, one line
``prog: reason``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lmbench.harness.compare import main as compare_main
from lmbench.harness.report import main as report_main
from lmbench.tracking import RunTracker


@pytest.fixture
def store(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with RunTracker("quick-run", experiment_name="quick", tracking_uri=uri):
        pass
    return uri


@pytest.mark.parametrize(("prog", "main"), [("lmbench-compare", compare_main),
                                            ("lmbench-report", report_main)])
def test_an_unknown_experiment_exits_2_with_one_line(
    prog, main, store: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--experiment", "nosuch", "--tracking-uri", store]
    if prog == "lmbench-report":
        argv += ["--out", str(tmp_path / "report")]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: ") and "nosuch" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_lmbench_compare_names_a_broken_store(tmp_path: Path, capsys) -> None:
    db = tmp_path / "broken.db"
    db.write_text("not sqlite\n")
    with pytest.raises(SystemExit) as info:
        compare_main(["--experiment", "quick", "--tracking-uri", f"sqlite:///{db}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lmbench-compare: ") and str(db) in err and err.count("\n") == 1


@pytest.mark.parametrize(("overrides", "names"), [
    (["trainer.mu_init=-1"], "trainer.mu_init"),
    (["device=cuda:99"], "device='cuda:99'"),
    (["dataset=penguins"], "pip install palmerpenguins"),
    (["trainer=xgboost", "tuning.n_samples=-1"], "tuning.n_samples"),
])
def test_lmbench_run_refuses_a_bad_config_in_one_line_before_any_run(
    overrides: list[str], names: str, tmp_path: Path
) -> None:
    # palmerpenguins made uninstallable: a package of that name that fails to import
    shadow = tmp_path / "shadow" / "palmerpenguins"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed')\n")
    db = tmp_path / "mlflow.db"
    path = os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-m", "lmbench.harness.run", *overrides],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.startswith("lmbench-run: ") and names in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr + done.stdout
    # no run, FAILED or otherwise: the store was never opened
    assert not db.exists() or not MlflowClient(f"sqlite:///{db}").search_runs(
        [e.experiment_id for e in MlflowClient(f"sqlite:///{db}").search_experiments()])


def test_a_sweep_stopped_by_a_config_mistake_leaves_no_run(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    done = subprocess.run(
        [sys.executable, "-m", "lmbench.harness.run", "--multirun", "dataset=iris",
         "model=mlp_tiny", "trainer.max_epochs=3", "trainer.mu_init=-1,1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.splitlines()[-1].startswith("lmbench-run: trainer.mu_init must be")
    assert "Traceback" not in done.stderr + done.stdout
    client = MlflowClient(store)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
