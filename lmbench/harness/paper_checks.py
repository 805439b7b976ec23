"""Published-results checks: K random starts of LM on the classic problems, one MLflow run each.

Problems (``PROBLEMS``): XOR with a 2-3-1 net, parity-N (N = 3..7) with an N-N-1 net (N hidden
neurons: our choice, stated in the report), both with bipolar inputs and targets (+-1), and the
sinc(10x) curve fit of the torch-levenberg-marquardt README (20,000 points, 1-20-1, 61 weights,
``y = torch.sinc(10 x) = sin(10 pi x) / (10 pi x)``). Every net is ``Linear -> tanh -> Linear``.

Each start ``k`` of a run with seed ``s`` draws its initial weights after
``torch.manual_seed(s * 1_000_000 + k)`` and trains with ``LevenbergMarquardt`` (the seed's
damping) under ``StoppingRules(max_epochs, min_error=target)``; a start succeeds when its final
training MSE is <= the target. The run logs ``success_rate``, ``epochs_mean/std/median`` and
``time_mean_s/std_s`` (over successful starts, as the LM literature reports them),
``final_mse_median`` (all starts), ``n_starts``, the per-start values as metric histories
(``start_*`` with step = start index) and as ``starts.json`` / ``starts.csv`` artifacts.
Time is the sum of the LM epochs' times (not the one-off torch.func warm-up).

Two ways in, same function and same config (``conf/trainer/paper_check.yaml``):

    python -m lmbench.harness.paper_checks [--problems xor parity3 ...] [--starts 50]
    lmbench-run +experiment=paper_checks        # once jobs.py dispatches runner=paper_check
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from lmbench.core import LevenbergMarquardt, StoppingRules, get_weights_count, make_damping
from lmbench.harness.jobs import JobOutcome
from lmbench.harness.reproducibility import seed_everything
from lmbench.models.mlp import build_mlp
from lmbench.tracking import Tracker, tracker_from_config

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
#: Seed of start k of a run with seed s: s * SEED_STRIDE + k (so runs with other seeds never
#: share a start).
SEED_STRIDE = 1_000_000

TrackerFactory = Callable[..., Tracker]


@dataclass(frozen=True)
class Problem:
    """One classic LM problem: its data, network and the defaults of its check."""

    name: str
    description: str
    n_inputs: int
    n_hidden: int
    data: Callable[[torch.dtype], tuple[torch.Tensor, torch.Tensor]]
    target_mse: float
    max_epochs: int
    starts: int
    dtype: str
    stop_at_target: bool = True
    record_at: tuple[int, ...] = ()

    @property
    def network(self) -> str:
        return f"{self.n_inputs}-{self.n_hidden}-1 tanh"


def bipolar_parity(bits: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    """All 2**bits bipolar input patterns and the bipolar parity target (+1 for an odd number
    of +1 inputs); XOR is ``bits=2``."""
    x = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=bits)), dtype=dtype)
    odd = (x > 0).sum(dim=1, keepdim=True) % 2 == 1
    return x, torch.where(odd, 1.0, -1.0).to(dtype)


def sinc_data(dtype: torch.dtype = torch.float32, n: int = 20_000) -> tuple[torch.Tensor, ...]:
    """The README's curve: ``x = linspace(-1, 1, 20000)``, ``y = torch.sinc(10 x)``."""
    x = torch.linspace(-1, 1, n, dtype=dtype).unsqueeze(1)
    return x, torch.sinc(10 * x)


def _parity(bits: int) -> Problem:
    name = "xor" if bits == 2 else f"parity{bits}"
    hidden = 3 if bits == 2 else bits
    return Problem(
        name=name,
        description=(
            f"{'XOR' if bits == 2 else f'parity-{bits}'}: all {2**bits} bipolar patterns, "
            f"bipolar target, {bits}-{hidden}-1 tanh net"
        ),
        n_inputs=bits,
        n_hidden=hidden,
        data=lambda dtype, b=bits: bipolar_parity(b, dtype),
        target_mse=1e-4,
        max_epochs=1000,
        starts=50,
        dtype="float64",
    )


#: The registry, in report order.
PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        _parity(2),
        *(_parity(n) for n in range(3, 8)),
        Problem(
            name="sinc",
            description="sinc(10x) = sin(10 pi x)/(10 pi x) on 20,000 points in [-1, 1], "
            "1-20-1 tanh net (61 weights), float32 as in the README",
            n_inputs=1,
            n_hidden=20,
            data=sinc_data,
            target_mse=1e-6,
            max_epochs=1000,
            starts=3,
            dtype="float32",
            stop_at_target=False,
            record_at=(50,),
        ),
    ]
}


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


