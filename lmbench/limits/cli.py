"""``lmbench-limits``: what fits in a memory budget, by the model in ``lmbench.core.cost_model``.

    lmbench-limits --budget 12GB                         # largest P per engine for each N*O
    lmbench-limits --budget 12GB --samples 100000 --outputs 3 --params 5000   # best engine
    lmbench-limits --import-json reports/limits/gpu_nvidia_h200.json   # log measurements
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmbench.bench.measure import point_metrics, point_params
from lmbench.core.cost_model import Problem, best_engine, estimate, max_params
from lmbench.core.engines import ENGINES, SEED_MAX_ROWS, SEED_MAX_WEIGHTS
from lmbench.tracking import schema
from lmbench.units import format_bytes, parse_bytes

ROW_GRID = (1_000, 7_000, 10_000, 100_000, 1_000_000, 10_000_000)


def feasible_region(budget: int, itemsize: int = 4, chunk_rows: int = 4096) -> str:
    """Markdown table: the largest P each engine fits for each N*O (O = 1)."""
    lines = ["| N·O | " + " | ".join(ENGINES) + " |", "|---" * (len(ENGINES) + 1) + "|"]
    for rows in ROW_GRID:
        largest = [max_params(rows, e, budget, itemsize, chunk_rows) for e in ENGINES]
        cells = [f"{p:,}" if p else "–" for p in largest]
        lines.append(f"| {rows:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def matrix_free_region(
    budget: int, itemsize: int = 4, cg_iterations: int = 20, flops_per_second: float = 1e12
) -> str:
    """Markdown: matrix_free's limit as weights x rows. Its memory does not grow with the rows
    (they are streamed), so the largest P is one number; what grows is the work, ~10 N P flops
    per CG iteration (two passes over the rows), which bounds weights x rows per epoch."""
    largest = max_params(ROW_GRID[0], "matrix_free", budget, itemsize)
    per_epoch = 10.0 * (cg_iterations + 1)
    reach = flops_per_second * 60 / per_epoch  # weights x rows of a one-minute epoch
    lines = [
        f"matrix_free: P <= {largest:,} weights at every N·O (memory "
        f"{format_bytes(budget)} / {budget / max(largest, 1):.0f} bytes per weight; the rows "
        f"are streamed, never held). Its limit is work: ~10·N·P flops per CG iteration, so "
        f"with {cg_iterations} iterations an epoch costs ~{per_epoch:.0f} × weights × rows "
        f"flops; at {flops_per_second:.0e} flop/s a one-minute epoch reaches weights × rows "
        f"≈ {reach:.1e}.",
        "",
        "| N·O | largest P | weights × rows | GFLOP per CG iteration |",
        "|---|---|---|---|",
    ]
    for rows in ROW_GRID:
        p = max_params(rows, "matrix_free", budget, itemsize)
        lines.append(f"| {rows:,} | {p:,} | {p * rows:.2e} | {10.0 * rows * p / 1e9:,.0f} |")
    return "\n".join(lines)


def log_measurements(path: Path, tracking_uri: str | None, experiment: str = "limits") -> int:
    """Log each measured point of a ``gpu_check``/``measure`` JSON file as one MLflow run."""
    from lmbench.tracking.measurements import MeasuredRun, log_measured_runs

    payload = json.loads(path.read_text())
    points = payload.get("points", [payload])
    runs = [
        MeasuredRun(
            f"limits-{point['engine']}-P{point['n_params']}-M{point['n_rows']}",
            params=point_params(point),
            metrics=point_metrics(point),
            device=point["device"],
            tags={schema.TAG_KIND: schema.KIND_LIMITS, schema.TAG_ENGINE: point["engine"],
                  schema.TAG_SOURCE: path.name},
            params_artifact=schema.LIMITS_POINT_ARTIFACT,
        )
        for point in points
    ]
    return log_measured_runs(runs, experiment, tracking_uri)


def byte_size(text: str) -> int:
    """argparse type: a byte size with its unit (a bad one is a usage error, not a traceback)."""
    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="12GB", type=byte_size,
                        help="memory budget with a unit, e.g. 12GB or 16GiB")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--samples", type=int, help="N, to choose the engine for one problem")
    parser.add_argument("--outputs", type=int, default=1, help="O")
    parser.add_argument("--params", type=int, help="P")
    parser.add_argument("--disk", default=None, type=byte_size,
                        help="free disk for the cache engine, e.g. 500GB")
    parser.add_argument("--import-json", type=Path, help="log measured points to MLflow")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)
    if args.import_json is not None:
        count = log_measurements(args.import_json, args.tracking_uri)
        print(f"logged {count} measured points to experiment 'limits'")
        return
    budget = args.budget
    itemsize = 4 if args.dtype == "float32" else 8
    if args.samples and args.params:
        problem = Problem(args.samples, args.outputs, args.params, itemsize)
        disk = args.disk
        choice = best_engine(problem, budget, disk)
        for engine in ENGINES:
            est = estimate(problem, engine, chunk_samples=4096)
            print(f"{engine:17s} memory {format_bytes(est.memory_bytes):>10s}  "
                  f"disk {format_bytes(est.disk_bytes):>10s}  work {est.flops / 1e9:,.1f} GFLOP")
        if choice is None:
            print(f"nothing fits {format_bytes(budget)}: raise the budget or shrink the model")
        else:
            print(f"best: {choice[0]} with chunks of {choice[1]:,} samples")
        return
    print(f"Largest P per engine within {format_bytes(budget)} ({args.dtype}, chunks of 4096 "
          f"rows; in-memory engines also hold the data, streaming reads it from a loader). "
          f"The original library: P <= {SEED_MAX_WEIGHTS:,} and N·O <= {SEED_MAX_ROWS:,} on a "
          f"12 GB GPU.\n")
    print(feasible_region(budget, itemsize))
    print()
    print(matrix_free_region(budget, itemsize))


if __name__ == "__main__":
    main()
