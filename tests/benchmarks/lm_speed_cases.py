"""Workloads of the epoch-speed benchmarks, shared by the pytest-benchmark suite and the report.

One LM epoch of ``lmbench.core.LevenbergMarquardt`` (MLP, float32, CPU) is compared, at the same
shape and in the same process, with:

* the **floor**: J^T J as one full GEMM of the Jacobian's size (M x P) plus one Cholesky of the
  P x P result through ``torch.linalg.cholesky`` (no Jacobian, no loss, one factorisation);
* a **reference** epoch: the plain ~30-line ``torch.func`` implementation (``vmap(jacrev)`` J,
  a separate forward for r, full ``J.T @ J``, ``torch.linalg.solve`` per damping trial);
* a **seed-style** epoch: the original library's Jacobian, one ``torch.autograd.grad`` per
  residual (M backward passes), then the same full system and solves (small shapes only).

"One epoch" is ``history.epoch_time[1]`` of a fresh ``fit(max_epochs=1)``: the Jacobian and
J^T J assembly, every damping trial until acceptance (one factorisation and one loss pass each)
and the bookkeeping. Not in it: one-time setup (model, trainer, the probe row, the torch.func
warm-up) and the loss at the starting weights (every later epoch gets it from the previous
epoch's accepted trial). The reference and seed-style epochs are timed on the same terms: they
receive the starting loss and stop at the first accepted trial with the same seed damping rule.

Run the full side-by-side report (the numbers in reports/benchmarks/engine_speed.md)::

    .venv/bin/python tests/benchmarks/lm_speed_cases.py --rounds 5
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from lmbench.core import LevenbergMarquardt, SeedDamping, StoppingRules, TrainingHistory

#: Threads every benchmark pins (the machine has 2 cores shared with other jobs).
THREADS = 2
#: The seed's damping: mu starts at 10 and is divided / multiplied by 10.
MU_INIT = 10.0
FACTOR = 10.0


@dataclass(frozen=True)
class Shape:
    """An MLP ``inputs -> hidden (tanh) -> outputs`` fitted on ``samples`` rows."""

    name: str
    inputs: int
    hidden: int
    outputs: int
    samples: int

    @property
    def n_params(self) -> int:
        """P: weights and biases of both layers."""
        return self.hidden * (self.inputs + 1) + self.outputs * (self.hidden + 1)

    @property
    def n_residuals(self) -> int:
        """M = N * O, the rows of the Jacobian."""
        return self.samples * self.outputs


#: The three shapes of the issue. ``1k`` is the seed's timing point (N=1000, O=2, P=1152).
SHAPES: dict[str, Shape] = {
    "1k": Shape("1k", inputs=20, hidden=50, outputs=2, samples=1000),  # P=1152, M=2000
    "4k": Shape("4k", inputs=20, hidden=174, outputs=2, samples=4000),  # P=4004, M=8000
    "7k": Shape("7k", inputs=20, hidden=304, outputs=2, samples=3500),  # P=6994, M=7000
}
#: Shapes where the seed-style epoch (M backward passes) is affordable.
SEED_STYLE_SHAPES = ("1k",)


def pin_threads(threads: int = THREADS) -> None:
    """Pin torch (and MKL/OpenMP under it) to ``threads`` threads."""
    torch.set_num_threads(threads)


def make_problem(shape: Shape, seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A fresh float32 MLP and a smooth two-output regression (same data for every seed).

    Targets: ``sin(x0) * x1`` and ``mean(x[2:]^2)`` (as ``lmbench.examples.data_parallel``);
    every output beyond two repeats them.
    """
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(shape.samples, shape.inputs, generator=gen)
    base = torch.stack([torch.sin(x[:, 0]) * x[:, 1], x[:, 2:].pow(2).mean(dim=1)], dim=1)
    y = base.repeat(1, (shape.outputs + 1) // 2)[:, : shape.outputs].contiguous()
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(shape.inputs, shape.hidden), nn.Tanh(), nn.Linear(shape.hidden, shape.outputs)
    )
    return model, x, y


def make_trainer(model: nn.Module, max_epochs: int = 1) -> LevenbergMarquardt:
    """The engine as a user gets it: defaults, seed damping, no early stop."""
    return LevenbergMarquardt(
        model,
        damping=SeedDamping(mu_init=MU_INIT, factor=FACTOR),
        stopping=StoppingRules(max_epochs=max_epochs, min_error=None),
    )