@dataclass(frozen=True)
class CheckSettings:
    """The settings of one check after config overrides (null = the problem's default)."""

    problem: Problem
    starts: int
    max_epochs: int
    target_mse: float
    dtype: torch.dtype
    mu_init: float
    demping_coef: float
    damping: str
    inner_steps: int
    mu_max: float

    @classmethod
    def from_config(cls, trainer: Any) -> CheckSettings:
        """Read ``cfg.trainer`` (``conf/trainer/paper_check.yaml``); errors name the knob."""
        name = str(trainer.problem)
        if name not in PROBLEMS:
            raise ValueError(
                f"trainer.problem={name!r} is not a known problem; known: {', '.join(PROBLEMS)}"
            )
        problem = PROBLEMS[name]

        def pick(key: str, default: Any) -> Any:
            value = trainer.get(key)
            return default if value is None else value

        starts = int(pick("starts", problem.starts))
        if not 1 <= starts < SEED_STRIDE:
            raise ValueError(f"trainer.starts must be in [1, {SEED_STRIDE}), got {starts}")
        max_epochs = int(pick("max_epochs", problem.max_epochs))
        if max_epochs < 1:
            raise ValueError(f"trainer.max_epochs must be >= 1, got {max_epochs}")
        dtype_name = str(pick("dtype", problem.dtype))
        if dtype_name not in ("float32", "float64"):
            raise ValueError(f"trainer.dtype must be float32 or float64, got {dtype_name!r}")
        return cls(
            problem=problem,
            starts=starts,
            max_epochs=max_epochs,
            target_mse=float(pick("target_mse", problem.target_mse)),
            dtype=getattr(torch, dtype_name),
            mu_init=float(pick("mu_init", 10.0)),
            demping_coef=float(pick("demping_coef", 10.0)),
            damping=str(pick("damping", "seed")),
            inner_steps=int(pick("inner_steps", 10)),
            mu_max=float(pick("mu_max", 1e10)),
        )

    def params(self) -> dict[str, Any]:
        """What the run logs as ``check.*`` params (the report reads them back)."""
        p = self.problem
        return {
            "problem": p.name, "description": p.description, "network": p.network,
            "starts": self.starts, "max_epochs": self.max_epochs,
            "target_mse": self.target_mse, "dtype": str(self.dtype).removeprefix("torch."),
            "mu_init": self.mu_init, "demping_coef": self.demping_coef,
            "damping": self.damping, "inner_steps": self.inner_steps,
            "stop_at_target": p.stop_at_target,
        }


def run_start(settings: CheckSettings, start: int, base_seed: int) -> StartResult:
    """Train one random start and measure it."""
    problem = settings.problem
    x, y = problem.data(settings.dtype)
    seed = base_seed * SEED_STRIDE + start
    torch.manual_seed(seed)
    net = build_mlp(problem.n_inputs, 1, (problem.n_hidden,), "tanh", "linear", settings.dtype)
    trainer = LevenbergMarquardt(
        net,
        damping=make_damping(settings.damping, settings.mu_init, settings.demping_coef),
        stopping=StoppingRules(
            max_epochs=settings.max_epochs,
            min_error=settings.target_mse if problem.stop_at_target else None,
            mu_max=settings.mu_max,
        ),
        inner_steps=settings.inner_steps,
    )
    history = trainer.fit(x, y)
    final = float(history.loss[-1])
    return StartResult(
        start=start,
        seed=seed,
        success=math.isfinite(final) and final <= settings.target_mse,
        epochs=history.epochs,
        final_mse=final,
        time_s=float(sum(history.epoch_time)),
        stop_reason=history.stop_reason,
        mse_at={e: float(history.loss[e]) for e in problem.record_at if e < len(history.loss)},
    )


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


