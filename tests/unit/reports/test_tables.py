"""Report tables: number formatting, Markdown and LaTeX (booktabs) rendering, bold best."""

import math

import pytest

from lmbench.reports.numbers import fmt, fmt_int, fmt_mean_std
from lmbench.reports.tables import Cell, Table, bold_best, latex_escape


def test_fmt_is_fixed_and_marks_missing_values():
    assert fmt(0.123456) == "0.1235"
    assert fmt(52.974182) == "52.97"
    assert fmt(123456.7) == "123,457"
    assert fmt(3.31e-7, 3) == "3.31e-07"
    assert fmt(math.nan) == fmt(None) == "–"
    assert fmt_int(7000.0) == "7,000" and fmt_int(math.nan) == "–"
    assert fmt_mean_std(0.9, 0.01) == "0.9 ± 0.01"
    assert fmt_mean_std(0.9, math.nan) == "0.9"


def test_latex_escape_maps_specials_and_symbols():
    assert latex_escape("breast_cancer 5% & #1") == r"breast\_cancer 5\% \& \#1"
    assert latex_escape("0.9 ± 0.1 ↑ μ_init") == r"0.9 $\pm$ 0.1 $\uparrow$ $\mu$\_init"


def test_table_renders_markdown_and_booktabs():
    table = Table("t_1", "A caption with rmse_test.", ["dataset", "a|b"], notes=["† note"])
    table.add(["wine", Cell("0.9 ± 0.1", bold=True)])
    md = table.to_markdown()
    assert md.splitlines()[:3] == ["| dataset | a\\|b |", "|:---|---:|", "| wine | **0.9 ± 0.1** |"]
    assert md.endswith("\n\n† note")
    tex = table.to_latex()
    for piece in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lr}",
                  r"\textbf{0.9 $\pm$ 0.1}", r"\caption{A caption with rmse\_test.}",
                  r"\label{tab:t_1}", r"$^{\dagger}$ note"):
        assert piece in tex, piece
    with pytest.raises(ValueError, match="expected 2"):
        table.add(["only one"])


def test_bold_best_marks_every_tied_best_and_ignores_nan():
    assert bold_best([0.9, math.nan, 0.9, 0.5], higher_is_better=True) == [True, False, True, False]
    assert bold_best([3.0, 1.0], higher_is_better=False) == [False, True]
    assert bold_best([math.nan], higher_is_better=True) == [False]
