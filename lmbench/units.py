"""Byte sizes in and out: the parser behind ``--budget 12GB`` and the one byte formatter."""

from __future__ import annotations

import math
import re

_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}


def parse_bytes(text: str) -> int:
    """'12GB' -> 12e9, '12GiB' -> 12 * 2^30, '512M' -> 512e6, plain numbers are bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]I?)?B?\s*", text.upper())
    if not match:
        raise ValueError(f"cannot read a memory size from {text!r}; write e.g. 12GB or 16GiB")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit or ""])


def format_bytes(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B"
