"""The matrix-free engine at scale on the CPU: peak memory against P, and time per epoch.

Each point is one epoch of ``engine="matrix_free"`` (``lmbench.bench.measure.measure_point``:
the benchmark tanh MLP, synthetic rows, the peak C heap above the start of the epoch from
``lmbench.bench.memory.PeakMemoryInUse``, the second of two runs), in a fresh process so that
the peak is that point's own. The table gives bytes per million weights: flat in P when memory
is O(P) with the chunk's activations also growing with P (one hidden layer of ~P/34 units).

    python -m lmbench.bench.matrix_free scale                       # 0.1M, 0.3M, 1M weights
    python -m lmbench.bench.matrix_free scale --params 100000 1000000 --rows 300 --out r.json
    python -m lmbench.bench.matrix_free point --params 100000       # one point (child), JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lmbench.bench.measure import measure_point
from lmbench.units import format_bytes

DEFAULT_PARAMS = (100_000, 300_000, 1_000_000)


def point(
    n_params: int, n_rows: int, chunk: int, cg_max_iter: int, device: str = "cpu",
    warm: bool = True,
) -> dict[str, Any]:
    """One measured matrix-free epoch as a JSON-ready dict (with bytes per million weights)."""
    result = measure_point("matrix_free", n_params, n_rows, 1, chunk, device, warm=warm,
                           cg_max_iter=cg_max_iter)
    return {
        **asdict(result),
        "memory_ratio": result.memory_ratio,
        "cg_max_iter": cg_max_iter,
        "bytes_per_million_weights": result.peak_memory_bytes / result.n_params * 1e6,
    }


def run_point(args: Sequence[str]) -> dict[str, Any]:
    """``python -m lmbench.bench.matrix_free point ARGS`` in a fresh process; its JSON line."""
    done = subprocess.run([sys.executable, "-m", "lmbench.bench.matrix_free", "point", *args],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"point {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(points: Sequence[dict[str, Any]]) -> str:
    """Markdown: P, rows, chunk, peak memory (and per million weights), prediction, epoch time."""
    lines = [
        "| P | rows | chunk | peak memory | per 1M weights | predicted | epoch (s) | "
        "Jacobian pass (s) | CG (s) | trials |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        lines.append(
            f"| {p['n_params']:,} | {p['n_rows']:,} | {p['chunk_samples']:,} | "
            f"{format_bytes(p['peak_memory_bytes'])} | "
            f"{format_bytes(int(p['bytes_per_million_weights']))} | "
            f"{format_bytes(p['predicted_memory_bytes'])} | {p['epoch_time_s']:.2f} | "
            f"{p['time_jacobian_s']:.2f} | {p['time_solve_s']:.2f} | {p['trials']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["scale", "point"])
    parser.add_argument("--params", type=int, nargs="+", default=list(DEFAULT_PARAMS))
    parser.add_argument("--rows", type=int, default=300, help="samples (one output each)")
    parser.add_argument("--chunk", type=int, default=100, help="samples per streamed chunk")
    parser.add_argument("--cg-max-iter", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="JSON of every point")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shared = ["--rows", str(args.rows), "--chunk", str(args.chunk),
              "--cg-max-iter", str(args.cg_max_iter), "--threads", str(args.threads)]
    if args.command == "point":
        print(json.dumps(point(args.params[0], args.rows, args.chunk, args.cg_max_iter)))
        return
    points = []
    for n_params in args.params:
        points.append(run_point(["--params", str(n_params), *shared]))
        print(f"P={points[-1]['n_params']:,}: {format_bytes(points[-1]['peak_memory_bytes'])}, "
              f"{points[-1]['epoch_time_s']:.2f} s per epoch", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps({"torch": torch.__version__, "points": points}, indent=2))
    print(table(points))


if __name__ == "__main__":
    main()
