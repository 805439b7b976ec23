"""What one paper-check start measured, the run's summary statistics and the per-start CSV."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StartResult:
    """What one random start did."""

    start: int
    seed: int
    success: bool
    epochs: int
    final_mse: float
    time_s: float
    stop_reason: str
    mse_at: dict[int, float]

    def as_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "start": self.start, "seed": self.seed, "success": self.success,
            "epochs": self.epochs, "final_mse": self.final_mse, "time_s": self.time_s,
            "stop_reason": self.stop_reason,
        }
        row.update({f"mse_at_epoch_{e}": v for e, v in sorted(self.mse_at.items())})
        return row


def summarize_starts(results: Sequence[StartResult], record_at: Sequence[int] = ()) -> dict:
    """The run's metrics: iterations and time over successful starts, MSE over all starts."""
    ok = [r for r in results if r.success]
    epochs = [float(r.epochs) for r in ok]
    times = [r.time_s for r in ok]

    def std(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else math.nan

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else math.nan

    metrics = {
        "n_starts": float(len(results)),
        "n_success": float(len(ok)),
        "success_rate": len(ok) / len(results) if results else math.nan,
        "epochs_mean": mean(epochs),
        "epochs_std": std(epochs),
        "epochs_median": statistics.median(epochs) if epochs else math.nan,
        "time_mean_s": mean(times),
        "time_std_s": std(times),
        "epochs_mean_all": mean([float(r.epochs) for r in results]),
        "time_total_s": float(sum(r.time_s for r in results)),
        "final_mse_median": statistics.median([r.final_mse for r in results])
        if results else math.nan,
    }
    for e in record_at:
        values = [r.mse_at[e] for r in results if e in r.mse_at]
        metrics[f"mse_at_epoch_{e}_median"] = statistics.median(values) if values else math.nan
    return metrics


def csv_text(rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV text, the first row's keys as the header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
