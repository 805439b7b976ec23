"""lmbench as a least-squares solver: the Moré-Garbow-Hillstrom problems beside MINPACK.

    python -m lmbench.bench.least_squares --out reports/least_squares
    python -m lmbench.bench.least_squares --problems rosenbrock,meyer --scales 1 --out /tmp/ls

Every problem of ``lmbench.bench.mgh`` runs from its standard start and from 10x and 100x it
(as the paper does) through lmbench's least-squares variants (``VARIANTS``: the
``TrainerSettings.for_curve_fit`` preset first) and through ``scipy.optimize.least_squares``
with ``method="lm"`` (MINPACK's lmder) and ``"trf"``, all with exact float64 Jacobians from
torch autograd. A run has *solved* its problem when its final sum of squares is within the
problem's tolerance of the best known (``LeastSquaresProblem.is_solved``). Counts: Jacobians
are the systems assembled (lmbench: the first epoch and each epoch after an accepted step) or
Jacobian calls (scipy); evaluations are passes over the residuals.

A stop reason is *correct* when it tells the truth about the final point: a convergence reason
(lmbench ``converged_*``, MINPACK status 1-4) on a solved problem or at a stationary point
(scaled gradient max_j |J_j^T r| / (||J_j|| ||r||) <= ``STATIONARY_COSINE`` over the weights
not frozen below rounding, or one of the paper's local minima), and any other reason
(max_epochs, mu_max, evaluation limit) only on an unsolved one.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lmbench.bench.mgh import (
    PROBLEMS,
    LeastSquaresProblem,
    ResidualModule,
    SolverRecord,
    problem_data,
    run_scipy,
)
from lmbench.core import stopping
from lmbench.core.errors import NonFiniteLossError
from lmbench.core.history import TrainingHistory
from lmbench.core.settings import TrainerSettings
from lmbench.core.stopping import CONVERGENCE_TOLERANCES
from lmbench.tracking.provenance import git_commit, git_dirty

#: lmbench's least-squares variants: the preset, then the damping rules on their own.
VARIANTS: dict[str, dict[str, Any]] = {
    "lmbench_preset": {},
    "lmbench_geodesic": {"acceleration": "geodesic"},
    "lmbench_gain_ratio": {"damping_scaling": "rule"},
    "lmbench_marquardt": {"damping": "marquardt", "damping_scaling": "rule"},
    "lmbench_marquardt_more": {"damping": "marquardt", "damping_scaling": "running_max"},
    "lmbench_seed": {"damping": "seed", "damping_scaling": "rule"},
}
SCIPY_SOLVERS = {"minpack_lm": "lm", "scipy_trf": "trf"}
SCALES = (1.0, 10.0, 100.0)
#: Scaled gradient at or below which a point counts as stationary (for the stop-reason check).
STATIONARY_COSINE = 1e-4
CONVERGED_REASONS = tuple(f"converged_{name}" for name in CONVERGENCE_TOLERANCES)


@dataclass(frozen=True)
class RunRecord:
    """One solver on one problem from one start, with the stop-reason check."""

    record: SolverRecord
    stop_reason: str
    converged: bool  # the solver said it converged
    stationary: bool  # the final point's scaled gradient is at most STATIONARY_COSINE
    correct_stop: bool


def scaled_gradient(problem: LeastSquaresProblem, theta: torch.Tensor) -> float:
    """The solver's gtol measure (``stopping.scaled_gradient``) at ``theta``, skipping the
    weights frozen below float64 rounding (``stopping.frozen_weights``: an exponential
    saturated far out on Box 3-D)."""
    theta = theta.detach().to(torch.float64)
    residuals = problem.residuals(theta)
    jac = torch.autograd.functional.jacobian(problem.residuals, theta)
    columns = torch.linalg.vector_norm(jac, dim=0)
    residual_norm = float(torch.linalg.vector_norm(residuals))
    frozen = stopping.frozen_weights(theta, columns, residual_norm)
    return stopping.scaled_gradient(jac.T @ residuals, columns.where(~frozen, 0.0), residual_norm)


def run_lmbench(problem: LeastSquaresProblem, scale: float, variant: str) -> RunRecord:
    """The problem fitted by ``TrainerSettings.for_curve_fit`` with the variant's changes."""
    module = ResidualModule(problem, scale)
    rows, targets = problem_data(problem)
    started = time.perf_counter()
    try:
        history = TrainerSettings.for_curve_fit(**VARIANTS[variant]).fit(module, rows, targets)
    except NonFiniteLossError:  # e.g. Jennrich-Sampson at 100 x0: sum of squares overflows
        history = TrainingHistory(stop_reason="refused: objective not finite at the start")
    seconds = time.perf_counter() - started
    theta = next(module.parameters()).detach()
    sum_of_squares = float((problem.residuals(theta) ** 2).sum())
    record = SolverRecord(
        problem=problem.name, scale=scale, solver=variant, sum_of_squares=sum_of_squares,
        solved=problem.is_solved(sum_of_squares),
        n_jacobians=len(history.accepted) and 1 + sum(bool(a) for a in history.accepted[1:-1]),
        n_evaluations=1 + sum(int(t) for t in history.trials), status=history.stop_reason,
        seconds=seconds, final_point=tuple(theta.tolist()),
    )
    return _checked(problem, record, history.stop_reason,
                    history.stop_reason in CONVERGED_REASONS, theta)


