"""The side-by-side comparison code of ``lmbench.bench.performance`` on tiny problems: every
implementation runs, the steps agree where they must, ratios and the MLflow schema are right.
No timing assertions."""

from __future__ import annotations

import math

import pytest
import torch

from lmbench.bench import performance as perf
from lmbench.bench.implementations import FLOOR, IMPLEMENTATIONS, REFERENCE, reference_module
from lmbench.bench.performance import loss_agreement, measure_size
from lmbench.bench.reference import LMSettings, PlainVmapLM
from lmbench.bench.results import ImplementationResult, SizeResult, add_ratios, paired_ratio
from lmbench.bench.workloads import make_workload

pytest.importorskip("torch_levenberg_marquardt")


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _lmbench_first_step(work: perf.Workload, settings: LMSettings) -> torch.Tensor:
    model = work.fresh_model()
    history = perf.lmbench_trainer(model, settings).fit(work.x, work.y)
    assert history.accepted[1] and history.trials[1] == 1
    return _flat(model)


def test_workload_has_about_p_weights_and_2p_residuals():
    work = make_workload(500, 2)
    assert abs(work.n_params - 500) / 500 < 0.1
    assert work.n_residuals == work.n_samples * 2
    assert abs(work.n_residuals - 2 * work.n_params) <= 2
    again = make_workload(500, 2)
    assert torch.equal(work.x, again.x) and torch.equal(_flat(work.model), _flat(again.model))


def test_every_implementation_runs_and_ratios_are_consistent():
    torch.set_num_threads(2)
    work = make_workload(60, 1)
    size = measure_size(work, repeats=1, loss_steps=0)
    assert set(IMPLEMENTATIONS) <= set(size.results)
    for name, item in size.results.items():
        assert item.epoch_time_s > 0 and math.isfinite(item.epoch_time_s), name
        assert item.peak_memory_bytes >= 0, name
        assert item.trials >= 1 and item.accepted, name
    assert size.results[FLOOR].ratio_to_floor == pytest.approx(1.0)
    assert size.results[REFERENCE].ratio_to_reference == pytest.approx(1.0)
    lm = size.results["lmbench"]
    assert lm.ratio_to_reference == pytest.approx(
        lm.epoch_time_s / size.results[REFERENCE].epoch_time_s)
    assert set(lm.split_s) == {"jacobian", "system", "solve", "evaluate"}
    # the LM implementations take the same step here, so they end at the same loss
    losses = [size.results[n].loss_after for n in ("lmbench", REFERENCE, "plain_vmap")]
    assert max(losses) - min(losses) <= 1e-5 * max(losses)
    assert set(size.reference_split_s) >= {"jacobian", "system", "solve"}


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-9), (torch.float32, 2e-4)])
def test_plain_vmap_step_equals_lmbench_first_step(dtype, rtol):
    work = make_workload(80, 2, dtype=dtype)
    settings = LMSettings(mu_init=3.0)
    lm = _lmbench_first_step(work, settings)
    plain = PlainVmapLM(work.fresh_model(), settings)
    start = plain.theta.clone()
    outcome = plain.step(work.x, work.y)
    assert outcome.accepted and outcome.trials == 1
    assert plain.mu == pytest.approx(settings.mu_init / settings.factor)
    assert not torch.allclose(plain.theta, start)  # a real step was taken
    torch.testing.assert_close(plain.theta, lm, rtol=rtol, atol=rtol * float(lm.abs().max()))


def test_reference_step_equals_lmbench_once_mu_is_divided_by_n():
    work = make_workload(80, 2, dtype=torch.float64)
    settings = LMSettings(mu_init=3.0)
    lm = _lmbench_first_step(work, settings)
    module = reference_module(work.fresh_model(), work, settings)
    module.training_step(work.x, work.y)
    # its damping factor is a float32 tensor even for a float64 model: agreement to ~1e-8
    torch.testing.assert_close(module.flat_params, lm, rtol=1e-6, atol=1e-8)
    # the unscaled damping (lam = mu) is a different step: the mapping is what makes them agree
    from torch_levenberg_marquardt.damping import StandardDampingStrategy

    unmapped = reference_module(work.fresh_model(), work, settings)
    unmapped.damping_strategy = StandardDampingStrategy(starting_value=settings.mu_init)
    unmapped.training_step(work.x, work.y)
    assert not torch.allclose(unmapped.flat_params, lm, rtol=1e-6, atol=1e-6)


