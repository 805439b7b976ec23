"""Report tables: one ``Table`` renders to GitHub Markdown (pandas ``to_markdown``, i.e.
tabulate) and to a LaTeX ``booktabs`` table (pandas ``Styler.to_latex``).

Cells are plain text with a few Unicode symbols (± ↑ ↓ – † × μ ≤) that the LaTeX output maps
to math; numbers are formatted before they reach a cell, by ``lmbench.reports.numbers``, so the
same store always gives the same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
from tabulate import DataRow, TableFormat

from lmbench.reports.numbers import fmt, fmt_int, fmt_mean_std

#: ``fmt``, ``fmt_int`` and ``fmt_mean_std`` live in ``lmbench.reports.numbers`` (re-exported).
__all__ = ["Cell", "Table", "bold_best", "fmt", "fmt_int", "fmt_mean_std", "latex_escape",
           "markdown_table"]

#: Unicode used in cells -> LaTeX (applied after escaping).
_LATEX_SYMBOLS = {
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "–": "--",
    "†": r"$^{\dagger}$",
    "×": r"$\times$",
    "μ": r"$\mu$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
}
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in [*_LATEX_SPECIAL, *_LATEX_SYMBOLS]))


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map the cell symbols to math mode."""
    return _LATEX_RE.sub(
        lambda m: _LATEX_SPECIAL.get(m.group(0)) or _LATEX_SYMBOLS[m.group(0)], text
    )


_MARKDOWN_RULES = {"l": ":---", "r": "---:", "c": ":---:", None: "---"}


def _markdown_format(alignment: str | None) -> TableFormat:
    """GitHub Markdown as tabulate writes it, unpadded: ``| a | b |`` under ``|:---|---:|``."""

    def rule(widths: list[int], _aligns: list[str]) -> str:
        marks = alignment or [None] * len(widths)
        return "|" + "|".join(_MARKDOWN_RULES[a] for a in marks) + "|"

    row = DataRow("|", "|", "|")
    return TableFormat(lineabove=None, linebelowheader=rule, linebetweenrows=None,
                       linebelow=None, headerrow=row, datarow=row, padding=1,
                       with_header_hide=None)


def markdown_table(frame: pd.DataFrame, alignment: str | None = None) -> str:
    """``frame`` (cells already text) as a GitHub Markdown table; ``|`` in cells escaped.

    ``alignment``: one of ``l``/``r``/``c`` per column, or ``None`` for plain ``---`` rules.
    Cells are written as they are (no padding, no number parsing).
    """
    escaped = frame.map(lambda v: str(v).replace("|", "\\|"))
    escaped.columns = [str(c).replace("|", "\\|") for c in frame.columns]
    return escaped.to_markdown(index=False, tablefmt=_markdown_format(alignment),
                               disable_numparse=True, stralign=None, numalign=None)


@dataclass(frozen=True)
class Cell:
    """One table cell: text, and whether it is the best of its row/group (bold)."""

    text: str
    bold: bool = False


@dataclass
class Table:
    """A report table: ``name`` is the file stem of its ``.tex``; ``align`` is per column
    (``l``/``r``/``c``); ``notes`` are printed under it (Markdown) or as a footnote (LaTeX)."""

    name: str
    caption: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    align: str | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, values: Sequence[str | Cell]) -> None:
        """Append a row of strings or cells (strings become plain cells)."""
        row = [v if isinstance(v, Cell) else Cell(str(v)) for v in values]
        if len(row) != len(self.columns):
            raise ValueError(
                f"table {self.name}: row has {len(row)} cells, expected {len(self.columns)}"
            )
        self.rows.append(row)

    @property
    def alignment(self) -> str:
        return self.align or "l" + "r" * (len(self.columns) - 1)

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table, bold as ``**x**``, ``|`` escaped."""

        def cell(c: Cell) -> str:
            return f"**{c.text}**" if c.bold and c.text else c.text

        rows = [[cell(c) for c in row] for row in self.rows]
        if not rows:
            rows = [["–"] * len(self.columns)]
        lines = [markdown_table(pd.DataFrame(rows, columns=self.columns), self.alignment)]
        for note in self.notes:  # separate paragraphs on GitHub
            lines += ["", note]
        return "\n".join(lines)

    def to_latex(self) -> str:
        """A ``table`` float with a ``booktabs`` tabular (needs ``\\usepackage{booktabs}``)."""

        def cell(c: Cell) -> str:
            text = latex_escape(c.text)
            return rf"\textbf{{{text}}}" if c.bold and text else text

        label = re.sub(r"[^A-Za-z0-9:_-]", "-", self.name)
        frame = pd.DataFrame([[cell(c) for c in row] for row in self.rows],
                             columns=[latex_escape(h) for h in self.columns])
        body = frame.style.hide(axis="index").to_latex(
            position="htbp", position_float="centering", hrules=True,
            caption=latex_escape(self.caption), label=f"tab:{label}",
            column_format=self.alignment,
        )
        notes = ""
        for note in self.notes:
            plain = latex_escape(note.replace("**", "").replace("`", ""))
            notes += rf"\par\smallskip{{\footnotesize {plain}}}" + "\n"
        end = "\\end{table}\n"
        body = body[: body.rindex(end)] + notes + end
        comment = f"% {self.name}: generated by lmbench-report from the MLflow store; do not edit."
        return comment + "\n" + body


def bold_best(values: Sequence[float], higher_is_better: bool) -> list[bool]:
    """Which entries equal the best finite value (all tied bests are bold)."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return [False] * len(values)
    best = max(finite) if higher_is_better else min(finite)
    return [v is not None and not math.isnan(v) and v == best for v in values]
