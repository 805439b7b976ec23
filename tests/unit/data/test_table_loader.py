"""TableLoader works as the original helper inside a DataLoader, and its fast path agrees."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lmbench.data import TableLoader


def _table(n: int = 12_000, d: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))  # float64, as users often pass
    y = np.eye(2)[rng.integers(0, 2, size=n)]
    return x, y


def test_original_usage_with_a_dataloader() -> None:
    x, y = _table()
    loader = DataLoader(TableLoader(x, y, device="cpu"), batch_size=5000, shuffle=False)
    batches = list(loader)
    assert [len(xb) for xb, _ in batches] == [5000, 5000, 2000]
    xs = torch.cat([xb for xb, _ in batches])
    ys = torch.cat([yb for _, yb in batches])
    assert xs.dtype == ys.dtype == torch.float32
    np.testing.assert_array_equal(xs.numpy(), x.astype(np.float32))
    np.testing.assert_array_equal(ys.numpy(), y.astype(np.float32))


def test_fast_loader_yields_the_same_batches() -> None:
    x, y = _table()
    data = TableLoader(x, y)
    reference = list(DataLoader(data, batch_size=5000, shuffle=False))
    fast = list(data.loader(5000))
    assert len(fast) == len(reference)
    for (xf, yf), (xr, yr) in zip(fast, reference, strict=True):
        assert torch.equal(xf, xr) and torch.equal(yf, yr)
    # Unshuffled batches are views into the table: no copy.
    assert fast[1][0].untyped_storage().data_ptr() == data.x.untyped_storage().data_ptr()


def test_fast_loader_shuffles_every_row_once() -> None:
    x, _ = _table(n=1000, d=1)
    rows = np.arange(1000, dtype=np.float64)
    data = TableLoader(x, rows)
    generator = torch.Generator().manual_seed(0)
    seen = torch.cat([yb for _, yb in data.loader(300, shuffle=True, generator=generator)])
    assert sorted(seen.tolist()) == rows.tolist()
    assert not torch.equal(seen, torch.as_tensor(rows, dtype=torch.float32))


def test_indexing_by_row_slice_and_list() -> None:
    x, y = _table(n=10, d=3)
    data = TableLoader(x, y)
    assert len(data) == 10
    xr, yr = data[4]
    np.testing.assert_array_equal(xr.numpy(), x[4].astype(np.float32))
    xb, _ = data[[7, 2, 2]]
    np.testing.assert_array_equal(xb.numpy(), x[[7, 2, 2]].astype(np.float32))
    xs, ys = data[2:5]
    assert xs.shape == (3, 3) and ys.shape == (3, 2)
    assert data[torch.tensor(4)][0].shape == (3,)
    np.testing.assert_array_equal(data[[-1, 0]][0].numpy(), x[[-1, 0]].astype(np.float32))


def test_tensor_inputs_are_converted_to_float32() -> None:
    x = torch.arange(6, dtype=torch.float64).reshape(3, 2)
    y = torch.tensor([0, 1, 2])
    data = TableLoader(x, y)
    assert data.x.dtype == data.y.dtype == torch.float32
    assert data[2][1].item() == 2.0


def test_mismatched_lengths_raise_a_clear_error() -> None:
    with pytest.raises(ValueError, match="x has 5 rows but y has 4"):
        TableLoader(np.zeros((5, 2)), np.zeros((4, 1)))


def test_read_only_arrays_are_accepted() -> None:
    x = np.zeros((4, 2), dtype=np.float32)
    x.setflags(write=False)
    data = TableLoader(x, np.zeros(4))
    assert data.x.shape == (4, 2)
