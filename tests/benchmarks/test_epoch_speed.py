"""Epoch speed of the LM engine against the GEMM+Cholesky floor, a plain torch.func epoch and
the seed's per-residual Jacobian (see ``lm_speed_cases`` for what each one times).

Run: ``.venv/bin/pytest tests/benchmarks --benchmark-only`` (about 5 minutes on 2 idle cores).
Timings on a shared machine are noisy: every ratio below is min/min of rounds measured
interleaved in the same test, and pytest-benchmark's own table is to be read by its ``Min``.
"""

from __future__ import annotations

import math
from typing import Any

import lm_speed_cases as cases
import pytest
import torch
from lm_speed_cases import MU_INIT, SEED_STYLE_SHAPES, SHAPES

from lmbench.core import TrainingHistory

#: Rounds per shape (an epoch at 7k is seconds; at 1k it is milliseconds).
ROUNDS = {"1k": 10, "4k": 5, "7k": 3}


class EpochClock:
    """A pytest-benchmark timer that only moves by ``history.epoch_time[1]`` of each fit.

    So the benchmark reports the epoch as the trainer timed it, without the one-time setup of
    ``fit`` (probe row, torch.func warm-up, loss at the starting weights).
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.histories: list[TrainingHistory] = []

    def __call__(self) -> float:
        return self.now

    def record(self, history: TrainingHistory) -> None:
        """Advance by the history's first epoch and keep the history."""
        self.histories.append(history)
        self.now += history.epoch_time[1]


def use_clock(benchmark: Any, clock: EpochClock) -> None:
    """Make ``benchmark`` read ``clock`` (pytest-benchmark keeps its timer in ``_timer``)."""
    if not hasattr(benchmark, "_timer"):
        pytest.fail("pytest-benchmark no longer exposes _timer; update EpochClock")
    benchmark._timer = clock


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """One throw-away epoch pays the torch.func import and MKL/OpenMP start-up."""
    cases.lm_epochs(SHAPES["1k"])


def _split(history: TrainingHistory) -> dict[str, float]:
    names = ("time_jacobian", "time_system", "time_solve", "time_evaluate")
    return {name: round(getattr(history, name, [math.nan] * 2)[1], 4) for name in names}


@pytest.mark.parametrize("name", list(SHAPES))
def test_lm_epoch(benchmark: Any, name: str) -> None:
    """One engine epoch; the floor and the reference epoch timed in the same rounds."""
    shape = SHAPES[name]
    benchmark.group = f"epoch {name} (P={shape.n_params}, M={shape.n_residuals})"
    jac = cases.floor_jacobian(shape)
    floors: list[float] = []
    references: list[float] = []
    clock = EpochClock()

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        floors.append(cases.timed(cases.floor_epoch, jac))
        model, x, y = cases.make_problem(shape)
        loss0 = cases.starting_objective(model, x, y)
        references.append(cases.timed(cases.reference_epoch, model, x, y, MU_INIT, loss0))
        model, x, y = cases.make_problem(shape)
        return (cases.make_trainer(model), x, y), {}

    def one_epoch(trainer: Any, x: torch.Tensor, y: torch.Tensor) -> None:
        clock.record(trainer.fit(x, y))

    use_clock(benchmark, clock)
    benchmark.pedantic(one_epoch, setup=setup, rounds=ROUNDS[name], warmup_rounds=1)

    epochs = [h.epoch_time[1] for h in clock.histories]
    fastest = clock.histories[epochs.index(min(epochs))]
    ratio = min(epochs) / min(floors)
    benchmark.extra_info.update(
        params=shape.n_params,
        residuals=shape.n_residuals,
        trials=fastest.trials[1],
        epoch_min_s=round(min(epochs), 4),
        floor_min_s=round(min(floors), 4),
        epoch_over_floor=round(ratio, 3),
        reference_min_s=round(min(references), 4),
        split_s=_split(fastest),
    )
    print(f"\n[{name}] epoch {min(epochs):.3f}s  floor {min(floors):.3f}s  "
          f"ratio {ratio:.2f}  reference {min(references):.3f}s  trials {fastest.trials[1]}  "
          f"split {_split(fastest)}")
    assert all(h.accepted[1] for h in clock.histories), "the first epoch must take a step"
    assert min(epochs) < min(references), "the engine must beat the plain torch.func epoch"


