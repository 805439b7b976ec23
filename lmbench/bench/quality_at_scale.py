"""Quality at scale: matrix-free LM on a network of ~1M weights against Adam at equal wall time,
and against Cholesky LM on the largest network of the same shape Cholesky trains in time.

On a packaged dataset (``letter``: 16 features, 26 classes; seeded splits) four networks are
trained, all with the cross-entropy loss (``lmbench.bench.quality_arms``):

a. ``matrix_free_large``: hidden (1024, 960) tanh, 1,026,394 weights, matrix-free LM
   (``engine="matrix_free"``, the default seed damping), ``--lm-epochs`` epochs (6; a guard
   stops after the epoch that would end past ``--lm-budget`` seconds, 420);
b. ``adam_large``: the same network from the same initial weights, Adam for the wall time (a)
   took, best-validation weights restored;
c. ``cholesky_small``: Cholesky LM (``in_memory``) on the widest network of the same family
   (widths in the ratio 1024 : 960) with at most ``--small-max-params`` weights, within
   ``--small-budget`` seconds; ``matrix_free_small``: matrix-free LM on that network for as
   many epochs as (c) ran.

Plus one memory point of the matrix-free engine at ~1M weights (``lmbench.bench.matrix_free``,
heap peak of one epoch above model and data, in a fresh process): its bytes per million weights.

Why these sizes (one CPU core): at 1M weights a CG iteration (a jvp and a vjp over the rows)
costs ~0.16 ms per training row and the gradient/diagonal pass ~1.2 ms per row
(``core.matrix_free_diagonal``), so with 2,000 training rows (validation and test keep 2,000
each) an epoch is ~20-50 s, mostly CG: ``cg_max_iter`` = 50 per damping trial. Cholesky LM's
epoch grows as rows x P^2 (~26 s at 2,000 rows and P = 5,294), hence ``--small-max-params``
5,500 and ``--small-budget`` 180 s. The default invocation takes ~12 minutes on one core.

    python -m lmbench.bench.quality_at_scale --out DIR [--tracking-uri URI]
    python -m lmbench.bench.quality_at_scale --smoke --out DIR      # tiny sizes, seconds

Writes ``DIR/quality_at_scale.json`` and logs one run per network (and the memory point) in the
experiment ``scale`` (tag ``kind=scale``, ``arm``), which ``lmbench-report`` shows.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from lmbench.bench.quality_arms import ArmResult, adam_arm, largest_in_family, lm_arm, warm_up
from lmbench.core.settings import TrainerSettings
from lmbench.data import prepare_dataset
from lmbench.tracking import schema

JSON_NAME = "quality_at_scale.json"
#: CG iterations of the memory point (``lmbench.bench.matrix_free``'s own default).
MEMORY_CG_MAX_ITER = 10


@dataclass(frozen=True)
class ScaleSettings:
    """The sizes, budgets and trainer settings of one measurement (defaults: the full run)."""

    dataset: str = "letter"
    seed: int = 0
    train_rows: int = 2000
    eval_rows: int = 2000
    hidden: tuple[int, ...] = (1024, 960)
    activation: str = "tanh"
    lm_epochs: int = 6
    lm_budget_s: float = 420.0
    cg_max_iter: int = 50
    chunk_samples: int = 1024
    small_max_params: int = 5500
    small_epochs: int = 10
    small_budget_s: float = 180.0
    adam_lr: float = 1e-3
    adam_batch_size: int = 128
    memory_params: int = 1_000_000
    memory_rows: int = 300
    memory_in_process: bool = False

    @classmethod
    def smoke(cls) -> ScaleSettings:
        """Tiny sizes for tests: the same code path in seconds."""
        return cls(train_rows=200, eval_rows=100, hidden=(32, 30), lm_epochs=2, lm_budget_s=60,
                   cg_max_iter=3, chunk_samples=64, small_max_params=600, small_epochs=2,
                   small_budget_s=30, memory_params=3_000, memory_rows=60,
                   memory_in_process=True)

    def lm(self, engine: str, max_epochs: int) -> TrainerSettings:
        return TrainerSettings(engine=engine, max_epochs=max_epochs,  # type: ignore[arg-type]
                               cg_max_iter=self.cg_max_iter, batch_size=self.chunk_samples)


def measure(settings: ScaleSettings, progress: bool = True) -> dict[str, Any]:
    """Train every arm and take the memory point; the JSON-ready result."""
    data = prepare_dataset(settings.dataset, settings.seed, max_train_rows=settings.train_rows,
                           max_eval_rows=settings.eval_rows)
    if not data.is_classification:
        raise ValueError(f"dataset {settings.dataset!r} is a regression task; quality at scale "
                         "compares cross-entropy training: pick a classification dataset")
    shared = {"activation": settings.activation, "seed": settings.seed}
    small = largest_in_family(settings.hidden, data.n_features, data.n_outputs,
                              settings.small_max_params)
    arms: list[ArmResult] = []
    warm_up(data)

    def done(result: ArmResult) -> ArmResult:
        arms.append(result)
        if progress:
            print(f"{result.arm:18s} P={result.n_params:>9,}  {result.epochs:4d} epochs  "
                  f"{result.wall_time_s:7.1f} s (CPU {result.cpu_time_s:6.1f} s)  "
                  f"train CE {result.final_train_loss:.4f}  "
                  f"test acc {result.test_accuracy:.4f}  test CE {result.test_cross_entropy:.4f}"
                  f"  RSS +{result.peak_rss_bytes / 2**20:,.0f} MiB", flush=True)
        return result

    large = done(lm_arm(schema.ARM_MATRIX_FREE_LARGE, data, settings.hidden,
                        settings.lm("matrix_free", settings.lm_epochs),
                        budget_s=settings.lm_budget_s, **shared))
    done(adam_arm(schema.ARM_ADAM_LARGE, data, settings.hidden, budget_s=large.wall_time_s,
                  lr=settings.adam_lr, batch_size=settings.adam_batch_size, **shared))
    cholesky = done(lm_arm(schema.ARM_CHOLESKY_SMALL, data, small,
                           settings.lm("in_memory", settings.small_epochs),
                           budget_s=settings.small_budget_s, **shared))
    done(lm_arm(schema.ARM_MATRIX_FREE_SMALL, data, small,
                settings.lm("matrix_free", max(cholesky.epochs, 1)), budget_s=None, **shared))
    memory = memory_point(settings)
    if progress:
        print(f"matrix-free memory: {memory['bytes_per_million_weights'] / 1e6:,.1f} MB per "
              f"million weights (P={memory['n_params']:,}, {memory['n_rows']} rows)", flush=True)
    return {
        "settings": {**asdict(settings), "small_hidden": list(small)},
        "dataset": {"name": data.name, "hash": data.hash, "n_train": len(data.x_train),
                    "n_val": len(data.x_val), "n_test": len(data.x_test),
                    "n_features": data.n_features, "n_classes": data.n_outputs},
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "processor": platform.processor() or platform.machine()},
        "arms": [asdict(arm) for arm in arms],
        "memory_point": memory,
    }


def memory_point(settings: ScaleSettings) -> dict[str, Any]:
    """One matrix-free epoch's heap peak at ``memory_params`` weights (``bench.matrix_free``:
    in a fresh process unless ``memory_in_process``)."""
    from lmbench.bench import matrix_free

    cg_max_iter = min(settings.cg_max_iter, MEMORY_CG_MAX_ITER)
    if settings.memory_in_process:
        return matrix_free.point(settings.memory_params, settings.memory_rows, 100, cg_max_iter)
    return matrix_free.run_point([
        "--params", str(settings.memory_params), "--rows", str(settings.memory_rows),
        "--cg-max-iter", str(cg_max_iter), "--threads", str(torch.get_num_threads()),
    ])


def log_result(result: dict[str, Any], tracking_uri: str | None, experiment: str) -> int:
    """One MLflow run per arm and one for the memory point (``kind=scale``, tag ``arm``)."""
    from lmbench.tracking.measurements import MeasuredRun, log_measured_runs

    base = result["dataset"]
    common = {schema.PARAM_SEED: result["settings"]["seed"],
              schema.PARAM_N_TRAIN_ROWS: base["n_train"], "dataset": base["name"]}
    runs = []
    for arm in result["arms"]:
        runs.append(MeasuredRun(
            f"scale-{arm['arm']}",
            params={**common, schema.PARAM_N_PARAMS: arm["n_params"],
                    schema.PARAM_HIDDEN_LAYERS: "x".join(map(str, arm["hidden"])),
                    schema.PARAM_CG_MAX_ITER: arm["settings"].get("cg_max_iter", ""),
                    "settings": arm["settings"]},
            metrics={
                schema.test_metric("accuracy"): arm["test_accuracy"],
                schema.test_metric("cross_entropy"): arm["test_cross_entropy"],
                schema.METRIC_FINAL_TRAIN_LOSS: arm["final_train_loss"],
                schema.METRIC_BEST_VAL_LOSS: arm["val_loss"],
                schema.METRIC_EPOCHS: arm["epochs"],
                schema.METRIC_WALL_TIME: arm["wall_time_s"],
                schema.METRIC_CPU_TIME: arm["cpu_time_s"],
                schema.METRIC_PEAK_RSS: arm["peak_rss_bytes"],
                schema.METRIC_N_PARAMETERS: arm["n_params"],
            },
            device="cpu",
            tags={schema.TAG_KIND: schema.KIND_SCALE, schema.TAG_ARM: arm["arm"],
                  schema.TAG_METHOD: arm["method"], schema.TAG_ENGINE: arm["engine"] or "none",
                  schema.TAG_DATASET: base["name"], schema.TAG_TASK: "multiclass",
                  schema.TAG_DATASET_HASH: base["hash"], schema.TAG_STOP_REASON:
                  arm["stop_reason"]},
        ))
    point = result["memory_point"]
    runs.append(MeasuredRun(
        f"scale-{schema.ARM_MEMORY_POINT}",
        params={schema.PARAM_N_PARAMS: point["n_params"], schema.PARAM_N_ROWS: point["n_rows"],
                schema.PARAM_CHUNK_ROWS: point["chunk_samples"],
                schema.PARAM_CG_MAX_ITER: point["cg_max_iter"]},
        metrics={schema.METRIC_BYTES_PER_MILLION_WEIGHTS: point["bytes_per_million_weights"],
                 schema.METRIC_PEAK_MEMORY: point["peak_memory_bytes"],
                 schema.METRIC_PREDICTED_MEMORY: point["predicted_memory_bytes"],
                 schema.METRIC_EPOCH_TIME: point["epoch_time_s"]},
        device=str(point.get("device", "cpu")),
        tags={schema.TAG_KIND: schema.KIND_SCALE, schema.TAG_ARM: schema.ARM_MEMORY_POINT,
              schema.TAG_ENGINE: "matrix_free"},
    ))
    return log_measured_runs(runs, experiment, tracking_uri)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON file")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--experiment", default="scale", help="MLflow experiment name")
    parser.add_argument("--no-tracking", action="store_true", help="write the JSON only")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (tests)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--train-rows", type=int, default=None)
    parser.add_argument("--lm-epochs", type=int, default=None)
    parser.add_argument("--lm-budget", type=float, default=None, help="seconds for (a)")
    parser.add_argument("--cg-max-iter", type=int, default=None)
    parser.add_argument("--small-max-params", type=int, default=None)
    parser.add_argument("--small-budget", type=float, default=None, help="seconds for (c)")
    args = parser.parse_args(argv)
    settings = ScaleSettings.smoke() if args.smoke else ScaleSettings()
    chosen = {"seed": args.seed, "train_rows": args.train_rows, "lm_epochs": args.lm_epochs,
              "lm_budget_s": args.lm_budget, "cg_max_iter": args.cg_max_iter,
              "small_max_params": args.small_max_params, "small_budget_s": args.small_budget}
    settings = replace(settings, **{k: v for k, v in chosen.items() if v is not None})
    for name in ("train_rows", "lm_epochs", "cg_max_iter", "small_max_params"):
        if getattr(settings, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    result = measure(settings)
    result["total_time_s"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / JSON_NAME
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {path} ({result['total_time_s']:.0f} s)")
    if not args.no_tracking:
        count = log_result(result, args.tracking_uri, args.experiment)
        print(f"logged {count} runs to experiment {args.experiment!r}")
    return result


if __name__ == "__main__":
    main()
