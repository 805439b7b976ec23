"""The one number formatter of the reports (tables, captions, ``lmbench-compare``).

Deterministic (no locale): the same store always gives the same bytes. Byte sizes are
``lmbench.units.format_bytes``; evidence values in ``runs.csv`` keep full precision
(``lmbench.reports.document``).
"""

from __future__ import annotations

import math

#: What a missing value (``None`` or NaN) is shown as.
MISSING = "–"


def fmt(
    value: float | int | None,
    digits: int | None = 4,
    *,
    decimals: int | None = None,
    group_below: float = 1e9,
) -> str:
    """A number for a table.

    ``digits`` significant digits (``0.1235``, ``3.31e-07``), except that values from 1e4 up to
    ``group_below`` are whole numbers with thousands separators (``123,457``); ``digits=None``:
    always a whole number with thousands separators (counts); ``decimals``: that many decimals
    (``1.33``). ``–`` for missing/NaN, ``inf``/``-inf`` for infinities.
    """
    if value is None:
        return MISSING
    number = float(value)
    if math.isnan(number):
        return MISSING
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if decimals is not None:
        return f"{number:.{decimals}f}"
    if digits is None:
        return f"{int(round(number)):,}"
    if 1e4 <= abs(number) < group_below:
        return f"{number:,.0f}"
    return f"{number:.{digits}g}"


def fmt_int(value: float | int | None) -> str:
    """An integer count with thousands separators, ``–`` if missing (``fmt(value, None)``)."""
    return fmt(value, None)


def fmt_mean_std(mean: float, std: float | None, digits: int = 4) -> str:
    """``mean ± std`` (std to 2 significant digits), or just the mean when there is no spread."""
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} ± {fmt(std, 2)}"
