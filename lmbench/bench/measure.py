"""Measure one LM epoch of one engine at one size: peak memory, time and its split.

Peak memory is the memory in use above what was in use before training
(``lmbench.bench.memory.PeakMemoryInUse``: the CUDA allocator on a GPU, the C heap on the
CPU). Each point runs twice and the second run is reported: the first one also pays one-time
library allocations (BLAS and OpenMP buffers, kernel caches) that are not the engine's.

Only torch and numpy are needed here (no Hydra/MLflow), so the same code runs on a bare GPU
machine; the harness logs the JSON it prints.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from lmbench.bench.memory import PeakMemoryInUse
from lmbench.bench.workloads import N_INPUTS, mlp_with_params
from lmbench.core.cost_model import Problem, estimate
from lmbench.core.engines import ENGINES, VARIANT_ENGINES, Engine
from lmbench.core.settings import TrainerSettings


@dataclass
class Measurement:
    """One epoch of one engine: what was run, predicted and measured."""

    engine: str
    device: str
    dtype: str
    n_params: int
    n_rows: int
    n_outputs: int
    chunk_samples: int
    predicted_memory_bytes: int
    predicted_flops: float
    peak_memory_bytes: int
    epoch_time_s: float
    time_jacobian_s: float
    time_system_s: float
    time_solve_s: float
    time_evaluate_s: float
    trials: int
    achieved_gflops: float

    @property
    def memory_ratio(self) -> float:
        """measured / predicted peak memory."""
        return self.peak_memory_bytes / max(self.predicted_memory_bytes, 1)


def point_params(point: dict[str, Any]) -> dict[str, Any]:
    """The MLflow params of a measured point (the schema the limits report reads)."""
    return {
        "n_params": point["n_params"],
        "n_rows": point["n_rows"],
        "n_outputs": point["n_outputs"],
        "chunk_rows": point["chunk_samples"],
        "dtype": point["dtype"],
    }


def point_metrics(point: dict[str, Any]) -> dict[str, float]:
    """The MLflow metrics of a measured point: every number not already a param."""
    skip = {"n_params", "n_rows", "n_outputs", "chunk_samples"}
    return {k: v for k, v in point.items() if isinstance(v, int | float) and k not in skip}


def measure_point(
    engine: Engine,
    n_params: int,
    n_rows: int,
    n_outputs: int = 1,
    chunk_samples: int | None = None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    warm: bool = True,
    cg_max_iter: int = 500,
) -> Measurement:
    """Train one epoch (seed damping, one accepted trial in the common case) and measure it.

    ``warm`` runs the same epoch once first and reports the second run.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    torch.manual_seed(0)
    dev = torch.device(device)
    n_samples = max(1, n_rows // n_outputs)
    x = torch.randn(n_samples, N_INPUTS, dtype=dtype, device=dev)
    y = torch.tanh(x[:, :n_outputs] * x[:, 1 : n_outputs + 1])
    model = mlp_with_params(n_params, N_INPUTS, n_outputs).to(dev, dtype)
    real_params = sum(p.numel() for p in model.parameters())
    chunk = chunk_samples or n_samples
    temp = tempfile.mkdtemp(prefix="lmbench-limits-") if engine == "cache" else None
    runs = VARIANT_ENGINES[engine]  # type: ignore[index]
    trainer = TrainerSettings(
        engine=runs.name,
        form=getattr(runs, "form", "primal"),
        max_epochs=1,
        min_error=None,
        temp_folder=temp,
        chunk_rows=chunk,
        cg_max_iter=cg_max_iter,
    ).build(model)

    def one_epoch() -> tuple[Any, float, int]:
        model.load_state_dict(initial)
        with PeakMemoryInUse(dev) as peak:
            started = time.perf_counter()
            if runs.source == "loader":
                chunks = [(x[i : i + chunk], y[i : i + chunk]) for i in range(0, n_samples, chunk)]
                history = trainer.fit_loader(chunks)
            else:
                history = trainer.fit(x, y)
            wall = time.perf_counter() - started
        return history, wall, peak.bytes

    initial = {k: v.clone() for k, v in model.state_dict().items()}
    if warm:
        one_epoch()  # one-time library allocations and kernel caches
    history, wall, peak = one_epoch()
    trials = int(history.trials[1]) if len(history.trials) > 1 else 0
    predicted = estimate(
        Problem(n_samples, n_outputs, real_params, torch.finfo(dtype).bits // 8),
        engine, chunk, trials=max(trials, 1), cg_iterations=cg_max_iter,
        activation_floats=activation_floats(model),
    )
    epoch = history.epoch_time[1] if len(history.epoch_time) > 1 else wall
    return Measurement(
        engine=engine,
        device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        dtype=str(dtype).replace("torch.", ""),
        n_params=real_params,
        n_rows=n_samples * n_outputs,
        n_outputs=n_outputs,
        chunk_samples=chunk,
        predicted_memory_bytes=predicted.memory_bytes,
        predicted_flops=predicted.flops,
        peak_memory_bytes=int(peak),
        epoch_time_s=epoch,
        time_jacobian_s=_at(history.time_jacobian),
        time_system_s=_at(history.time_system),
        time_solve_s=_at(history.time_solve),
        time_evaluate_s=_at(history.time_evaluate),
        trials=trials,
        achieved_gflops=predicted.flops / epoch / 1e9 if epoch > 0 else math.nan,
    )


def activation_floats(model: torch.nn.Module) -> int:
    """Floats one sample's activations take in the benchmark MLP: each Linear layer's output
    and, for the hidden one, its tanh (what a forward pass saves for the backward one)."""
    widths = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return sum(widths) + sum(widths[:-1])


def _at(series: list[float]) -> float:
    return float(series[1]) if len(series) > 1 else math.nan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure one LM epoch; prints JSON.")
    parser.add_argument("--engine", choices=ENGINES, required=True)
    parser.add_argument("--params", type=int, required=True, help="target weight count P")
    parser.add_argument("--rows", type=int, required=True, help="residual rows M = N*O")
    parser.add_argument("--outputs", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=None, help="samples per Jacobian chunk")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cg-max-iter", type=int, default=500)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = measure_point(
        args.engine, args.params, args.rows, args.outputs, args.chunk, args.device,
        getattr(torch, args.dtype), cg_max_iter=args.cg_max_iter,
    )
    print(json.dumps({**asdict(result), "memory_ratio": result.memory_ratio}))


if __name__ == "__main__":
    main()
