"""Deterministic train/validation/test splits, stratified subsampling and content hashes.

Every random choice comes from ``numpy.random.default_rng([seed, stream])``: the result depends
only on the integer seed (and the row count and labels), never on global random state. The
subsample and the split use separate streams, so changing ``max_rows`` does not reshuffle the
generator used by the split in a correlated way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

_SPLIT_STREAM = 0
_SUBSAMPLE_STREAM = 1
#: A subsample keeps at least this many rows of each class (or all of a smaller class), so
#: that stratification can still place the class in train, validation and test.
MIN_ROWS_PER_CLASS = 3


@dataclass(frozen=True, eq=False)
class SplitIndices:
    """Row positions of each split, in a seed-determined random order."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both fractions in [0, 1) and leaving a non-empty share for training."""
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0):
        raise ValueError(
            f"val_fraction and test_fraction must be in [0, 1), got {val_fraction}, {test_fraction}"
        )
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 (got {val_fraction} + {test_fraction})"
        )


def split_indices(
    n_rows: int,
    seed: int,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    strata: np.ndarray | None = None,
) -> SplitIndices:
    """Split ``range(n_rows)`` into train/val/test, per stratum when ``strata`` is given.

    Within each stratum (class), ``round(fraction * count)`` rows go to test and to validation
    and the rest to train; a stratum always keeps at least one training row.
    """
    check_fractions(val_fraction, test_fraction)
    rng = _rng(seed, _SPLIT_STREAM)
    perm = rng.permutation(n_rows)
    codes, counts = _strata_codes(strata, n_rows)
    n_test = _round_half_up(test_fraction * counts)
    n_val = _round_half_up(val_fraction * counts)
    # Never take a stratum's last training row: shrink validation first, then test.
    overflow = np.maximum(n_test + n_val - (counts - 1), 0) * (counts > 0)
    n_val_fixed = np.maximum(n_val - overflow, 0)
    n_test = np.maximum(n_test - (overflow - (n_val - n_val_fixed)), 0)
    n_val = n_val_fixed

    permuted_codes = codes[perm]
    rank = _rank_within_stratum(permuted_codes)
    test_cut = n_test[permuted_codes]
    val_cut = test_cut + n_val[permuted_codes]
    is_test = rank < test_cut
    is_val = ~is_test & (rank < val_cut)
    is_train = ~is_test & ~is_val
    return SplitIndices(train=perm[is_train], val=perm[is_val], test=perm[is_test])


def subsample_indices(
    n_rows: int, max_rows: int, seed: int, *, strata: np.ndarray | None = None
) -> np.ndarray:
    """At most about ``max_rows`` row positions, keeping the strata proportions.

    Quotas use the largest-remainder rule, so they add up to exactly ``max_rows``; only the
    floor of ``MIN_ROWS_PER_CLASS`` rows per class (when ``strata`` is given) can add a few.
    Returns all rows, in seed order, when ``max_rows >= n_rows``.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer, got {max_rows}")
    rng = _rng(seed, _SUBSAMPLE_STREAM)
    perm = rng.permutation(n_rows)
    if max_rows >= n_rows:
        return perm
    codes, counts = _strata_codes(strata, n_rows)
    exact = max_rows * counts / n_rows
    quotas = np.floor(exact).astype(np.int64)
    leftover = max_rows - int(quotas.sum())
    by_remainder = np.lexsort((np.arange(len(counts)), -(exact - quotas)))
    quotas[by_remainder[:leftover]] += 1
    if strata is not None:
        quotas = np.maximum(quotas, np.minimum(counts, MIN_ROWS_PER_CLASS))
    permuted_codes = codes[perm]
    keep = _rank_within_stratum(permuted_codes) < quotas[permuted_codes]
    return perm[keep]


def content_hash(arrays: Iterable[np.ndarray]) -> str:
    """sha256 over each array's dtype, shape and bytes (C order), in the order given."""
    digest = hashlib.sha256()
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}|{contiguous.shape}|".encode())
        digest.update(contiguous.reshape(-1).view(np.uint8))  # the bytes, without a copy
    return digest.hexdigest()


def _rng(seed: int, stream: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), stream])


def _strata_codes(strata: np.ndarray | None, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense stratum codes 0..k-1 per row and the row count of each stratum."""
    if strata is None:
        return np.zeros(n_rows, dtype=np.int64), np.array([n_rows], dtype=np.int64)
    strata = np.asarray(strata)
    if strata.shape != (n_rows,):
        raise ValueError(f"strata must have shape ({n_rows},), got {strata.shape}")
    _, codes = np.unique(strata, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    return codes, np.bincount(codes).astype(np.int64)


def _rank_within_stratum(codes: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions share its stratum (0, 1, 2, ...)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    first = np.searchsorted(sorted_codes, sorted_codes, side="left")
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - first
    return rank


def _round_half_up(values: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(values, dtype=np.float64) + 0.5).astype(np.int64)