def _data_hash(settings: CheckSettings) -> str:
    x, y = settings.problem.data(settings.dtype)
    digest = hashlib.sha256()
    for t in (x, y):
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run_paper_checks(cfg: DictConfig, tracker_factory: TrackerFactory) -> JobOutcome:
    """Run the check of ``cfg.trainer.problem`` and log it as ONE run; the Hydra runner.

    ``tracker_factory(run_name=..., tags=..., device=..., dataset_hash=...)`` returns the run's
    tracker (``functools.partial(tracker_from_config, cfg.tracking, sweep_id=...)`` in the
    harness). Returns the ``JobOutcome`` the app logs (primary metric: ``success_rate``).
    """
    settings = CheckSettings.from_config(cfg.trainer)
    problem = settings.problem
    base_seed = int(cfg.get("seed", 0))
    seed_everything(base_seed, threads=int(cfg.get("threads", 1)))
    x, _ = problem.data(settings.dtype)
    tags = {
        "kind": "paper_check", "problem": problem.name, "method": "lm",
        "dataset": problem.name, "task": "paper_check", "model": problem.network,
        **{str(k): str(v) for k, v in (cfg.get("tags") or {}).items()},
    }
    tracker = tracker_factory(
        run_name=f"paper_check-{problem.name}-s{base_seed}",
        tags=tags,
        device=str(cfg.get("device", "cpu")),
        dataset_hash=_data_hash(settings),
    )
    started = time.perf_counter()
    with tracker:
        config = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(config, dict)
        for unused in ("dataset", "model", "split"):  # composed by default, not used here
            config.pop(unused, None)
        tracker.log_config(config)
        tracker.set_tags({f"check.{k}": v for k, v in settings.params().items()})
        results = [run_start(settings, k, base_seed) for k in range(settings.starts)]
        metrics = summarize_starts(results, problem.record_at)
        n_parameters = get_weights_count(
            build_mlp(problem.n_inputs, 1, (problem.n_hidden,), "tanh", "linear")
        )
        tracker.log_metrics({
            **metrics,
            "n_parameters": n_parameters,
            "n_samples": int(x.shape[0]),
            "train_time_s": metrics["time_total_s"],
            "wall_time_s": time.perf_counter() - started,
        })
        tracker.log_epoch_history({
            "start_epochs": [r.epochs for r in results],
            "start_final_mse": [r.final_mse for r in results],
            "start_time_s": [r.time_s for r in results],
            "start_success": [float(r.success) for r in results],
        })
        rows = [r.as_row() for r in results]
        tracker.log_dict({"settings": settings.params(), "starts": rows}, "starts.json")
        tracker.log_text(_csv_text(rows), "starts.csv")
        tracker.set_tags({"primary_metric": "success_rate"})
    return JobOutcome(
        method="paper_check",
        dataset=problem.name,
        task="paper_check",
        test_metrics={"success_rate": metrics["success_rate"]},
        primary_metric="success_rate",
        n_parameters=n_parameters,
        train_time_s=metrics["time_total_s"],
        run_id=getattr(tracker, "run_id", None),
        extra_metrics=metrics,
    )


# ---------------------------------------------------------------------- standalone CLI
def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The same composed config ``lmbench-run`` would build (trainer=paper_check + overrides)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=["trainer=paper_check", *overrides])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lmbench.harness.paper_checks``: every (or the named) check, one run each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--starts", type=int, default=None,
                        help="random starts per problem (default: 50; sinc 3)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epochs per start (default: 1000)")
    parser.add_argument("--tracking-uri", default=None,
                        help="store URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--experiment-name", default="paper_checks")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. seed=1")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in args.problems:
        overrides = [f"trainer.problem={name}", f"tracking.experiment_name={args.experiment_name}"]
        if args.starts is not None:
            overrides.append(f"trainer.starts={args.starts}")
        if args.max_epochs is not None:
            overrides.append(f"trainer.max_epochs={args.max_epochs}")
        if args.tracking_uri:
            overrides.append(f"tracking.tracking_uri={args.tracking_uri}")
        cfg = compose_config([*overrides, *args.overrides])

        def factory(cfg: DictConfig = cfg, **kwargs: Any) -> Tracker:
            return tracker_from_config(cfg.tracking, **kwargs)

        outcome = run_paper_checks(cfg, factory)
        m = outcome.extra_metrics
        print(
            f"{name:9s} success {m['success_rate']:.0%} of {int(m['n_starts'])}  "
            f"epochs {m['epochs_mean']:.1f} +- {m['epochs_std']:.1f}  "
            f"time {m['time_mean_s']:.3f} +- {m['time_std_s']:.3f} s  "
            f"final MSE median {m['final_mse_median']:.3g}  run {outcome.run_id}",
            flush=True,
        )


if __name__ == "__main__":
    main()
