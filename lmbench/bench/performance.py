"""Side-by-side epoch time and peak memory of lmbench, torch-levenberg-marquardt, a plain
``vmap(jacrev)`` LM epoch and the FLOP floor, on the same models, data and full-batch steps.

    python -m lmbench.bench.performance --sizes ci --out results.json
    python -m lmbench.bench.performance --sizes small --log-to-mlflow --tracking-uri URI
    python -m lmbench.bench.performance --size 7000:1 --implementations lmbench,floor

The implementations (one full-batch LM epoch each: the Gauss-Newton system at the current
weights, then damping trials until one is accepted) and the variants kept in the JSON only are
those of ``lmbench.bench.implementations``.

Damping conventions: lmbench minimises E = 1/2 ||r||^2 and solves (JᵀJ + mu I) d = -Jᵀr.
torch-levenberg-marquardt divides JᵀJ and Jᵀr by the batch size N (samples, not N·O) and solves
(JᵀJ/N + lam I) d = -Jᵀr/N, i.e. (JᵀJ + N lam I) d = -Jᵀr: the same step when lam = mu / N.
Its loss is the mean of squares, which only rescales E (acceptance compares losses). What
remains different: it accepts only a strict decrease (we accept E_new <= E), keeps its damping
as a float32 tensor whatever the model's dtype, and after its last allowed attempt keeps that
attempt's weights unchecked (we keep the old weights); with matched damping the steps agree to
rounding (tested in float64).

Timing: threads pinned, one warm-up epoch per implementation, then ``repeats`` rounds that run
every implementation once each (interleaved, so load bursts hit all of them); the minimum per
implementation is reported, and ratios are given both as ratios of minima and as the median of
per-round ratios (``paired_ratio_*``, steadier on a shared machine). Peak memory
(``PeakMemoryInUse``: C heap on the CPU, the CUDA allocator on a GPU) is measured in one more
warm run, apart from the timed ones.

Importing this module needs only torch. The reference library is imported when it is run (its
package ``__init__`` imports ``pytorch_lightning`` through its ``utils``; nothing here calls
``utils.fit``); MLflow only with ``--log-to-mlflow`` (through ``lmbench.tracking``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lmbench.bench.implementations import (
    IMPLEMENTATIONS,
    REFERENCE,
    VARIANTS,
    lmbench_trainer,
    reference_module,
    reference_split,
    runners,
)
from lmbench.bench.markdown import agreement_table, markdown_table
from lmbench.bench.memory import PeakMemoryInUse
from lmbench.bench.reference import EpochOutcome, LMSettings, PlainVmapLM
from lmbench.bench.results import ImplementationResult, LossAgreement, SizeResult, add_ratios
from lmbench.bench.workloads import Workload, make_workload
from lmbench.tracking import schema

#: (target weight count P, outputs O) per size set; N·O ≈ 2P residual rows for each.
SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "small": ((500, 1), (1000, 2)),
    "ci": ((500, 1), (1000, 2), (2000, 1), (4000, 2)),
    "full": ((500, 1), (1000, 2), (2000, 1), (4000, 2), (7000, 1)),
}
EXPERIMENT = "performance"


# ------------------------------------------------------------------------------ measurement
def measure_size(
    work: Workload,
    settings: LMSettings | None = None,
    repeats: int = 5,
    names: Sequence[str] = IMPLEMENTATIONS + VARIANTS,
    loss_steps: int = 5,
) -> SizeResult:
    """Time (min over interleaved repeats) and peak memory of each implementation at one size,
    plus the loss agreement over ``loss_steps`` accepted steps (0 skips it)."""
    settings = settings or LMSettings()
    factories = runners(work, settings, names)
    for factory in factories.values():
        factory()()  # warm-up: lazy imports, kernel caches, allocator
    times: dict[str, list[float]] = {name: [] for name in factories}
    fastest: dict[str, EpochOutcome] = {}
    for _ in range(max(repeats, 1)):
        for name, factory in factories.items():
            run = factory()
            outcome = run()
            del run
            times[name].append(outcome.epoch_time_s)
            if name not in fastest or outcome.epoch_time_s < fastest[name].epoch_time_s:
                fastest[name] = outcome
    memory: dict[str, int] = {}
    for name, factory in factories.items():
        run = factory()
        gc.collect()
        with PeakMemoryInUse(work.device) as peak:
            run()
        memory[name] = int(peak.bytes)
        del run
    results = {
        name: ImplementationResult(
            implementation=name, epoch_time_s=min(times[name]), peak_memory_bytes=memory[name],
            trials=fastest[name].trials, accepted=fastest[name].accepted,
            loss_after=fastest[name].loss, times_s=times[name], split_s=fastest[name].split,
        )
        for name in factories
    }
    add_ratios(results)
    agreement = loss_agreement(work, settings, loss_steps) if loss_steps > 0 else None
    split = reference_split(work, settings, repeats) if REFERENCE in factories else {}
    return SizeResult(work.n_params, work.n_residuals, work.n_samples, work.n_outputs, results,
                      agreement, split)


# ------------------------------------------------------------------------------ loss agreement
def lmbench_losses(work: Workload, settings: LMSettings, steps: int,
                   max_epochs: int) -> list[float]:
    """Initial loss, then the loss after each of the first ``steps`` accepted lmbench epochs."""

    def enough(info: Any) -> bool:
        return sum(info.history.accepted[1:]) >= steps

    trainer = lmbench_trainer(work.fresh_model(), settings, "primal", max_epochs, [enough])
    history = trainer.fit(work.x, work.y)
    accepted = [loss for loss, ok in zip(history.loss[1:], history.accepted[1:], strict=True)
                if ok]
    return [history.loss[0], *accepted[:steps]]


def reference_losses(work: Workload, settings: LMSettings, steps: int,
                     max_epochs: int) -> list[float]:
    """The same for torch-levenberg-marquardt's ``training_step`` (accepted: loss decreased)."""
    module = reference_module(work.fresh_model(), work, settings)
    with torch.no_grad():
        previous = float(module.loss_fn(module.forward(work.x), work.y))
    losses = [previous]
    for _ in range(max_epochs):
        _, loss, stop, _ = module.training_step(work.x, work.y)
        value = float(loss)
        if value < previous:
            losses.append(value)
        previous = value
        if len(losses) > steps or stop:
            break
    return losses