def lm_epochs(shape: Shape, max_epochs: int = 1, seed: int = 0) -> TrainingHistory:
    """``fit`` a fresh problem for ``max_epochs``; read epoch k from ``history.*[k]``."""
    model, x, y = make_problem(shape, seed)
    return make_trainer(model, max_epochs).fit(x, y)


# ---------------------------------------------------------------------------------- the floor
def floor_jacobian(shape: Shape, seed: int = 0) -> torch.Tensor:
    """A random M x P float32 Jacobian (values do not matter for the time, M >= P keeps SPD)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape.n_residuals, shape.n_params, generator=gen)


def floor_epoch(jac: torch.Tensor) -> torch.Tensor:
    """The floor: ``J.T @ J`` as one full GEMM, then one ``torch.linalg.cholesky``."""
    gram = torch.mm(jac.T, jac)
    gram.diagonal().add_(1.0)
    return torch.linalg.cholesky(gram)


def floor_epoch_raw_lapack(jac: torch.Tensor) -> torch.Tensor:
    """The floor with LAPACK ?potrf called in place (no torch copy/tril around it).

    The engine factors this way on CPU, so this is the floor without the ``torch.linalg``
    wrapper's own P x P passes. Falls back to ``floor_epoch`` where that path is unavailable.
    """
    from lmbench.core import solve

    gram = torch.mm(jac.T, jac)
    gram.diagonal().add_(1.0)
    routines = solve._native_potrf()
    if routines is None or gram.dtype not in routines:
        return torch.linalg.cholesky(gram)
    if solve._call_potrf(routines[gram.dtype], gram) != 0:
        raise RuntimeError("floor Cholesky failed")
    return gram


# ------------------------------------------------------------------------- the reference
@dataclass
class EpochResult:
    """What a hand-written epoch did: damping trials and the loss it ended at."""

    trials: int
    accepted: bool
    objective: float


def _unflatten(model: nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    pieces = torch.split(theta, [s.numel() for s in shapes])
    return {n: t.view(s) for n, t, s in zip(names, pieces, shapes, strict=True)}


def reference_epoch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, mu: float, objective: float
) -> EpochResult:
    """One LM epoch the plain torch.func way: vmap(jacrev) J, full J^T J, linalg.solve."""
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def outputs(t: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        return functional_call(model, _unflatten(model, t), (xs,))

    def one_row(t: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        return outputs(t, xi.unsqueeze(0)).squeeze(0)

    with torch.no_grad():
        jac = vmap(jacrev(one_row), in_dims=(None, 0))(theta, x).reshape(-1, theta.numel())
        residuals = (outputs(theta, x) - y).reshape(-1)
        gram = jac.T @ jac
        grad = jac.T @ residuals
        eye = torch.eye(theta.numel())
        for trial in range(1, 11):
            delta = torch.linalg.solve(gram + mu * eye, -grad)
            new = 0.5 * float((outputs(theta + delta, x) - y).pow(2).sum())
            if new <= objective:
                return EpochResult(trial, True, new)
            mu *= FACTOR
    return EpochResult(10, False, objective)


def seed_style_epoch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, mu: float, objective: float
) -> EpochResult:
    """One LM epoch as the original library did it: one autograd.grad per residual for J."""
    params = [p for p in model.parameters() if p.requires_grad]
    residuals = (model(x) - y).reshape(-1)
    rows = []
    for i in range(residuals.numel()):
        grads = torch.autograd.grad(residuals[i], params, retain_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    with torch.no_grad():
        jac = torch.stack(rows)
        r = residuals.detach()
        gram = jac.T @ jac
        grad = jac.T @ r
        eye = torch.eye(gram.shape[0])
        saved = [p.detach().clone() for p in params]
        for trial in range(1, 11):
            delta = torch.linalg.solve(gram + mu * eye, -grad)
            for p, piece in zip(params, torch.split(delta, [p.numel() for p in params]),
                                strict=True):
                p.add_(piece.view_as(p))
            new = 0.5 * float((model(x) - y).pow(2).sum())
            if new <= objective:
                return EpochResult(trial, True, new)
            for p, old in zip(params, saved, strict=True):
                p.copy_(old)
            mu *= FACTOR
    return EpochResult(10, False, objective)


def starting_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """E = 1/2 ||f(x) - y||^2 at the current weights (given to hand-written epochs)."""
    with torch.no_grad():
        return 0.5 * float((model(x) - y).pow(2).sum())


def timed(fn: Callable[..., object], *args: object) -> float:
    """Wall seconds of one call ``fn(*args)``."""
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- sinc overhead
def sinc_problem(samples: int = 2000) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """sinc(10 x) on [-1, 1] with a 1-20-1 tanh MLP (61 weights), float32."""
    x = torch.linspace(-1.0, 1.0, samples).unsqueeze(1)
    y = torch.sinc(10.0 * x)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 20), nn.Tanh(), nn.Linear(20, 1))
    return model, x, y


# ---------------------------------------------------------------------- side-by-side report
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_seconds() -> float | None:
    """CPU seconds all processes spent busy so far (first line of /proc/stat), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / CLOCK_TICKS


class OtherLoad:
    """How many cores *other* processes kept busy while the block ran (NaN if unknown).

    Busy CPU time of the whole machine (/proc/stat) minus this process's own (``os.times``),
    over the wall time. A shared 2-core machine makes timings 2-10x slower whenever another job
    runs; a sample taken while others used more than a fraction of a core is not kept.
    """

    def __enter__(self) -> OtherLoad:
        self._busy = _busy_seconds()
        own = os.times()
        self._own = own.user + own.system
        self._wall = time.perf_counter()
        self.cores = math.nan
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        busy = _busy_seconds()
        own = os.times()
        if busy is None or self._busy is None or wall <= 0:
            return
        others = (busy - self._busy) - (own.user + own.system - self._own)
        self.cores = max(others, 0.0) / wall


@dataclass
class ShapeReport:
    """Every timing of one shape, measured interleaved, with the other processes' load."""

    shape: Shape
    samples: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    epoch1: TrainingHistory | None = None
    epoch2: TrainingHistory | None = None
    max_other_cores: float = 0.25

    def add(self, key: str, seconds: float, load: OtherLoad) -> bool:
        """Record a sample; True if it is now the one ``best`` reports."""
        quiet = not load.cores > self.max_other_cores  # NaN (unknown) counts as quiet
        self.samples.setdefault(key, []).append((seconds, quiet))
        return seconds == self.best(key)

    def quiet_count(self, key: str) -> int:
        """How many quiet samples ``key`` has."""
        return sum(quiet for _, quiet in self.samples.get(key, []))

    def best(self, key: str) -> float:
        """Fastest quiet sample (the fastest of all if none was quiet)."""
        values = self.samples.get(key, [])
        quiet = [s for s, q in values if q]
        pool = quiet or [s for s, _ in values]
        return min(pool) if pool else math.inf

    def label(self, key: str) -> str:
        """``best`` formatted, starred when no sample of ``key`` was quiet."""
        if key not in self.samples:
            return "-"
        star = "" if self.quiet_count(key) else "*"
        return f"{self.best(key):.3f}{star}"


def _timed_window(fn: Callable[..., object], args: tuple[object, ...], inner: int,
                  ) -> tuple[float, OtherLoad]:
    """min of ``inner`` calls of ``fn(*args)`` inside one load-measured window."""
    with OtherLoad() as load:
        best = min(timed(fn, *args) for _ in range(inner))
    return best, load


def measure_shape(
    shape: Shape, rounds: int, seed_style: bool, max_rounds: int | None = None,
    max_other_cores: float = 0.25,
) -> ShapeReport:
    """Interleave engine epochs (1 and 2), floors, reference and seed-style.

    Rounds repeat until every timing has ``rounds`` quiet samples (other processes below
    ``max_other_cores``) or ``max_rounds`` (default 4 x ``rounds``) were run. Fast shapes
    repeat each call a few times inside one window (the load is known to 10 ms).
    """
    report = ShapeReport(shape, max_other_cores=max_other_cores)
    jac = floor_jacobian(shape)
    inner = 5 if shape.n_params < 2000 else 1
    keys = ["epoch1", "epoch2", "floor", "floor_raw", "reference"]
    keys += ["seed"] if seed_style else []
    for _ in range(max_rounds or 4 * rounds):
        if all(report.quiet_count(k) >= rounds for k in keys):
            break
        with OtherLoad() as load:
            runs = [lm_epochs(shape, max_epochs=2) for _ in range(inner)]
        first = min(runs, key=lambda h: h.epoch_time[1])
        second = min(runs, key=lambda h: h.epoch_time[2])
        if report.add("epoch1", first.epoch_time[1], load):
            report.epoch1 = first
        if report.add("epoch2", second.epoch_time[2], load):
            report.epoch2 = second
        report.add("floor", *_timed_window(floor_epoch, (jac,), inner))
        report.add("floor_raw", *_timed_window(floor_epoch_raw_lapack, (jac,), inner))
        model, x, y = make_problem(shape)
        loss0 = starting_objective(model, x, y)
        with OtherLoad() as load:
            best = math.inf
            for _ in range(inner):
                model, x, y = make_problem(shape)
                best = min(best, timed(reference_epoch, model, x, y, MU_INIT, loss0))
        report.add("reference", best, load)
        if seed_style:
            model, x, y = make_problem(shape)
            report.add("seed", *_timed_window(seed_style_epoch, (model, x, y, MU_INIT, loss0), 1))
    return report


def _split(history: TrainingHistory, epoch: int) -> str:
    parts = [
        getattr(history, name, [math.nan] * (epoch + 1))[epoch]
        for name in ("time_jacobian", "time_system", "time_solve", "time_evaluate")
    ]
    return " / ".join(f"{value:.3f}" for value in parts)


def markdown(reports: list[ShapeReport]) -> str:
    """The report tables: epoch vs floor, trials, split, reference and seed-style times."""
    lines = [
        "| shape | P | M=N*O | epoch 1 (s) | trials | floor (s) | epoch/floor | floor raw (s) "
        "| epoch/raw | reference (s) | seed-style (s) | epoch 2 (s) | trials | quiet samples |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rep in reports:
        s = rep.shape
        assert rep.epoch1 is not None and rep.epoch2 is not None
        epoch, floor, raw = rep.best("epoch1"), rep.best("floor"), rep.best("floor_raw")
        quiet = min(rep.quiet_count(k) for k in rep.samples)
        total = max(len(v) for v in rep.samples.values())
        lines.append(
            f"| {s.name} | {s.n_params} | {s.n_residuals} | {rep.label('epoch1')} "
            f"| {rep.epoch1.trials[1]} | {rep.label('floor')} | **{epoch / floor:.2f}** "
            f"| {rep.label('floor_raw')} | {epoch / raw:.2f} | {rep.label('reference')} "
            f"| {rep.label('seed')} | {rep.label('epoch2')} | {rep.epoch2.trials[2]} "
            f"| {quiet}/{total} |"
        )
    lines += ["", "Split of the fastest epochs (s): Jacobian / J^T J / solves / loss passes", ""]
    for rep in reports:
        assert rep.epoch1 is not None and rep.epoch2 is not None
        lines.append(
            f"- {rep.shape.name}: epoch 1 {_split(rep.epoch1, 1)}; "
            f"epoch 2 {_split(rep.epoch2, 2)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the side-by-side markdown table (fastest of ``--rounds`` quiet interleaved rounds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--max-rounds", type=int, default=None,
                        help="give up waiting for quiet rounds after this many (4 x --rounds)")
    parser.add_argument("--max-other-cores", type=float, default=0.25,
                        help="a sample counts as quiet when other processes used fewer cores")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    lm_epochs(SHAPES["1k"])  # warm-up: torch.func import, MKL/OpenMP start-up
    reports = []
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        reports.append(measure_shape(shape, args.rounds, name in SEED_STYLE_SHAPES,
                                     args.max_rounds, args.max_other_cores))
        print(f"measured {name}", flush=True)
    load = os.getloadavg()
    print(f"threads={torch.get_num_threads()} rounds={args.rounds} "
          f"loadavg={load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} torch={torch.__version__}")
    print(markdown(reports))
    print("\n* = no quiet sample: fastest of all samples, taken while other jobs ran")


if __name__ == "__main__":
    main()