def run_reference(problem: LeastSquaresProblem, scale: float, solver: str) -> RunRecord:
    """MINPACK (``lm``) or ``trf`` through scipy; status 1-4 means it reports convergence."""
    record = run_scipy(problem, scale, SCIPY_SOLVERS[solver])  # type: ignore[arg-type]
    status = record.status.split(":")[0].strip()
    converged = status in ("1", "2", "3", "4")
    theta = torch.tensor(record.final_point, dtype=torch.float64)
    return _checked(problem, record, record.status, converged, theta)


def _checked(problem: LeastSquaresProblem, record: SolverRecord, reason: str, converged: bool,
             theta: torch.Tensor) -> RunRecord:
    stationary = (scaled_gradient(problem, theta) <= STATIONARY_COSINE
                  or problem.at_local_minimum(record.sum_of_squares))
    correct = (record.solved or stationary) if converged else not record.solved
    return RunRecord(record, reason, converged, stationary, correct)


def run_all(problems: Sequence[str], scales: Sequence[float], solvers: Sequence[str]
            ) -> list[RunRecord]:
    runs = []
    for name in problems:
        problem = PROBLEMS[name]
        for scale in scales:
            for solver in solvers:
                if solver in SCIPY_SOLVERS:
                    runs.append(run_reference(problem, scale, solver))
                else:
                    runs.append(run_lmbench(problem, scale, solver))
    return runs


def summary(runs: Sequence[RunRecord], baseline: str = "minpack_lm") -> list[dict[str, Any]]:
    """Per solver: solved, solved of the baseline's solved, median Jacobian ratio to the
    baseline on the runs both solved, correct stop reasons, total time."""
    by_key = {(r.record.problem, r.record.scale, r.record.solver): r for r in runs}
    base_solved = {(p, s) for (p, s, solver), r in by_key.items()
                   if solver == baseline and r.record.solved}
    rows = []
    for solver in dict.fromkeys(r.record.solver for r in runs):
        mine = [r for r in runs if r.record.solver == solver]
        solved = {(r.record.problem, r.record.scale) for r in mine if r.record.solved}
        ratios = [by_key[(p, s, solver)].record.n_jacobians
                  / max(by_key[(p, s, baseline)].record.n_jacobians, 1)
                  for p, s in sorted(solved & base_solved) if (p, s, baseline) in by_key]
        rows.append({
            "solver": solver, "runs": len(mine), "solved": len(solved),
            "solved_of_baseline": len(solved & base_solved), "baseline_solved": len(base_solved),
            "median_jacobian_ratio": statistics.median(ratios) if ratios else math.nan,
            "correct_stop": sum(r.correct_stop for r in mine),
            "seconds": sum(r.record.seconds for r in mine),
        })
    return rows


