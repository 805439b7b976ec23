"""Markdown tables of the benchmarks' results: the comparison, the scale runs, the GPU check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmbench.bench.measure import Measurement
from lmbench.bench.results import SizeResult
from lmbench.core.engines import SEED_GPU_BYTES
from lmbench.units import format_bytes


# ------------------------------------------------------------------------------ comparison
def markdown_table(sizes: Sequence[SizeResult]) -> str:
    """One row per (size, implementation): time, ratios (of minima; paired in brackets),
    memory and its ratios, trials."""
    lines = [
        "| P | N·O | implementation | epoch s | ratio to floor (paired) | "
        "ratio to reference (paired) | peak MiB | memory / floor | memory / reference | "
        "trials |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        for item in size.results.values():
            lines.append(
                f"| {size.n_params:,} | {size.n_residuals:,} | {item.implementation} | "
                f"{item.epoch_time_s:.4f} | "
                f"{item.ratio_to_floor:.2f} ({item.paired_ratio_to_floor:.2f}) | "
                f"{item.ratio_to_reference:.2f} ({item.paired_ratio_to_reference:.2f}) | "
                f"{item.peak_memory_bytes / 2**20:.1f} | {item.memory_ratio_to_floor:.2f} | "
                f"{item.memory_ratio_to_reference:.2f} | {item.trials} |"
            )
    return "\n".join(lines)


def agreement_table(sizes: Sequence[SizeResult]) -> str:
    """Loss after k accepted steps per implementation, and the largest relative gap."""
    if all(size.loss_agreement is None for size in sizes):
        return ""
    lines = ["| P | implementation | loss after 0..k accepted steps | max rel. diff vs lmbench |",
             "|---:|---|---|---:|"]
    for size in sizes:
        if size.loss_agreement is None:
            continue
        agree = size.loss_agreement
        for name, series in agree.losses.items():
            values = ", ".join(f"{v:.6g}" for v in series)
            lines.append(f"| {size.n_params:,} | {name} | {values} | "
                         f"{agree.max_relative_difference[name]:.2e} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ scale runs
def scale_markdown(result: dict[str, Any]) -> str:
    """Tables of the streaming runs, the memory growth and the data-parallel ratio."""
    lines = [
        "| rows | P | data (MiB) | peak RSS (MiB) | peak RSS - data | peak anon RSS "
        "| heap peak (MiB) | epoch 1 (s) | epoch 2 (s) | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["streaming"]:
        data_mib = run["data_bytes"] / 2**20
        times = [e["epoch_time_s"] for e in run["epochs"]]
        lines.append(
            f"| {run['rows']} | {run['params']} | {data_mib:.1f} | {run['peak_rss_mib']} "
            f"| {run['peak_rss_mib'] - data_mib:.1f} | {run['peak_anon_rss_mib']} "
            f"| {run['heap_peak_mib']} | " + " | ".join(f"{t:.2f}" for t in times)
            + f" | {run['wall_s']} |"
        )
    lines += ["", "Growth from the smallest to the largest run (%): "
              + ", ".join(f"{k} {v:+.1f}" for k, v in result["growth"].items()), ""]
    lines += [
        "| rows | epoch | time (s) | trials | Jacobian | J^T J | solve | loss passes | other |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["streaming"]:
        for e in run["epochs"]:
            lines.append(
                f"| {run['rows']} | {e['epoch']} | {e['epoch_time_s']} | {e['trials']} "
                f"| {e['time_jacobian']} | {e['time_system']} | {e['time_solve']} "
                f"| {e['time_evaluate']} | {e['other_s']} |"
            )
    if "data_parallel" in result:
        dp = result["data_parallel"]
        lines += ["", f"Data parallel (rows={dp['rows']}, P={dp['params']}, {dp['dtype']}, "
                  f"min of {dp['repeats']}): "
                  + ", ".join(f"{k}: {v:.4f} s" for k, v in dp["epoch_time_s"].items())
                  + f"; 2 ranks / 1 process x 2 threads = "
                  f"{dp['ratio_2ranks_over_1proc_2threads']}, 2 ranks / 1 process x 1 thread = "
                  f"{dp['ratio_2ranks_over_1proc_1thread']}"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ limits points
def measurement_table(rows: Sequence[Measurement], budget: int = SEED_GPU_BYTES) -> str:
    """Measured points, with the prediction and the 12 GB budget verdict per point."""
    lines = [
        "| engine | P | N·O | chunk | predicted | measured | meas/pred | within 12 GB | "
        "epoch s | Jacobian s | system s | solve s | trials |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.engine} | {r.n_params:,} | {r.n_rows:,} | {r.chunk_samples:,} | "
            f"{format_bytes(r.predicted_memory_bytes)} | {format_bytes(r.peak_memory_bytes)} | "
            f"{r.memory_ratio:.2f} | {'yes' if r.peak_memory_bytes <= budget else 'no'} | "
            f"{r.epoch_time_s:.3f} | {r.time_jacobian_s:.3f} | {r.time_system_s:.3f} | "
            f"{r.time_solve_s:.3f} | {r.trials} |"
        )
    return "\n".join(lines)