def plain_losses(work: Workload, settings: LMSettings, steps: int, max_epochs: int) -> list[float]:
    """The same for ``PlainVmapLM``."""
    plain = PlainVmapLM(work.fresh_model(), settings)
    with torch.no_grad():
        r = plain.outputs(plain.theta, work.x) - work.y
    losses = [float(r.pow(2).mean())]
    for _ in range(max_epochs):
        outcome = plain.step(work.x, work.y)
        if outcome.accepted:
            losses.append(outcome.loss)
        if len(losses) > steps:
            break
    return losses


def loss_agreement(work: Workload, settings: LMSettings | None = None, steps: int = 5,
                   max_epochs: int = 30) -> LossAgreement:
    """Losses after the same number of accepted steps from the same weights, and the largest
    relative difference of each implementation from lmbench over those steps."""
    settings = settings or LMSettings()
    losses = {
        "lmbench": lmbench_losses(work, settings, steps, max_epochs),
        REFERENCE: reference_losses(work, settings, steps, max_epochs),
        "plain_vmap": plain_losses(work, settings, steps, max_epochs),
    }
    base = losses["lmbench"]
    differences = {}
    for name, series in losses.items():
        common = min(len(series), len(base))
        gaps = [abs(a - b) / max(abs(b), 1e-30) for a, b in zip(series[:common], base[:common],
                                                                strict=True)]
        differences[name] = max(gaps) if common == steps + 1 else math.inf
    return LossAgreement(steps, losses, differences)