def markdown(runs: Sequence[RunRecord], meta: dict[str, Any]) -> str:
    """The committed report: the summary, then every run side by side."""
    lines = [
        "# lmbench as a least-squares solver",
        "",
        f"Moré, Garbow & Hillstrom (1981) problems, from the standard start and 10x / 100x it; "
        f"lmbench (`python -m lmbench.bench.least_squares`, commit `{meta['commit']}`"
        f"{' with uncommitted changes' if meta['dirty'] else ''}, torch {meta['torch']}) "
        "beside `scipy.optimize.least_squares` (`lm` = MINPACK, `trf`), float64, exact "
        "Jacobians. Solved: final sum of squares within the problem's tolerance of the best "
        "known. Jacobian ratio: lmbench's Jacobians over MINPACK's, median over the runs both "
        "solved. Correct stop: a convergence reason only at a solution or a stationary point "
        f"(scaled gradient <= {STATIONARY_COSINE:g} over the weights not frozen below float64 "
        "rounding), any other reason only when unsolved.",
        "",
        "| solver | solved | of MINPACK's solved | median Jacobian ratio | correct stop "
        "| time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary(runs):
        lines.append(
            f"| {row['solver']} | {row['solved']}/{row['runs']} | {row['solved_of_baseline']}/"
            f"{row['baseline_solved']} | {row['median_jacobian_ratio']:.2f} | "
            f"{row['correct_stop']}/{row['runs']} | {row['seconds']:.1f} |")
    lines += ["", "## Every run", "",
              "| problem | start | solver | solved | sum of squares | Jacobians | evaluations "
              "| stop | correct | time (ms) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        rec = run.record
        lines.append(
            f"| {rec.problem} | {rec.scale:g}x | {rec.solver} | {'yes' if rec.solved else 'no'} "
            f"| {rec.sum_of_squares:.6g} | {rec.n_jacobians} | {rec.n_evaluations} | "
            f"{run.stop_reason[:40]} | {'yes' if run.correct_stop else 'NO'} | "
            f"{rec.seconds * 1e3:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default="all", help="comma-separated names, or all")
    parser.add_argument("--scales", default=",".join(f"{s:g}" for s in SCALES))
    parser.add_argument("--solvers", default=",".join([*VARIANTS, *SCIPY_SOLVERS]))
    parser.add_argument("--out", type=Path, required=True, help="folder for README.md + json")
    args = parser.parse_args(argv)
    problems = list(PROBLEMS) if args.problems == "all" else args.problems.split(",")
    unknown = sorted(set(problems) - set(PROBLEMS))
    solvers = args.solvers.split(",")
    bad = sorted(set(solvers) - set(VARIANTS) - set(SCIPY_SOLVERS))
    if unknown or bad:
        parser.error(f"unknown problems {unknown} or solvers {bad}; problems: {list(PROBLEMS)}, "
                     f"solvers: {[*VARIANTS, *SCIPY_SOLVERS]}")
    torch.set_num_threads(1)
    runs = run_all(problems, [float(s) for s in args.scales.split(",")], solvers)
    meta = {"commit": git_commit(), "dirty": bool(git_dirty()), "torch": torch.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "README.md").write_text(markdown(runs, meta))
    payload = {"meta": meta, "summary": summary(runs),
               "runs": [{**asdict(r.record), "stop_reason": r.stop_reason,
                         "converged": r.converged, "stationary": r.stationary,
                         "correct_stop": r.correct_stop} for r in runs]}
    (args.out / "results.json").write_text(json.dumps(payload, indent=1, default=str))
    print(markdown(runs, meta).split("## Every run")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
