"""The pieces a report is made of: sections of text, tables and figures, plus the evidence
(run id -> number) that ``runs.csv`` lists for every value shown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure

from lmbench.reports.tables import Table


@dataclass
class FigureBlock:
    """A figure saved as ``figures/<stem>.png`` and ``.pdf`` and shown in the Markdown."""

    stem: str
    caption: str
    figure: Figure


Block = str | Table | FigureBlock


@dataclass
class Section:
    """One numbered section of the report.

    ``blocks``: Markdown paragraphs, tables and figures in reading order. ``evidence``: one
    ``{"run_id", "quantity", "value"}`` per number taken from a run (``runs.csv``).
    ``missing``: what the section expected and did not find (listed in the run audit).
    """

    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def text(self, markdown: str) -> None:
        self.blocks.append(markdown)

    def table(self, table: Table) -> None:
        self.blocks.append(table)

    def figure(self, stem: str, caption: str, figure: Figure) -> None:
        self.blocks.append(FigureBlock(stem, caption, figure))

    def cite(self, run_id: str, quantity: str, value: Any) -> None:
        """Record that ``value`` of ``quantity`` from run ``run_id`` enters this section."""
        self.evidence.append({"run_id": run_id, "quantity": quantity, "value": _plain(value)})

    @property
    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]

    @property
    def figures(self) -> list[FigureBlock]:
        return [b for b in self.blocks if isinstance(b, FigureBlock)]


def _plain(value: Any) -> str:
    """Full-precision, deterministic text of a value for runs.csv."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "" if math.isnan(number) else repr(number)
