"""The quality-at-scale measurement end to end at smoke sizes: real data (letter), real
trainers, a real MLflow store, and the report section that reads it."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from lmbench.bench.quality_arms import largest_in_family, mlp_weights
from lmbench.bench.quality_at_scale import JSON_NAME, main
from lmbench.core import get_weights_count
from lmbench.models import build_mlp
from lmbench.reports.build import ReportOptions, build_report, generate_report
from lmbench.tracking import RunTracker, schema

LARGE, ADAM, CHOLESKY, FREE_SMALL = (schema.ARM_MATRIX_FREE_LARGE, schema.ARM_ADAM_LARGE,
                                     schema.ARM_CHOLESKY_SMALL, schema.ARM_MATRIX_FREE_SMALL)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("scale")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    threads = torch.get_num_threads()
    try:
        result = main(["--smoke", "--out", str(folder / "out"), "--tracking-uri", uri])
    finally:
        torch.set_num_threads(threads)
    return {"folder": folder, "uri": uri, "result": result}


def test_weight_count_and_family_against_built_networks():
    for hidden in ((1024, 960), (56, 52), (3,)):
        model = build_mlp(16, 26, hidden=hidden)
        assert mlp_weights(16, 26, hidden) == get_weights_count(model)
    assert mlp_weights(16, 26, (1024, 960)) >= 1_000_000
    small = largest_in_family((1024, 960), 16, 26, 5500)
    assert small == (56, 52) and mlp_weights(16, 26, small) <= 5500
    assert mlp_weights(16, 26, (60, 56)) > 5500  # the next width of the family does not fit
    with pytest.raises(ValueError, match="small-max-params"):
        largest_in_family((1024, 960), 16, 26, 100)


def test_smoke_run_writes_json_with_every_arm(measured):
    result = json.loads((measured["folder"] / "out" / JSON_NAME).read_text())
    arms = {arm["arm"]: arm for arm in result["arms"]}
    assert list(arms) == [LARGE, ADAM, CHOLESKY, FREE_SMALL]
    assert arms[LARGE]["engine"] == "matrix_free" and arms[CHOLESKY]["engine"] == "in_memory"
    assert arms[LARGE]["n_params"] == arms[ADAM]["n_params"] == mlp_weights(16, 26, (32, 30))
    assert arms[CHOLESKY]["n_params"] == arms[FREE_SMALL]["n_params"] <= 600
    assert arms[FREE_SMALL]["epochs"] == arms[CHOLESKY]["epochs"] >= 1
    assert result["dataset"] == {**result["dataset"], "name": "letter", "n_train": 200,
                                 "n_val": 100, "n_test": 100, "n_classes": 26}
    for arm in arms.values():
        assert 0.0 <= arm["test_accuracy"] <= 1.0 and arm["test_cross_entropy"] > 0
        assert arm["final_train_loss"] > 0 and arm["peak_rss_bytes"] >= 0
    # LM lowered the training cross-entropy below the untrained network's ln(26) ~ 3.26
    assert arms[LARGE]["final_train_loss"] < 3.0
    assert result["memory_point"]["bytes_per_million_weights"] > 0


def test_runs_are_logged_and_the_report_shows_the_section(measured, tmp_path):
    report = generate_report(ReportOptions(["scale"], tracking_uri=measured["uri"],
                                           out_dir=tmp_path))
    assert report.sections[0].key == "scale"
    markdown = (tmp_path / "report.md").read_text()
    arms = {arm["arm"]: arm for arm in measured["result"]["arms"]}
    accuracy = arms[LARGE]["test_accuracy"]
    assert f"matrix-free LM reached {accuracy:.1%} test accuracy" in markdown
    assert f"vs Adam {arms[ADAM]['test_accuracy']:.1%} test accuracy" in markdown
    assert "MB per million weights" in markdown
    assert (tmp_path / "tables" / "scale.tex").exists()
    with (tmp_path / "runs.csv").open() as handle:
        cited = [row for row in csv.DictReader(handle) if row["section"] == "scale"]
    values = {row["quantity"]: row["value"] for row in cited if row["value"] == repr(accuracy)}
    assert values == {schema.test_metric("accuracy"): repr(accuracy)}
    assert len({row["run_id"] for row in cited}) == 5  # four networks and the memory point


def test_section_is_read_where_present_and_left_out_otherwise(measured):
    with RunTracker("lm-iris-0", experiment_name="bench", tracking_uri=measured["uri"],
                    device="cpu", tags={"method": "lm", "dataset": "iris",
                                        "task": "multiclass"}) as tracker:
        tracker.log_metrics({"test_accuracy": 0.9})
    with_scale = build_report(ReportOptions(["bench"], tracking_uri=measured["uri"]))
    assert "scale" in {section.key for section in with_scale.sections}
    without = build_report(ReportOptions(["bench"], tracking_uri=measured["uri"],
                                         scale_experiment=None))
    assert "scale" not in {section.key for section in without.sections}
    assert "scale" not in " ".join(without.absent)  # not listed as missing either
