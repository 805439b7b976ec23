"""``lmbench.bench.scale`` on a tiny synthetic .npy pair (cheap; not skipped)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lmbench.bench import scale


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """300 rows, 5 features, 2 one-hot outputs, as ``scale prepare`` would write them."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    labels = (x[:, 0] * x[:, 1] > 0).astype(int)
    y = np.eye(2, dtype=np.float32)[labels]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return tmp_path


def test_loader_serves_whole_memory_mapped_chunks(workdir: Path) -> None:
    dataset = scale.MemmapRows(workdir, rows=250)
    assert isinstance(dataset.x, np.memmap)
    batches = list(scale.chunk_loader(dataset, chunk=100))
    assert [b[0].shape[0] for b in batches] == [100, 100, 50]
    assert all(b[0].dtype == torch.float32 and b[1].shape[1] == 2 for b in batches)
    torch.testing.assert_close(torch.cat([b[0] for b in batches]),
                               torch.from_numpy(np.load(workdir / "x.npy")[:250]))
    assert dataset.nbytes == 250 * 7 * 4


def test_stream_reports_memory_and_time_split(workdir: Path) -> None:
    result = scale.stream(workdir, rows=None, epochs=2, chunk=64, hidden=3,
                          threads=torch.get_num_threads())
    json.dumps(result)  # what the child prints
    assert result["rows"] == 300 and result["params"] == 3 * 6 + 2 * 4
    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    assert result["loss"][-1] < result["loss"][0]
    for epoch in result["epochs"]:
        assert epoch["trials"] >= 1 and epoch["time_jacobian"] > 0
    assert result["peak_rss_mib"] > 0 and result["peak_anon_rss_mib"] > 0


def test_growth_is_relative_to_the_small_run() -> None:
    small = {"peak_rss_mib": 500.0, "data_bytes": 0, "peak_anon_rss_mib": 400.0,
             "heap_peak_mib": 100.0}
    large = {"peak_rss_mib": 600.0, "data_bytes": 100 * 2**20, "peak_anon_rss_mib": 404.0,
             "heap_peak_mib": 100.0}
    assert scale.growth(small, large) == {
        "peak_rss": 20.0, "peak_rss_minus_data": 0.0, "peak_anon_rss": 1.0, "heap_peak": 0.0
    }
