"""Where reports go: ``lmbench-report`` writes git-ignored ``build/reports/<experiment>/``; the
committed ``reports/`` are written only by the Makefile targets that name them with ``--out``."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from lmbench.harness.report import main as report_main
from lmbench.tracking import RunTracker

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("argv", "experiment"), [
    (["--experiment", "quick"], "quick"),
    ([], "lmbench"),  # lmbench-run's default experiment
])
def test_lmbench_report_writes_build_reports_not_the_committed_folder(
    argv: list[str], experiment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with RunTracker("a-run", experiment_name=experiment, tracking_uri=uri):
        pass
    monkeypatch.chdir(tmp_path)
    report_main([*argv, "--tracking-uri", uri])
    assert (tmp_path / "build" / "reports" / experiment / "report.md").is_file()
    assert not (tmp_path / "reports").exists()


def _report_outputs(target: str) -> dict[str, str]:
    """The ``--experiment`` -> ``--out`` of each lmbench-report command ``make -n target``
    would run (the venv stamp taken as built, so nothing is installed)."""
    done = subprocess.run(["make", "-n", target, "STAMP=Makefile", "DEV_STAMP=Makefile"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    outputs = {}
    for line in done.stdout.splitlines():
        if "lmbench-report" not in line:
            continue
        words = shlex.split(line)
        flags = dict(re.findall(r"--(experiment|out) (\S+)", " ".join(words)))
        outputs[flags["experiment"]] = flags.get("out", "")
    return outputs


def test_only_make_reports_study_and_paper_checks_write_the_committed_reports() -> None:
    for target in ("reports", "study", "paper-checks"):
        outputs = _report_outputs(target)
        assert outputs and all(out == f"reports/{name}" for name, out in outputs.items()), (
            target, outputs)
    run = _report_outputs("run")
    assert run and all(out == f"build/reports/{name}" for name, out in run.items()), run
