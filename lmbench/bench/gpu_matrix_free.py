"""The matrix-free engine on a GPU: the largest P trained within a memory budget, and the time
per epoch at 1M and 10M weights. One short script (a few minutes on one GPU), torch only.

    python -m lmbench.bench.gpu_matrix_free --out "$OUT/matrix_free_gpu.json"
    python -m lmbench.bench.gpu_matrix_free --smoke --device cpu --out /tmp/mf.json   # tiny

Every point is one epoch of ``engine="matrix_free"`` on the benchmark tanh MLP
(``lmbench.bench.matrix_free.point``: peak ``torch.cuda.max_memory_allocated`` above the start
of the epoch, time and its split). The budget check counts that peak plus the model's weights
and the data: a P "fits" when the sum stays within ``--budget`` without running out of memory.
The ladder of P stops at the first size that does not fit; the cost model's prediction
(``max_params``) is written beside the measured answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from lmbench.bench.matrix_free import point
from lmbench.bench.workloads import N_INPUTS
from lmbench.core.cost_model import max_params
from lmbench.units import format_bytes, parse_bytes

#: (P, samples, chunk samples): seconds per epoch (CG capped at ``--cg-max-iter``).
TIMED = [(1_000_000, 8_192, 512), (10_000_000, 8_192, 128)]
#: P tried in turn for the largest trained within the budget (few rows: memory is O(P)).
LADDER = [25_000_000, 50_000_000, 75_000_000, 100_000_000, 125_000_000, 150_000_000]
LADDER_ROWS, LADDER_CHUNK = 256, 16
SMOKE_TIMED = [(2_000, 64, 32), (5_000, 64, 32)]
SMOKE_LADDER = [1_000, 4_000, 16_000, 64_000, 256_000]


def run_point(n_params: int, rows: int, chunk: int, cg_max_iter: int, device: str,
              warm: bool) -> dict[str, Any]:
    """One epoch, or the out-of-memory error it ran into."""
    tick = time.perf_counter()
    try:
        result = point(n_params, rows, chunk, cg_max_iter, device, warm=warm)
    except torch.OutOfMemoryError as exc:
        result = {"n_params": n_params, "n_rows": rows, "chunk_samples": chunk,
                  "error": f"out of memory: {str(exc).splitlines()[0]}"}
    finally:
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
    result["wall_s"] = time.perf_counter() - tick
    return result


def total_bytes(result: dict[str, Any], itemsize: int = 4) -> int:
    """Peak above the start plus the weights and the rows the epoch started with."""
    data = result["n_rows"] * (N_INPUTS + result.get("n_outputs", 1)) * itemsize
    return int(result["peak_memory_bytes"] + result["n_params"] * itemsize + data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget", default=None, help="memory budget, e.g. 12GB (smoke: 8MB)")
    parser.add_argument("--cg-max-iter", type=int, default=20)
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("OUT", ".")) / "matrix_free_gpu.json")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (runs on a CPU)")
    args = parser.parse_args(argv)
    budget = parse_bytes(args.budget or ("8MB" if args.smoke else "12GB"))
    timed, ladder = (SMOKE_TIMED, SMOKE_LADDER) if args.smoke else (TIMED, LADDER)
    rows, chunk = (64, 16) if args.smoke else (LADDER_ROWS, LADDER_CHUNK)
    started = time.perf_counter()
    epochs = []
    for n_params, n_rows, n_chunk in timed:
        epochs.append(run_point(n_params, n_rows, n_chunk, args.cg_max_iter, args.device, True))
        print(json.dumps({k: epochs[-1].get(k) for k in
                          ("n_params", "n_rows", "epoch_time_s", "peak_memory_bytes", "error")}),
              flush=True)
    tried, largest = [], 0
    for n_params in ladder:
        result = run_point(n_params, rows, chunk, 3, args.device, False)
        fits = "error" not in result and total_bytes(result) <= budget
        result["total_bytes"] = total_bytes(result) if "error" not in result else None
        result["fits_budget"] = fits
        tried.append(result)
        print(f"P={n_params:,}: {'fits' if fits else 'does not fit'} "
              f"{format_bytes(result['total_bytes'] or 0)} [{result['wall_s']:.1f}s]", flush=True)
        if not fits:
            break
        largest = result["n_params"]
    dev = torch.device(args.device)
    payload = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else (
            platform.processor() or "cpu"
        ),
        "torch": torch.__version__,
        "engine": "matrix_free",
        "budget_bytes": budget,
        "cg_max_iter": args.cg_max_iter,
        "largest_params_within_budget": largest,
        "predicted_largest_params": max_params(rows, "matrix_free", budget),
        "epochs": epochs,
        "ladder": tried,
        "total_s": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"largest P within {format_bytes(budget)}: {largest:,} "
          f"(model: {payload['predicted_largest_params']:,}); wrote {args.out}")


if __name__ == "__main__":
    main()
