"""The GPU variant of the limits experiment: one short script, a few minutes on one GPU.

    python -m lmbench.bench.gpu_check --out results.json --markdown results.md

Measures one epoch per point on ``cuda`` (peak ``torch.cuda.max_memory_allocated`` above the
start, time and its split) at the original library's documented limits (P = 7,000 weights,
N*O = 7,000) and at the sizes the design claims for a 12 GB budget: P >= 35,000 in float32 with
J^T J held, and large N*O through streaming. Needs only torch (no Hydra/MLflow), so it runs on
a bare GPU machine; ``lmbench-limits --import-json`` logs the results to MLflow afterwards.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from lmbench.bench.markdown import measurement_table
from lmbench.bench.measure import Measurement, measure_point
from lmbench.units import format_bytes

#: (engine, P, M = N*O, chunk samples): what one short GPU session measures.
GPU_POINTS: list[tuple[str, int, int, int | None]] = [
    ("in_memory_primal", 7_000, 7_000, None),        # the seed's documented limit
    ("in_memory_dual", 7_000, 5_000, None),
    ("in_memory_primal", 20_000, 50_000, 8_192),
    ("streaming", 35_000, 100_000, 4_096),            # claim: P >= 35k within 12 GB
    ("in_memory_dual", 35_000, 10_000, None),
    ("streaming", 4_000, 2_000_000, 65_536),          # claim: any N*O by streaming
    ("cache", 50_000, 4_096, 2_048),  # P x P (10 GB) not held: CG (<= 100 iterations) on disk J
]

CPU_SMOKE_POINTS: list[tuple[str, int, int, int | None]] = [
    ("in_memory_primal", 500, 1_000, None),
    ("in_memory_dual", 800, 400, None),
    ("streaming", 500, 4_000, 1_000),
    ("cache", 500, 2_000, 500),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, required=True, help="JSON results")
    parser.add_argument("--markdown", type=Path, default=None, help="markdown table")
    parser.add_argument("--smoke", action="store_true", help="tiny CPU-sized points (tests)")
    args = parser.parse_args(argv)
    points = CPU_SMOKE_POINTS if args.smoke else GPU_POINTS
    device = torch.device(args.device)
    # One-time CUDA/cuBLAS/cuSOLVER initialisation, outside every measured point.
    warm = torch.randn(256, 256, device=device)
    torch.linalg.cholesky(warm @ warm.T + 256 * torch.eye(256, device=device))
    rows: list[Measurement] = []
    started = time.perf_counter()
    for engine, n_params, n_rows, chunk in points:
        tick = time.perf_counter()
        result = measure_point(
            engine, n_params, n_rows, 1, chunk, args.device, warm=False, cg_max_iter=100
        )
        rows.append(result)
        print(f"{engine:17s} P={result.n_params:>7,} M={result.n_rows:>10,} "
              f"mem {format_bytes(result.peak_memory_bytes):>10s} "
              f"(pred {format_bytes(result.predicted_memory_bytes)}) "
              f"epoch {result.epoch_time_s:.3f}s  [{time.perf_counter() - tick:.1f}s]",
              flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    payload = {
        "device": name or "cpu",
        "torch": torch.__version__,
        "total_s": time.perf_counter() - started,
        "points": [{**asdict(r), "memory_ratio": r.memory_ratio} for r in rows],
    }
    args.out.write_text(json.dumps(payload, indent=2))
    table = measurement_table(rows)
    if args.markdown is not None:
        args.markdown.write_text(
            f"# LM limits measured on {payload['device']} (torch {torch.__version__})\n\n"
            f"One epoch per point, float32, one-hidden-layer tanh MLP; memory is the peak "
            f"allocated above the start of the epoch.\n\n{table}\n"
        )
    print(table)


if __name__ == "__main__":
    main()