# ------------------------------------------------------------------------------ output
def run_comparison(
    sizes: Sequence[tuple[int, int]],
    repeats: int = 5,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    loss_steps: int = 5,
    settings: LMSettings | None = None,
    progress: Callable[[str], None] | None = None,
    names: Sequence[str] = IMPLEMENTATIONS + VARIANTS,
) -> list[SizeResult]:
    """``measure_size`` for each (P, O) in ``sizes``."""
    out = []
    for n_params, n_outputs in sizes:
        work = make_workload(n_params, n_outputs, device=device, dtype=dtype)
        if progress is not None:
            progress(f"P={work.n_params} N·O={work.n_residuals} ...")
        result = measure_size(work, settings, repeats, names, loss_steps)
        out.append(result)
        if progress is not None:
            progress(markdown_table([result]))
    return out


def log_to_mlflow(sizes: Sequence[SizeResult], device: str, tracking_uri: str | None) -> int:
    """One run per (implementation, size) in experiment ``performance`` (report section 5)."""
    from lmbench.tracking.measurements import MeasuredRun, log_measured_runs

    runs = []
    for size in sizes:
        for item in size.results.values():
            if item.implementation not in IMPLEMENTATIONS:
                continue
            metrics = {
                "epoch_time_s": item.epoch_time_s,
                "peak_memory_bytes": item.peak_memory_bytes,
                "ratio_to_floor": item.ratio_to_floor,
                "ratio_to_reference": item.ratio_to_reference,
                "memory_ratio_to_floor": item.memory_ratio_to_floor,
                "memory_ratio_to_reference": item.memory_ratio_to_reference,
                "paired_ratio_to_floor": item.paired_ratio_to_floor,
                "paired_ratio_to_reference": item.paired_ratio_to_reference,
            }
            agree = size.loss_agreement
            if agree is not None and item.implementation in agree.max_relative_difference:
                metrics["loss_max_rel_diff_vs_lmbench"] = \
                    agree.max_relative_difference[item.implementation]
            runs.append(MeasuredRun(
                f"performance-{item.implementation}-P{size.n_params}-M{size.n_residuals}",
                params={schema.PARAM_N_PARAMS: size.n_params,
                        schema.PARAM_N_RESIDUALS: size.n_residuals,
                        schema.PARAM_N_OUTPUTS: size.n_outputs, schema.PARAM_TRIALS: item.trials},
                metrics=metrics,
                device=device,
                tags={schema.TAG_KIND: schema.KIND_PERFORMANCE,
                      schema.TAG_IMPLEMENTATION: item.implementation},
            ))
    return log_measured_runs(runs, EXPERIMENT, tracking_uri)


def _device_name(device: str) -> str:
    """The ``device`` tag: the GPU's name, or ``cpu`` (as ``lmbench.bench.measure`` tags)."""
    dev = torch.device(device)
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", choices=sorted(SIZES), default="ci")
    parser.add_argument("--size", action="append", default=None, metavar="P:O",
                        help="measure this size instead of --sizes (repeatable), e.g. 7000:1")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loss-steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS + VARIANTS),
                        help="comma-separated subset of: " + ", ".join(IMPLEMENTATIONS + VARIANTS))
    parser.add_argument("--log-to-mlflow", action="store_true")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = SIZES[args.sizes]
    if args.size:
        sizes = tuple((int(p), int(o or 1)) for p, _, o in (i.partition(":") for i in args.size))
    results = run_comparison(
        sizes, args.repeats, args.device, getattr(torch, args.dtype),
        args.loss_steps, progress=lambda text: print(text, file=sys.stderr, flush=True),
        names=[n.strip() for n in args.implementations.split(",") if n.strip()],
    )
    print(markdown_table(results))
    print()
    print(agreement_table(results))
    device = _device_name(args.device)
    if args.out is not None:
        payload = {
            "device": device,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "threads": args.threads,
            "torch": torch.__version__,
            "dtype": args.dtype,
            "repeats": args.repeats,
            "command": " ".join(["python -m lmbench.bench.performance", *(argv or sys.argv[1:])]),
            "settings": asdict(LMSettings()),
            "sizes": [asdict(size) for size in results],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    if args.log_to_mlflow:
        count = log_to_mlflow(results, device, args.tracking_uri)
        print(f"logged {count} runs to experiment '{EXPERIMENT}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
