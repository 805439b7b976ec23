"""The matrix-free measurements run end to end at tiny sizes (the GPU script's --smoke)."""

import json

import torch

from lmbench.bench.gpu_matrix_free import main as gpu_main
from lmbench.bench.matrix_free import point, table


def test_gpu_script_smoke_on_cpu_writes_its_json(tmp_path):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "matrix_free_gpu.json"
        gpu_main(["--smoke", "--device", "cpu", "--cg-max-iter", "3", "--out", str(out)])
    finally:
        torch.set_num_threads(previous)
    payload = json.loads(out.read_text())
    assert payload["engine"] == "matrix_free" and payload["device"]
    assert [e["n_params"] for e in payload["epochs"]] == [2007, 4999]
    assert all(e["epoch_time_s"] > 0 and e["trials"] >= 1 for e in payload["epochs"])
    fitted = [p for p in payload["ladder"] if p["fits_budget"]]
    assert payload["largest_params_within_budget"] == fitted[-1]["n_params"]
    assert all(p["total_bytes"] <= payload["budget_bytes"] for p in fitted)
    assert not payload["ladder"][-1]["fits_budget"]  # the ladder ends where the budget does


def test_scale_point_reports_bytes_per_million_weights():
    result = point(3_000, 60, 20, cg_max_iter=3)
    assert result["engine"] == "matrix_free"
    assert result["bytes_per_million_weights"] == result["peak_memory_bytes"] / result[
        "n_params"] * 1e6
    assert f"| {result['n_params']:,} | 60 | 20 |" in table([result])
