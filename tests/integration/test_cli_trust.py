"""The command lines on unusual stores: lmbench-report without arguments, a broken mlflow.db."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmbench.harness.report import main as report_main
from lmbench.harness.report import parse_args
from lmbench.tracking import RunTracker


def _run(uri: str, experiment: str) -> None:
    with RunTracker(f"{experiment}-run", experiment_name=experiment, tracking_uri=uri):
        pass


def test_lmbench_report_without_arguments_reads_the_default_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _run(uri, "quick")
    _run(uri, "limits")
    _run(uri, "wide")
    assert parse_args([]).experiments == ["quick", "wide"]  # no `lmbench`: all but sections
    _run(uri, "lmbench")
    assert parse_args([]).experiments == ["lmbench"]
    assert parse_args(["--experiment", "wide"]).experiments == ["wide"]
    assert parse_args([]).out_dir is None


def test_lmbench_report_without_a_store_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        report_main([])
    assert info.value.code == 2
    assert "no MLflow store" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def test_lmbench_report_names_a_broken_store(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    db = tmp_path / "broken.db"
    db.write_text("not sqlite\n")
    with pytest.raises(SystemExit) as info:
        report_main(["--experiment", "quick", "--tracking-uri", f"sqlite:///{db}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert str(db) in err and "Move it away" in err


def test_lmbench_run_on_a_broken_store_names_the_file_and_what_to_do(run_app, tmp_path):
    (tmp_path / "mlflow.db").write_text("these bytes are not an SQLite database\n")
    done = run_app("dataset=iris", "model=mlp_tiny", "trainer.max_epochs=2", expect_ok=False)
    assert done.returncode != 0
    assert str(tmp_path / "mlflow.db") in done.stderr
    assert "Move it away" in done.stderr and "tracking.tracking_uri" in done.stderr
    assert "sqlalchemy" not in done.stderr.lower()
