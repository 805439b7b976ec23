"""lmbench-report and lmbench-compare fail alike: exit 2, one line ``prog: reason``."""

from __future__ import annotations

from pathlib import Path

import pytest

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
