"""Deterministic figure output: the same data gives the same PNG and PDF bytes.

matplotlib stamps PDFs with a creation date and SVGs with random ids; both are switched off
here (``metadata={'CreationDate': None}``, ``svg.hashsalt``), fonts and sizes are pinned, and
PNGs carry no software version.

Report figures are bare ``Figure`` objects (:func:`subplots`), never registered with pyplot:
one that is built and not written (a report built but not saved, an error half-way) is
garbage-collected instead of piling up in pyplot's figure manager.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
from matplotlib.figure import Figure  # noqa: E402

#: rcParams pinned while report figures are drawn and saved.
STYLE = {
    "svg.hashsalt": "lmbench-report",
    "pdf.fonttype": 42,
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": True,
}
_PNG_METADATA = {"Software": None}
_PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}


@contextlib.contextmanager
def report_style() -> Iterator[None]:
    """Pin fonts, sizes and the SVG hash salt for the figures drawn inside."""
    with matplotlib.rc_context(STYLE):
        yield


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float],
    squeeze: bool = True,
    constrained_layout: bool = False,
) -> tuple[Figure, Any]:
    """``plt.subplots`` on a bare ``Figure`` (not tracked by pyplot: nothing to close)."""
    figure = Figure(figsize=figsize, layout="constrained" if constrained_layout else None)
    return figure, figure.subplots(nrows, ncols, squeeze=squeeze)


def save_figure(figure: Figure, folder: Path, stem: str, dpi: int = 200) -> list[Path]:
    """Write ``<stem>.png`` (at ``dpi``) and ``<stem>.pdf`` without timestamps; a pyplot
    figure passed in is closed."""
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{stem}.png", folder / f"{stem}.pdf"
    with report_style():
        figure.savefig(png, dpi=dpi, metadata=_PNG_METADATA)
        figure.savefig(pdf, metadata=_PDF_METADATA)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(figure)
    return [png, pdf]
