"""Byte sizes in and out: the parser behind ``--budget 12GB`` and the one byte formatter."""

from __future__ import annotations

import math
import re

#: Decimal (SI) and binary (IEC) units; the unit is required, so "12" is never 12 bytes by
#: accident. Case-insensitive; a trailing "B" is optional ("12G" = "12GB").
UNITS = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]+)\s*")


def parse_bytes(text: str) -> int:
    """'12GB' -> 12e9, '12GiB' -> 12 * 2^30, '512M' -> 512e6, '100B' -> 100.

    A size without a unit, or with an unknown one, is refused with the units that are known.
    """
    match = _SIZE.fullmatch(str(text))
    known = "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
    if not match:
        raise ValueError(
            f"cannot read a memory size from {text!r}: write a number and a unit, e.g. 12GB or "
            f"16GiB; units: {known}"
        )
    number, unit = match.groups()
    unit = unit.upper()
    if unit not in UNITS and unit + "B" in UNITS:
        unit += "B"
    if unit not in UNITS:
        raise ValueError(f"unknown unit {match.group(2)!r} in {text!r}; units: {known}")
    return int(float(number) * UNITS[unit])


def format_bytes(value: float) -> str:
    """Bytes in the largest decimal unit that keeps the number >= 1 (two decimals)."""
    if not math.isfinite(value):
        return "–"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B"
