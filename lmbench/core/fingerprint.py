"""What identifies a set of training rows whatever their order: ``RowsFingerprint``.

Full-batch LM reads its rows many times per epoch (the system, then each damping trial's loss)
and a checkpoint is resumed on rows given again, so both must be the same rows. A fingerprint
is the row count and five float64 sums over the rows: of x, x^2, y, y^2 and cos(x.u + y.v) for
fixed pseudo-random directions u and v (a per-row hash: two different multisets of rows share
it only by a coincidence of reals, even for data of a few discrete values such as parity
problems, whose plain sums often tie). It is gathered while a pass reads the rows (no extra
pass), unchanged by shuffling, and changed by rows drawn with replacement, a missing row or
other data. Two fingerprints agree up to the rounding of summing in another order
(``FINGERPRINT_RTOL``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

#: Relative tolerance between two passes' sums of the same rows (float64 sums in another order
#: differ by rounding only; float32 where the device has no float64).
FINGERPRINT_RTOL = {torch.float64: 1e-6, torch.float32: 1e-3}
#: What each of a fingerprint's sums adds up over the rows.
SUM_NAMES = ("sum of x", "sum of x^2", "sum of y", "sum of y^2", "row hash")
#: Seeds the fixed directions u (for x) and v (for y) of the row hash.
HASH_SEED = 20_231


@functools.cache
def hash_direction(size: int, salt: int, device: torch.device, dtype: torch.dtype
                   ) -> torch.Tensor:
    """A fixed pseudo-random direction in [-pi, pi]^size (the same in every process)."""
    generator = torch.Generator().manual_seed(HASH_SEED + 7919 * salt + size)
    unit = torch.rand(size, generator=generator, dtype=torch.float64)
    return ((2 * unit - 1) * math.pi).to(device=device, dtype=dtype)


def fingerprint_dtype(device: torch.device) -> torch.dtype:
    """The dtype the row sums accumulate in: float64, or float32 on Apple's MPS (no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


def row_sums(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A chunk's ``SUM_NAMES`` in ``dtype`` (what a ``RowsFingerprint`` adds up over a pass)."""
    flat_x = x.reshape(-1, math.prod(x.shape[1:])).to(dtype)
    flat_y = y.reshape(-1, math.prod(y.shape[1:])).to(dtype)
    phase = torch.addmv(flat_y @ hash_direction(flat_y.shape[1], 1, y.device, dtype), flat_x,
                        hash_direction(flat_x.shape[1], 0, x.device, dtype))
    values_x, values_y = flat_x.reshape(-1), flat_y.reshape(-1)
    return torch.stack([values_x.sum(), values_x.dot(values_x), values_y.sum(),
                        values_y.dot(values_y), phase.cos_().sum()])


@dataclass(frozen=True)
class RowsFingerprint:
    """What identifies a set of training rows whatever their order: the row count and the
    ``SUM_NAMES`` (y as the loss reads it). Cheap to gather while the rows are read."""

    rows: int
    sums: tuple[float, ...]
    rtol: float = FINGERPRINT_RTOL[torch.float64]

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor) -> RowsFingerprint:
        """The fingerprint of rows held in memory."""
        return cls.from_sums(x.shape[0], row_sums(x, y, fingerprint_dtype(x.device)))

    @classmethod
    def from_sums(cls, rows: int, sums: torch.Tensor) -> RowsFingerprint:
        """From a row count and the tensor of ``row_sums`` added up over a pass."""
        return cls(int(rows), tuple(float(v) for v in sums.tolist()),
                   FINGERPRINT_RTOL[sums.dtype])

    def difference(self, other: RowsFingerprint) -> str | None:
        """How ``other`` differs from these rows (None: the same rows, up to rounding)."""
        if other.rows != self.rows:
            return f"{other.rows} rows instead of {self.rows}"
        rtol = max(self.rtol, other.rtol)
        x2, y2 = max(self.sums[1], other.sums[1]), max(self.sums[3], other.sums[3])
        # |sum of x| <= sqrt(rows * sum of x^2), |row hash| <= rows: each sum's rounding scale
        scales = (math.sqrt(self.rows * x2), x2, math.sqrt(self.rows * y2), y2, self.rows)
        if len(other.sums) != len(self.sums):
            return "a fingerprint of another kind"
        for name, mine, theirs, scale in zip(SUM_NAMES, self.sums, other.sums, scales,
                                             strict=True):
            if abs(mine - theirs) > rtol * scale:
                return (f"{self.rows} rows again, but the {name} is {theirs:.10g} instead of "
                        f"{mine:.10g}")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "sums": list(self.sums), "rtol": self.rtol}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RowsFingerprint:
        sums = tuple(float(v) for v in data["sums"])
        if len(sums) != len(SUM_NAMES):
            raise ValueError(f"a rows fingerprint holds {len(SUM_NAMES)} sums, got {len(sums)}")
        return cls(int(data["rows"]), sums,
                   float(data.get("rtol", FINGERPRINT_RTOL[torch.float64])))
