"""The memory/work model against measurements, and the choices it drives."""

import pytest
import torch

from lmbench.bench.measure import measure_point
from lmbench.core.cost_model import (
    Problem,
    best_engine,
    estimate,
    max_params,
)
from lmbench.core.settings import TrainerSettings
from lmbench.limits.cli import feasible_region
from lmbench.limits.cli import main as limits_main
from lmbench.models import build_mlp
from lmbench.units import parse_bytes


@pytest.fixture(autouse=True)
def _threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize(
    ("engine", "params", "rows", "chunk"),
    # large enough that each phase's peak lasts longer than the sampler's 0.5 ms period
    [("in_memory_primal", 1000, 4000, 2000), ("in_memory_dual", 3000, 1000, None),
     ("streaming", 800, 6000, 1000), ("cache", 800, 3000, 1000),
     # matrix-free: the Jacobian-block phase (small chunks), the activations phase (large ones)
     ("matrix_free", 20_000, 300, 100), ("matrix_free", 20_000, 600, 600)],
)
def test_prediction_within_20_percent_of_measured_peak(engine, params, rows, chunk):
    point = measure_point(engine, params, rows, chunk_samples=chunk)
    assert 0.8 <= point.memory_ratio <= 1.2, point
    assert point.epoch_time_s > 0 and point.trials >= 1


def test_formulas_on_hand_computed_cases():
    p = Problem(n_samples=1000, n_outputs=2, n_params=500, itemsize=4)
    primal = estimate(p, "in_memory_primal", chunk_samples=100)
    assert primal.memory_bytes == 4 * (500 * 500 + max(2 * 100 * 2 * 500, 500 * 500))
    dual = estimate(Problem(100, 1, 5000), "in_memory_dual")
    assert dual.memory_bytes == 4 * max(2 * 100 * 5000, 100 * 5000 + 2 * 100 * 100)
    cache = estimate(p, "cache", chunk_samples=100)
    assert cache.disk_bytes == 4 * (2000 * 500 + 2000)  # the seed's formula
    assert primal.flops > 2000 * 500 * 500  # at least the J^T J triangle
    free = estimate(p, "matrix_free", chunk_samples=100, cg_iterations=9, activation_floats=7)
    block = 8 * 2 * 500  # 16 // O = 8 samples of O = 2 rows
    assert free.memory_bytes == 4 * max(4 * 500 + block, 16 * 500 + 2 * 100 * 7)
    assert free.disk_bytes == 0
    assert free.flops == pytest.approx(6.0 * 2000 * 500 + 10 * 10.0 * 1000 * 500 + 2 * 1000 * 500)


def test_engine_choice_follows_the_model():
    gb = parse_bytes("12GB")
    assert best_engine(Problem(500, 1, 20_000), gb)[0] == "in_memory_dual"  # M < P
    assert best_engine(Problem(100_000, 3, 5_000), gb)[0] == "in_memory_primal"
    engine, chunk = best_engine(Problem(100_000, 3, 5_000), parse_bytes("200MB"))
    assert engine in ("streaming", "cache") or chunk < 100_000
    assert best_engine(Problem(100_000, 1, 60_000), gb)[0] == "cache"  # P x P does not fit
    assert best_engine(Problem(10, 1, 10), 10) is None
    # no disk for the M x P cache: only the matrix-free engine is left
    no_disk = best_engine(Problem(100_000, 1, 60_000), gb, disk_bytes=10**9)
    assert no_disk == ("matrix_free", 1024)
    assert best_engine(Problem(100_000, 1, 10**7), gb, disk_bytes=10**9)[0] == "matrix_free"


def test_max_params_claims_for_a_12gb_budget():
    gb12 = parse_bytes("12GB")
    assert max_params(10**6, "streaming", gb12) >= 35_000
    assert max_params(7_000, "in_memory_primal", gb12) >= 35_000
    assert max_params(10**6, "in_memory_dual", gb12) == 0  # M^2 alone is 4 TB
    # past the P x P wall: the same largest P at every row count, 12 GB / (20 * 4 bytes)
    free = [max_params(rows, "matrix_free", gb12) for rows in (1_000, 10**6, 10**7)]
    assert free[0] == free[1] == free[2] == 12 * 10**9 // (20 * 4)


def test_parse_bytes_and_cli(capsys):
    assert parse_bytes("12GB") == 12 * 10**9
    assert parse_bytes("1GiB") == 2**30
    with pytest.raises(ValueError, match="12GB or 16GiB"):
        parse_bytes("twelve")
    assert "| 1,000,000 |" in feasible_region(parse_bytes("12GB"))
    limits_main(["--budget", "12GB", "--samples", "100000", "--outputs", "3", "--params", "5000"])
    assert "best: in_memory_primal" in capsys.readouterr().out


def test_cli_states_the_matrix_free_region_as_weights_times_rows(capsys):
    limits_main(["--budget", "12GB"])
    out = capsys.readouterr().out
    assert "| matrix_free |" in out.splitlines()[2]
    assert "matrix_free: P <= 150,000,000 weights at every N·O" in out
    assert "| 1,000,000 | 150,000,000 | 1.50e+14 |" in out  # weights x rows at a million rows


def test_a_million_weights_in_12gb_goes_to_matrix_free_where_nothing_else_fits(capsys, tmp_path):
    """letter's 26 classes, 1,000 rows, the (1024, 960) MLP: J^T J alone is 4 TB, the dual
    kernel's J is 104 GB; with 1 GB of disk the cache does not fit either."""
    weights = 1_026_394
    limits_main(["--budget", "12GB", "--samples", "1000", "--outputs", "26",
                 "--params", str(weights), "--disk", "1GB"])
    assert "best: matrix_free" in capsys.readouterr().out
    limits_main(["--budget", "12GB", "--samples", "1000", "--outputs", "26",
                 "--params", str(weights)])
    assert "best: cache" in capsys.readouterr().out  # disk not given: the cache is assumed
    model = build_mlp(16, 26, hidden=(1024, 960))
    auto = TrainerSettings(engine="auto", memory_budget_bytes=parse_bytes("12GB"))
    assert auto.resolved_engine(model) == "matrix_free"  # no temp_folder: no disk cache
    assert auto.with_(temp_folder=str(tmp_path)).resolved_engine(model) == "cache"