def test_loss_after_k_accepted_steps_agrees_and_is_finite():
    work = make_workload(60, 1)
    agreement = loss_agreement(work, LMSettings(), steps=3)
    assert set(agreement.losses) == {"lmbench", REFERENCE, "plain_vmap"}
    for name, series in agreement.losses.items():
        assert len(series) == 4 and all(math.isfinite(v) for v in series), name
        assert series[-1] < series[0], name
        assert math.isfinite(agreement.max_relative_difference[name]), name
    assert agreement.max_relative_difference["lmbench"] == 0.0
    assert agreement.max_relative_difference[REFERENCE] < 1e-3
    assert agreement.max_relative_difference["plain_vmap"] < 1e-3


def test_add_ratios_divides_by_floor_and_reference():
    def item(name: str, seconds: float, memory: int) -> ImplementationResult:
        return ImplementationResult(name, seconds, memory, 1, True, 0.0)

    results = {"lmbench": item("lmbench", 2.0, 30), REFERENCE: item(REFERENCE, 4.0, 120),
               FLOOR: item(FLOOR, 1.0, 60)}
    add_ratios(results)
    assert results["lmbench"].ratio_to_floor == 2.0
    assert results["lmbench"].ratio_to_reference == 0.5
    assert results["lmbench"].memory_ratio_to_floor == 0.5
    assert results["lmbench"].memory_ratio_to_reference == 0.25
    assert results[REFERENCE].ratio_to_floor == 4.0
    assert math.isnan(results["lmbench"].paired_ratio_to_reference)  # no rounds recorded


def test_paired_ratio_is_the_median_of_per_round_ratios():
    # per round: 0.25, 0.5, 0.55 -> median 0.5
    assert paired_ratio([1.0, 4.0, 1.1], [4.0, 8.0, 2.0]) == pytest.approx(0.5)
    assert math.isnan(paired_ratio([1.0], [1.0, 2.0]))
    assert math.isnan(paired_ratio([], []))


def test_mlflow_runs_follow_the_report_schema(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from lmbench.reports.limits import performance_section
    from lmbench.reports.runs import load_runs

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = {name: ImplementationResult(name, 1.0 + i, 100 * (i + 1), 1, True, 0.5)
               for i, name in enumerate(IMPLEMENTATIONS + ("lmbench_auto",))}
    add_ratios(results)
    size = SizeResult(n_params=100, n_residuals=200, n_samples=200, n_outputs=1,
                      results=results)
    assert perf.log_to_mlflow([size], "cpu", uri) == len(IMPLEMENTATIONS)  # variants not logged
    runs = load_runs("performance", uri)
    assert sorted(runs["tags.implementation"]) == sorted(IMPLEMENTATIONS)
    assert set(runs["tags.kind"]) == {"performance"} and set(runs["tags.device"]) == {"cpu"}
    assert set(runs["params.n_params"]) == {"100"} and set(runs["params.n_residuals"]) == {"200"}
    lm = runs[runs["tags.implementation"] == "lmbench"].iloc[0]
    assert lm["metrics.epoch_time_s"] == 1.0
    assert lm["metrics.ratio_to_reference"] == pytest.approx(0.5)
    assert lm["metrics.ratio_to_floor"] == pytest.approx(1.0 / 4.0)
    assert lm["metrics.peak_memory_bytes"] == 100
    section = performance_section(runs)
    assert not section.missing and len(section.tables[0].rows) == len(IMPLEMENTATIONS)
