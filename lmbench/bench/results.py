"""What the performance comparison records per size and implementation, and its ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from lmbench.bench.implementations import FLOOR, REFERENCE


@dataclass
class ImplementationResult:
    """Time and memory of one implementation at one size, and its ratios."""

    implementation: str
    epoch_time_s: float
    peak_memory_bytes: int
    trials: int
    accepted: bool
    loss_after: float
    times_s: list[float] = field(default_factory=list)
    split_s: dict[str, float] = field(default_factory=dict)
    ratio_to_floor: float = math.nan
    ratio_to_reference: float = math.nan
    memory_ratio_to_floor: float = math.nan
    memory_ratio_to_reference: float = math.nan
    paired_ratio_to_floor: float = math.nan
    paired_ratio_to_reference: float = math.nan


@dataclass
class LossAgreement:
    """Loss after each accepted full-batch step, per implementation, from the same weights."""

    steps: int
    losses: dict[str, list[float]]
    max_relative_difference: dict[str, float]


@dataclass
class SizeResult:
    """Everything measured at one problem size."""

    n_params: int
    n_residuals: int
    n_samples: int
    n_outputs: int
    results: dict[str, ImplementationResult]
    loss_agreement: LossAgreement | None = None
    reference_split_s: dict[str, float] = field(default_factory=dict)


def add_ratios(results: dict[str, ImplementationResult]) -> None:
    """Fill time and memory ratios to ``floor`` and to the reference library, where present.

    ``ratio_*`` divide the minimum times; ``paired_ratio_*`` are the median over rounds of the
    ratio within one round (the implementations of a round run seconds apart, so a load burst
    that spans a round cancels out; on a shared machine that is the steadier estimate).
    """
    floor, ref = results.get(FLOOR), results.get(REFERENCE)
    for item in results.values():
        if floor is not None:
            item.ratio_to_floor = _ratio(item.epoch_time_s, floor.epoch_time_s)
            item.memory_ratio_to_floor = _ratio(item.peak_memory_bytes, floor.peak_memory_bytes)
            item.paired_ratio_to_floor = paired_ratio(item.times_s, floor.times_s)
        if ref is not None:
            item.ratio_to_reference = _ratio(item.epoch_time_s, ref.epoch_time_s)
            item.memory_ratio_to_reference = _ratio(item.peak_memory_bytes,
                                                    ref.peak_memory_bytes)
            item.paired_ratio_to_reference = paired_ratio(item.times_s, ref.times_s)


def paired_ratio(times: Sequence[float], baseline: Sequence[float]) -> float:
    """Median over rounds of times[i] / baseline[i] (NaN unless both have the same rounds)."""
    if not times or len(times) != len(baseline):
        return math.nan
    return statistics.median(_ratio(t, b) for t, b in zip(times, baseline, strict=True))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan
