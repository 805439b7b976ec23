"""Side-by-side epoch time and peak memory of lmbench, torch-levenberg-marquardt, a plain
``vmap(jacrev)`` LM epoch and the FLOP floor, on the same models, data and full-batch steps.

    python -m lmbench.bench.performance --sizes ci --out results.json
    python -m lmbench.bench.performance --sizes small --log-to-mlflow --tracking-uri URI
    python -m lmbench.bench.performance --size 7000:1 --implementations lmbench,floor

Implementations (one full-batch LM epoch each: the Gauss-Newton system at the current weights,
then damping trials until one is accepted):

* ``lmbench``: ``LevenbergMarquardt`` with seed damping (``form="primal"``; ``form="auto"`` is
  measured too, as the variant ``lmbench_auto``). Its time is the epoch time the trainer records
  (the per-epoch cost; ``fit``'s one-off setup, one forward pass and a one-row Jacobian, is not
  in it).
* ``torch_levenberg_marquardt``: ``LevenbergMarquardtModule.training_step`` on the whole batch,
  ``solve_method="cholesky"`` (its fastest solver; the default is QR) and its
  ``StandardDampingStrategy`` set up to follow our seed rule (see ``reference_damping``).
* ``plain_vmap``: the textbook epoch in ~30 lines (``PlainVmapLM``): ``vmap(jacrev)`` Jacobian,
  full ``J.T @ J``, ``torch.linalg.solve(JtJ + mu I, -g)``, the seed rule.
* ``floor``: ``J.T @ J`` as one full GEMM of the same M x P size plus one Cholesky of P x P
  (J is a given random matrix; its memory is not counted, only JᵀJ and the factor).

Variants kept in the JSON only: ``lmbench_auto`` (``form="auto"``; primal at N·O ≥ P),
``lmbench_chunked`` (Jacobian chunks of at most half of JᵀJ's bytes, so assembly needs no more
memory than the solve) and ``torch_levenberg_marquardt_qr`` (the reference's default solver).

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
``utils.fit``); MLflow only with ``--log-to-mlflow``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from lmbench.bench.measure import N_INPUTS, mlp_with_params
from lmbench.bench.memory import PeakMemoryInUse
from lmbench.core import LevenbergMarquardt, SeedDamping, StoppingRules
from lmbench.core.system import SystemForm

#: The implementations the performance schema knows (the tag ``implementation``).
IMPLEMENTATIONS = ("lmbench", "torch_levenberg_marquardt", "plain_vmap", "floor")
#: Extra variants measured alongside (kept in the JSON, not logged as runs): lmbench with
#: ``form="auto"``; lmbench with its Jacobian chunk bounded to half the size of JᵀJ; the
#: reference library with its default QR solver.
VARIANTS = ("lmbench_auto", "lmbench_chunked", "torch_levenberg_marquardt_qr")
REFERENCE = "torch_levenberg_marquardt"
FLOOR = "floor"

#: (target weight count P, outputs O) per size set; N·O ≈ 2P residual rows for each.
SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "small": ((500, 1), (1000, 2)),
    "ci": ((500, 1), (1000, 2), (2000, 1), (4000, 2)),
    "full": ((500, 1), (1000, 2), (2000, 1), (4000, 2), (7000, 1)),
}
ROWS_PER_PARAM = 2.0
EXPERIMENT = "performance"


# ------------------------------------------------------------------------------ the problem
@dataclass(frozen=True)
class LMSettings:
    """The damping both libraries follow: seed rule, mu_init, factor (``demping_coef``)."""

    mu_init: float = 10.0
    factor: float = 10.0
    inner_steps: int = 10
    mu_min: float = 1e-20
    mu_max: float = 1e10


@dataclass
class Workload:
    """One MLP regression problem: initial model (never trained in place), data, sizes."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    n_params: int
    n_outputs: int

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_residuals(self) -> int:
        """M = N * O rows of the Jacobian."""
        return self.n_samples * self.n_outputs

    @property
    def device(self) -> torch.device:
        return self.x.device

    def fresh_model(self) -> nn.Module:
        """A copy of the initial model (every run starts from the same weights)."""
        return copy.deepcopy(self.model)


def make_workload(
    n_params: int,
    n_outputs: int = 1,
    rows_per_param: float = ROWS_PER_PARAM,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> Workload:
    """Tanh MLP with ~``n_params`` weights on fixed synthetic data with N·O ≈ rows_per_param·P."""
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = mlp_with_params(n_params, N_INPUTS, n_outputs).to(dev, dtype)
    real = sum(p.numel() for p in model.parameters())
    n_samples = max(1, round(rows_per_param * real / n_outputs))
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n_samples, N_INPUTS, generator=gen, dtype=dtype).to(dev)
    y = torch.tanh(x[:, :n_outputs] * x[:, 1 : n_outputs + 1])
    return Workload(model, x, y, real, n_outputs)


# ------------------------------------------------------------------------------ one epoch each
@dataclass
class EpochOutcome:
    """One epoch of one implementation: its time, the loss after it, trials, acceptance, and
    (lmbench only) the split of the time into Jacobian / system / solve / evaluate."""

    epoch_time_s: float
    loss: float
    trials: int
    accepted: bool
    split: dict[str, float] = field(default_factory=dict)


Runner = Callable[[], EpochOutcome]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lmbench_trainer(
    model: nn.Module, settings: LMSettings, form: SystemForm = "primal", max_epochs: int = 1,
    callbacks: list[Callable[..., Any]] | None = None, **options: Any,
) -> LevenbergMarquardt:
    """``LevenbergMarquardt`` with the seed rule of ``settings``, no min-error stop."""
    return LevenbergMarquardt(
        model,
        damping=SeedDamping(mu_init=settings.mu_init, factor=settings.factor),
        stopping=StoppingRules(max_epochs=max_epochs, min_error=None, mu_max=settings.mu_max),
        inner_steps=settings.inner_steps,
        form=form,
        mu_min=settings.mu_min,
        callbacks=callbacks,
        **options,
    )


def chunk_budget_bytes(work: Workload) -> int:
    """A Jacobian chunk budget of half of JᵀJ's bytes (``lmbench_chunked``): assembly then
    needs about as much memory as the solve (JᵀJ plus its factor) instead of M·P."""
    return work.n_params**2 * work.x.element_size() // 2


def prepare_lmbench(
    work: Workload, settings: LMSettings, form: SystemForm = "primal", chunked: bool = False
) -> Runner:
    """One ``fit`` epoch of lmbench from the initial weights; time = the recorded epoch time."""
    options = {"jacobian_budget_bytes": chunk_budget_bytes(work)} if chunked else {}
    trainer = lmbench_trainer(work.fresh_model(), settings, form, **options)

    def run() -> EpochOutcome:
        history = trainer.fit(work.x, work.y)
        split = {phase: float(getattr(history, f"time_{phase}")[1])
                 for phase in ("jacobian", "system", "solve", "evaluate")}
        return EpochOutcome(history.epoch_time[1], history.loss[1], history.trials[1],
                            bool(history.accepted[1]), split)

    return run


def reference_damping(settings: LMSettings, n_samples: int) -> Any:
    """torch-levenberg-marquardt's ``StandardDampingStrategy`` following our seed rule.

    It scales the system by 1/N (N = samples), so its damping lam = mu / N gives our step;
    bounds are mapped the same way; increase/decrease factors are ours.
    """
    from torch_levenberg_marquardt.damping import StandardDampingStrategy

    return StandardDampingStrategy(
        starting_value=settings.mu_init / n_samples,
        dec_factor=1.0 / settings.factor,
        inc_factor=settings.factor,
        min_value=settings.mu_min / n_samples,
        max_value=settings.mu_max / n_samples,
    )


def reference_module(
    model: nn.Module, work: Workload, settings: LMSettings, solve_method: str = "cholesky"
) -> Any:
    """``LevenbergMarquardtModule`` on ``model`` (MSE, vmap Jacobian, Cholesky by default)."""
    from torch_levenberg_marquardt.loss import MSELoss
    from torch_levenberg_marquardt.training import LevenbergMarquardtModule

    module = LevenbergMarquardtModule(
        model,
        loss_fn=MSELoss(),
        damping_strategy=reference_damping(settings, work.n_samples),
        attempts_per_step=settings.inner_steps,
        solve_method=solve_method,
        use_vmap=True,
    )
    # Its first training_step runs one extra forward pass only to learn the batch size; set it
    # here so the timed step is the steady-state step every later epoch pays.
    if hasattr(module, "_batch_size") and hasattr(module, "_num_residuals"):
        module._batch_size = work.n_samples
        module._num_residuals = work.n_residuals
    return module


def prepare_reference(work: Workload, settings: LMSettings, solve_method: str = "cholesky"
                      ) -> Runner:
    """One full-batch ``training_step`` of torch-levenberg-marquardt from the initial weights."""
    module = reference_module(work.fresh_model(), work, settings, solve_method)
    with torch.no_grad():
        start_loss = float(module.loss_fn(module.forward(work.x), work.y))

    def run() -> EpochOutcome:
        _sync(work.device)
        started = time.perf_counter()
        _, loss, _, logs = module.training_step(work.x, work.y)
        loss_value = float(loss)
        _sync(work.device)
        elapsed = time.perf_counter() - started
        # training_step returns the new loss only when a trial lowered it
        return EpochOutcome(elapsed, loss_value, int(logs["attempts"]), loss_value < start_loss)

    return run


class PlainVmapLM:
    """The textbook LM epoch: vmap(jacrev) J, full JᵀJ, ``linalg.solve``, the seed rule."""

    def __init__(self, model: nn.Module, settings: LMSettings) -> None:
        self.model, self.settings, self.mu = model, settings, settings.mu_init
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def outputs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [math.prod(s) for s in self.shapes])
        params = {n: t.view(s) for n, t, s in zip(self.names, pieces, self.shapes, strict=True)}
        return functional_call(self.model, params, (x,)).reshape(x.shape[0], -1)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> EpochOutcome:
        """One epoch: the system once, then trials until E does not increase."""
        started = time.perf_counter()
        row = lambda t, xi: self.outputs(t, xi.unsqueeze(0)).reshape(-1)  # noqa: E731
        jac = vmap(jacrev(row), in_dims=(None, 0))(self.theta, x).reshape(-1, self.theta.numel())
        with torch.no_grad():
            r = (self.outputs(self.theta, x) - y).reshape(-1)
            jtj, g = jac.T @ jac, jac.T @ r
            objective = 0.5 * float(r @ r)
            eye = torch.eye(jtj.shape[0], dtype=jtj.dtype, device=jtj.device)
            for trial in range(1, self.settings.inner_steps + 1):
                candidate = self.theta + torch.linalg.solve(jtj + self.mu * eye, -g)
                r_new = (self.outputs(candidate, x) - y).reshape(-1)
                new_objective = 0.5 * float(r_new @ r_new)
                if math.isfinite(new_objective) and new_objective <= objective:
                    self.theta, self.mu = candidate, max(self.mu / self.settings.factor,
                                                         self.settings.mu_min)
                    loss = 2.0 * new_objective / r_new.numel()
                    return EpochOutcome(time.perf_counter() - started, loss, trial, True)
                self.mu *= self.settings.factor
        loss = 2.0 * objective / r.numel()
        return EpochOutcome(time.perf_counter() - started, loss, self.settings.inner_steps, False)


def prepare_plain_vmap(work: Workload, settings: LMSettings) -> Runner:
    """One epoch of ``PlainVmapLM`` from the initial weights."""
    plain = PlainVmapLM(work.fresh_model(), settings)

    def run() -> EpochOutcome:
        _sync(work.device)
        outcome = plain.step(work.x, work.y)
        _sync(work.device)
        return outcome

    return run


def prepare_floor(work: Workload) -> Runner:
    """JᵀJ as one full GEMM of the epoch's M x P size plus one Cholesky of P x P."""
    gen = torch.Generator().manual_seed(7)
    jac = torch.randn(work.n_residuals, work.n_params, generator=gen, dtype=work.x.dtype)
    jac = jac.to(work.device) / math.sqrt(work.n_residuals)
    shift = 1e-3 if work.n_residuals >= work.n_params else 1.0  # SPD also when M < P

    def run() -> EpochOutcome:
        _sync(work.device)
        started = time.perf_counter()
        gram = jac.T @ jac
        gram.diagonal().add_(shift)
        _, info = torch.linalg.cholesky_ex(gram)
        ok = int(info) == 0
        _sync(work.device)
        return EpochOutcome(time.perf_counter() - started, math.nan, 1, ok)

    return run


def runners(work: Workload, settings: LMSettings,
            names: Sequence[str] = IMPLEMENTATIONS + VARIANTS) -> dict[str, Callable[[], Runner]]:
    """Factories of fresh one-epoch runners (setup is not timed), by implementation name."""
    table: dict[str, Callable[[], Runner]] = {
        "lmbench": lambda: prepare_lmbench(work, settings, "primal"),
        "lmbench_auto": lambda: prepare_lmbench(work, settings, "auto"),
        "lmbench_chunked": lambda: prepare_lmbench(work, settings, "primal", chunked=True),
        REFERENCE: lambda: prepare_reference(work, settings),
        "torch_levenberg_marquardt_qr": lambda: prepare_reference(work, settings, "qr"),
        "plain_vmap": lambda: prepare_plain_vmap(work, settings),
        FLOOR: lambda: prepare_floor(work),
    }
    unknown = set(names) - set(table)
    if unknown:
        raise ValueError(f"unknown implementations {sorted(unknown)}; known: {sorted(table)}")
    return {name: table[name] for name in names}


# ------------------------------------------------------------------------------ measurement
@dataclass
class ImplementationResult:
    """Time and memory of one implementation at one size, and its ratios."""

    implementation: str
    epoch_time_s: float
    peak_memory_bytes: int
    trials: int
    accepted: bool
    loss_after: float
    times_s: list[float] = field(default_factory=list)
    split_s: dict[str, float] = field(default_factory=dict)
    ratio_to_floor: float = math.nan
    ratio_to_reference: float = math.nan
    memory_ratio_to_floor: float = math.nan
    memory_ratio_to_reference: float = math.nan
    paired_ratio_to_floor: float = math.nan
    paired_ratio_to_reference: float = math.nan


@dataclass
class LossAgreement:
    """Loss after each accepted full-batch step, per implementation, from the same weights."""

    steps: int
    losses: dict[str, list[float]]
    max_relative_difference: dict[str, float]


@dataclass
class SizeResult:
    """Everything measured at one problem size."""

    n_params: int
    n_residuals: int
    n_samples: int
    n_outputs: int
    results: dict[str, ImplementationResult]
    loss_agreement: LossAgreement | None = None
    reference_split_s: dict[str, float] = field(default_factory=dict)


def add_ratios(results: dict[str, ImplementationResult]) -> None:
    """Fill time and memory ratios to ``floor`` and to the reference library, where present.

    ``ratio_*`` divide the minimum times; ``paired_ratio_*`` are the median over rounds of the
    ratio within one round (the implementations of a round run seconds apart, so a load burst
    that spans a round cancels out; on a shared machine that is the steadier estimate).
    """
    floor, ref = results.get(FLOOR), results.get(REFERENCE)
    for item in results.values():
        if floor is not None:
            item.ratio_to_floor = _ratio(item.epoch_time_s, floor.epoch_time_s)
            item.memory_ratio_to_floor = _ratio(item.peak_memory_bytes, floor.peak_memory_bytes)
            item.paired_ratio_to_floor = paired_ratio(item.times_s, floor.times_s)
        if ref is not None:
            item.ratio_to_reference = _ratio(item.epoch_time_s, ref.epoch_time_s)
            item.memory_ratio_to_reference = _ratio(item.peak_memory_bytes,
                                                    ref.peak_memory_bytes)
            item.paired_ratio_to_reference = paired_ratio(item.times_s, ref.times_s)


def paired_ratio(times: Sequence[float], baseline: Sequence[float]) -> float:
    """Median over rounds of times[i] / baseline[i] (NaN unless both have the same rounds)."""
    if not times or len(times) != len(baseline):
        return math.nan
    return statistics.median(_ratio(t, b) for t, b in zip(times, baseline, strict=True))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


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


def reference_split(work: Workload, settings: LMSettings, repeats: int = 3) -> dict[str, float]:
    """Where torch-levenberg-marquardt's step spends its time (min over repeats per phase):
    the phases of its ``training_step``, replayed through its own methods (a diagnostic that
    reads private methods of version 1.2.x; empty if they are not there)."""
    module = reference_module(work.fresh_model(), work, settings)
    if not all(hasattr(module, n) for n in ("_compute_jacobian", "_solve", "forward")):
        return {}
    best: dict[str, float] = {}
    for _ in range(max(repeats, 1)):
        ticks = [time.perf_counter()]
        jac, residuals, _ = module._compute_jacobian(work.x, work.y, None)
        ticks.append(_tick(work.device))
        gram, rhs = jac.T @ jac, jac.T @ residuals
        gram *= 1.0 / work.n_samples
        rhs *= 1.0 / work.n_samples
        ticks.append(_tick(work.device))
        damped = module.damping_strategy.apply(gram)
        ticks.append(_tick(work.device))
        module._solve(damped, rhs)
        ticks.append(_tick(work.device))
        with torch.no_grad():
            module.loss_fn(module.forward(work.x), work.y)
        ticks.append(_tick(work.device))
        del jac, residuals, gram, rhs, damped
        phases = ("jacobian", "system", "damping", "solve", "evaluate")
        for phase, start, stop in zip(phases, ticks, ticks[1:], strict=False):
            best[phase] = min(best.get(phase, math.inf), stop - start)
    return best


def _tick(device: torch.device) -> float:
    _sync(device)
    return time.perf_counter()


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


def log_to_mlflow(sizes: Sequence[SizeResult], device: str, tracking_uri: str | None) -> int:
    """One run per (implementation, size) in experiment ``performance`` (report section 5)."""
    from lmbench.tracking import RunTracker, prepare_store

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    experiment_id = prepare_store(tracking_uri, EXPERIMENT)
    count = 0
    for size in sizes:
        for item in size.results.values():
            if item.implementation not in IMPLEMENTATIONS:
                continue
            with RunTracker(
                f"performance-{item.implementation}-P{size.n_params}-M{size.n_residuals}",
                experiment_name=EXPERIMENT,
                experiment_id=experiment_id,
                tracking_uri=tracking_uri,
                device=device,
                tags={"kind": "performance", "implementation": item.implementation},
                log_weights=False,
            ) as tracker:
                tracker.log_config({"n_params": size.n_params, "n_residuals": size.n_residuals,
                                    "n_outputs": size.n_outputs, "trials": item.trials})
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
                tracker.log_metrics(metrics)
                count += 1
    return count


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