@pytest.mark.parametrize("name", list(SHAPES))
def test_floor(benchmark: Any, name: str) -> None:
    """The floor alone: full ``J.T @ J`` (M x P) + ``torch.linalg.cholesky`` (P x P)."""
    shape = SHAPES[name]
    benchmark.group = f"epoch {name} (P={shape.n_params}, M={shape.n_residuals})"
    jac = cases.floor_jacobian(shape)
    benchmark.pedantic(cases.floor_epoch, args=(jac,), rounds=ROUNDS[name], warmup_rounds=1)


@pytest.mark.parametrize("name", list(SHAPES))
def test_reference_epoch(benchmark: Any, name: str) -> None:
    """The plain torch.func epoch: vmap(jacrev), full J^T J, torch.linalg.solve per trial."""
    shape = SHAPES[name]
    benchmark.group = f"epoch {name} (P={shape.n_params}, M={shape.n_residuals})"

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        model, x, y = cases.make_problem(shape)
        return (model, x, y, MU_INIT, cases.starting_objective(model, x, y)), {}

    result = benchmark.pedantic(
        cases.reference_epoch, setup=setup, rounds=ROUNDS[name], warmup_rounds=1
    )
    benchmark.extra_info["trials"] = result.trials


@pytest.mark.parametrize("name", SEED_STYLE_SHAPES)
def test_seed_style_epoch(benchmark: Any, name: str) -> None:
    """The seed's Jacobian (one autograd.grad per residual); the engine must beat it."""
    shape = SHAPES[name]
    benchmark.group = f"epoch {name} (P={shape.n_params}, M={shape.n_residuals})"
    ours: list[float] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        ours.append(cases.lm_epochs(shape).epoch_time[1])
        model, x, y = cases.make_problem(shape)
        return (model, x, y, MU_INIT, cases.starting_objective(model, x, y)), {}

    result = benchmark.pedantic(cases.seed_style_epoch, setup=setup, rounds=3)
    benchmark.extra_info.update(trials=result.trials, engine_epoch_min_s=round(min(ours), 4))
    assert min(ours) < benchmark.stats.stats.min


def test_sinc_per_epoch_overhead(benchmark: Any) -> None:
    """50 epochs of sinc(10x), 2,000 points, 1-20-1 tanh (61 weights): per-epoch milliseconds.

    The benchmark times the whole ``fit`` (setup included); ``extra_info`` has the per-epoch
    mean from the history and the 1,000-epoch extrapolation.
    """
    benchmark.group = "sinc overhead (P=61, M=2000, 50 epochs)"
    histories: list[TrainingHistory] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        model, x, y = cases.sinc_problem()
        return (cases.make_trainer(model, max_epochs=50), x, y), {}

    def fit(trainer: Any, x: torch.Tensor, y: torch.Tensor) -> None:
        histories.append(trainer.fit(x, y))

    benchmark.pedantic(fit, setup=setup, rounds=3, warmup_rounds=1)
    per_epoch = min(sum(h.epoch_time[1:]) / h.epochs for h in histories)
    trials = histories[-1].trials[1:]
    benchmark.extra_info.update(
        epochs=histories[-1].epochs,
        per_epoch_ms=round(per_epoch * 1e3, 3),
        per_trial_ms=round(per_epoch * len(trials) / sum(trials) * 1e3, 3),
        mean_trials=round(sum(trials) / len(trials), 2),
        thousand_epochs_s=round(per_epoch * 1000, 2),
        final_loss=histories[-1].loss[-1],
    )
    print(f"\n[sinc] {per_epoch * 1e3:.2f} ms/epoch over {histories[-1].epochs} epochs "
          f"(mean trials {sum(trials) / len(trials):.2f}): 1,000 epochs ~ {per_epoch * 1e3:.1f} s")
    assert histories[-1].epochs == 50
    assert per_epoch * 1000 < 60.0, "1,000 epochs of per-epoch overhead should take seconds"
