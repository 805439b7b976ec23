"""One full-batch LM epoch per implementation at P ≈ 2k, N·O ≈ 4k, side by side:

    .venv/bin/pytest tests/benchmarks/test_reference_library.py --benchmark-only

Implementations and variants are those of ``lmbench.bench.implementations`` (lmbench,
torch-levenberg-marquardt with matched damping, a plain ``vmap(jacrev)`` epoch, the GEMM +
Cholesky floor). Each round builds a fresh trainer/module from the same initial weights
(untimed setup) and times one epoch. pytest-benchmark times the whole call, so lmbench's row
also contains ``fit``'s one-off setup (a forward pass and a one-row Jacobian); the trainer's own
epoch time is in ``extra_info``. Skipped by default (``--benchmark-skip`` in pyproject).
"""

from __future__ import annotations

import math

import pytest
import torch

from lmbench.bench.implementations import IMPLEMENTATIONS, VARIANTS, runners
from lmbench.bench.reference import EpochOutcome, LMSettings
from lmbench.bench.workloads import Workload, make_workload

pytest.importorskip("torch_levenberg_marquardt")
pytest.importorskip("pytest_benchmark")

N_PARAMS = 2000
N_OUTPUTS = 1
ROUNDS = 5


@pytest.fixture(scope="module")
def workload() -> Workload:
    torch.set_num_threads(2)
    return make_workload(N_PARAMS, N_OUTPUTS)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS + VARIANTS)
def test_epoch_p2k(benchmark, workload: Workload, implementation: str) -> None:
    factory = runners(workload, LMSettings(), [implementation])[implementation]
    benchmark.group = f"one LM epoch, P={workload.n_params}, N·O={workload.n_residuals}"
    benchmark.extra_info.update(n_params=workload.n_params, n_residuals=workload.n_residuals)

    def setup() -> tuple[tuple[object, ...], dict[str, object]]:
        return (factory(),), {}

    outcome: EpochOutcome = benchmark.pedantic(
        lambda run: run(), setup=setup, rounds=ROUNDS, warmup_rounds=1, iterations=1
    )
    benchmark.extra_info.update(epoch_time_s=outcome.epoch_time_s, trials=outcome.trials)
    assert outcome.accepted and outcome.trials >= 1
    if implementation != "floor":
        assert math.isfinite(outcome.loss) and outcome.loss > 0
