"""The paper-check runner: problem registry, seeds, success and summary statistics."""

import math

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from lmbench.data.problems import PROBLEMS, bipolar_parity, sinc_data
from lmbench.harness.paper_check_minibatch import run_side_by_side, side_by_side_metrics
from lmbench.harness.paper_check_settings import CheckSettings
from lmbench.harness.paper_check_stats import StartResult, summarize_starts
from lmbench.harness.runners.paper_check import run_start
from lmbench.models.mlp import build_mlp
from lmbench.reports.paper import paper_section
from lmbench.tracking import schema


def test_registry_has_the_classic_problems_and_networks():
    assert list(PROBLEMS) == ["xor", "parity3", "parity4", "parity5", "parity6", "parity7",
                              "sinc", "sinc_minibatch"]
    assert PROBLEMS["sinc_minibatch"].network == "1-20-1 tanh"
    assert (PROBLEMS["sinc_minibatch"].batch_size, PROBLEMS["sinc_minibatch"].max_epochs) == (
        1000, 50)  # the README's 20 batches per epoch for 50 epochs
    assert PROBLEMS["xor"].network == "2-3-1 tanh"
    assert PROBLEMS["parity7"].network == "7-7-1 tanh"
    assert PROBLEMS["sinc"].network == "1-20-1 tanh"


def test_bipolar_parity_targets_count_the_plus_ones():
    x, y = bipolar_parity(3)
    assert x.shape == (8, 3) and set(x.unique().tolist()) == {-1.0, 1.0}
    odd = ((x > 0).sum(dim=1) % 2 == 1)
    assert torch.equal(y.squeeze(1) > 0, odd)
    x2, y2 = bipolar_parity(2)
    assert y2.squeeze(1).tolist() == [-1.0, 1.0, 1.0, -1.0]  # XOR


def test_sinc_is_the_readmes_normalised_sinc():
    x, y = sinc_data(torch.float64)
    assert x.shape == (20_000, 1)
    i = int(torch.argmin((x - 0.05).abs()))
    expected = math.sin(10 * math.pi * float(x[i])) / (10 * math.pi * float(x[i]))
    assert float(y[i]) == pytest.approx(expected, rel=1e-9)


def test_settings_defaults_overrides_and_errors_name_the_knob():
    cfg = OmegaConf.create({"problem": "sinc", "starts": None, "max_epochs": 7})
    settings = CheckSettings.from_config(cfg)
    assert (settings.starts, settings.max_epochs, settings.dtype) == (3, 7, torch.float32)
    with pytest.raises(ValueError, match="job.problem='parity9'"):
        CheckSettings.from_config(OmegaConf.create({"problem": "parity9"}))
    with pytest.raises(ValueError, match="job.starts"):
        CheckSettings.from_config(OmegaConf.create({"problem": "xor", "starts": 0}))


def test_a_start_is_reproducible_and_succeeds_on_xor():
    settings = CheckSettings.from_config(OmegaConf.create({"problem": "xor", "max_epochs": 100}))
    first, again = run_start(settings, 3, base_seed=0), run_start(settings, 3, base_seed=0)
    assert first.seed == 3 and first.success and first.final_mse <= 1e-4
    assert (first.epochs, first.final_mse) == (again.epochs, again.final_mse)
    assert run_start(settings, 3, base_seed=1).seed == 1_000_003


def test_summary_counts_iterations_and_time_over_successful_starts():
    results = [
        StartResult(0, 0, True, 10, 1e-5, 1.0, "min_error", {}),
        StartResult(1, 1, True, 20, 2e-5, 3.0, "min_error", {}),
        StartResult(2, 2, False, 100, 0.5, 9.0, "max_epochs", {}),
    ]
    m = summarize_starts(results)
    assert m["success_rate"] == pytest.approx(2 / 3)
    assert (m["epochs_mean"], m["epochs_median"], m["time_mean_s"]) == (15.0, 15.0, 2.0)
    assert m["epochs_std"] == pytest.approx(math.sqrt(50))
    assert m["final_mse_median"] == 2e-5 and m["epochs_mean_all"] == pytest.approx(130 / 3)
    none = summarize_starts([results[2]])
    assert none["success_rate"] == 0 and math.isnan(none["epochs_mean"])


def test_side_by_side_start_trains_both_libraries_reproducibly():
    pytest.importorskip("torch_levenberg_marquardt")
    settings = CheckSettings.from_config(
        OmegaConf.create({"problem": "sinc_minibatch", "max_epochs": 1})
    )
    ours, reference = run_side_by_side(settings, 0, base_seed=0)
    again, _ = run_side_by_side(settings, 0, base_seed=0)
    x, y = sinc_data(torch.float32)
    torch.manual_seed(0)
    start = build_mlp(1, 1, (20,), "tanh", "linear", torch.float32)
    with torch.no_grad():
        start_mse = float(((start(x) - y) ** 2).mean())
    assert ours.epochs == 1 and reference.steps == 20  # 20,000 rows in batches of 1,000
    assert ours.final_mse < start_mse / 10 and reference.final_mse < start_mse / 10
    assert ours.final_mse == again.final_mse  # seeded weights and batches
    assert ours.time_s > 0 and reference.time_s > 0
    metrics = side_by_side_metrics([ours], [reference])
    assert metrics[schema.METRIC_REFERENCE_FINAL_MSE] == reference.final_mse
    assert metrics[schema.METRIC_LMBENCH_FINAL_MSE] == ours.final_mse


def test_paper_section_shows_both_libraries_of_the_side_by_side_check():
    metrics = {
        schema.METRIC_LMBENCH_FINAL_MSE: 2.5e-7, schema.METRIC_LMBENCH_TIME: 12.0,
        schema.METRIC_REFERENCE_FINAL_MSE: 4.0e-7, schema.METRIC_REFERENCE_LOSS_EPOCH: 3.9e-7,
        schema.METRIC_REFERENCE_TIME: 9.0, schema.METRIC_N_STARTS: 1.0,
        schema.METRIC_FINAL_MSE_MEDIAN: 2.5e-7,
    }
    runs = pd.DataFrame([{
        "run_id": "m", "status": "FINISHED", "code_version": "reference",
        schema.tag_column(schema.TAG_PROBLEM): "sinc_minibatch",
        schema.tag_column(schema.TAG_CHECK_PREFIX + "batch_size"): "1000",
        schema.tag_column(schema.TAG_CHECK_PREFIX + "max_epochs"): "50",
        **{schema.metric_column(k): v for k, v in metrics.items()},
    }])
    section = paper_section(runs, lambda run_ids, keys: {})
    text = "\n".join(b if isinstance(b, str) else b.to_markdown() for b in section.blocks)
    assert "lmbench MSE 2.5e-07 in 12 s" in text
    assert "torch-levenberg-marquardt MSE 4e-07 (`loss_epoch` 3.9e-07) in 9 s" in text
    cited = {e["quantity"] for e in section.evidence}
    assert schema.METRIC_REFERENCE_TIME in cited and schema.METRIC_LMBENCH_TIME in cited
