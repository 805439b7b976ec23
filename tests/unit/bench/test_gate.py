"""The speed gate's default baseline is a file of the checkout: outside one it is refused
before anything is measured or written."""

from __future__ import annotations

import pytest

from lmbench.bench import gate
from lmbench.paths import PACKAGE_DIR


def test_default_baseline_is_the_checkouts_committed_file() -> None:
    assert PACKAGE_DIR.parent / "tests" / "benchmarks" / "perf_baseline.json" == gate.BASELINE
    assert gate.BASELINE.is_file()


@pytest.mark.parametrize("argv", [[], ["--update-baseline"]])
def test_installed_package_without_a_checkout_names_the_baseline_option(
    tmp_path, monkeypatch, capsys, argv
) -> None:
    # where the default points when the package lies in site-packages: no tests/ folder there
    lib = tmp_path / "lib" / "python3"
    monkeypatch.setattr(gate, "BASELINE", lib / "tests" / "benchmarks" / "perf_baseline.json")
    assert gate.main(argv) == 2
    assert "pass --baseline PATH" in capsys.readouterr().err
    assert not (lib / "tests").exists()  # nothing written beside the installed package
