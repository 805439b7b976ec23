"""Splits depend only on the seed, are stratified, and hashes track the prepared bytes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmbench.data import prepare_dataset
from lmbench.data.splits import (
    MIN_ROWS_PER_CLASS,
    content_hash,
    split_indices,
    subsample_indices,
)


def _labels(counts: dict[int, int]) -> np.ndarray:
    return np.concatenate([np.full(n, label) for label, n in counts.items()])


def test_same_seed_same_data_different_seed_different_data() -> None:
    first = prepare_dataset("digits", seed=11)
    np.random.seed(999)  # noqa: NPY002 (global random state must not matter)
    torch.manual_seed(999)
    again = prepare_dataset("digits", seed=11)
    other = prepare_dataset("digits", seed=12)
    assert dict(first.hashes) == dict(again.hashes) and first.hash == again.hash
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(first.row_indices[split], again.row_indices[split])
        assert first.hashes[split] != other.hashes[split]
    assert first.hash != other.hash


def test_splits_partition_the_rows() -> None:
    labels = _labels({0: 500, 1: 300, 2: 7})
    parts = split_indices(len(labels), seed=4, strata=labels)
    joined = np.concatenate([parts.train, parts.val, parts.test])
    assert np.array_equal(np.sort(joined), np.arange(len(labels)))


@pytest.mark.parametrize(("val_fraction", "test_fraction"), [(0.2, 0.2), (0.1, 0.3), (0.0, 0.25)])
def test_each_class_is_split_by_the_requested_fractions(
    val_fraction: float, test_fraction: float
) -> None:
    counts = {0: 500, 1: 301, 2: 47, 3: 10}
    labels = _labels(counts)
    parts = split_indices(
        len(labels), seed=1, val_fraction=val_fraction, test_fraction=test_fraction, strata=labels
    )
    for label, n in counts.items():
        n_test = int(np.floor(test_fraction * n + 0.5))
        n_val = int(np.floor(val_fraction * n + 0.5))
        assert (labels[parts.test] == label).sum() == n_test
        assert (labels[parts.val] == label).sum() == n_val
        assert (labels[parts.train] == label).sum() == n - n_test - n_val


def test_tiny_classes_always_keep_a_training_row() -> None:
    labels = _labels({0: 100, 1: 1, 2: 2, 3: 3})
    parts = split_indices(len(labels), seed=0, val_fraction=0.4, test_fraction=0.45, strata=labels)
    assert set(labels[parts.train]) == {0, 1, 2, 3}


def test_regression_split_sizes_and_seed_dependence() -> None:
    a = split_indices(1000, seed=3, val_fraction=0.15, test_fraction=0.25)
    b = split_indices(1000, seed=3, val_fraction=0.15, test_fraction=0.25)
    c = split_indices(1000, seed=4, val_fraction=0.15, test_fraction=0.25)
    assert (len(a.train), len(a.val), len(a.test)) == (600, 150, 250)
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"), [(0.5, 0.5), (-0.1, 0.2), (0.2, 1.0), (0.7, 0.4)]
)
def test_bad_fractions_are_rejected(val_fraction: float, test_fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        split_indices(100, seed=0, val_fraction=val_fraction, test_fraction=test_fraction)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_seed_must_be_a_non_negative_integer(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        split_indices(10, seed=seed)  # type: ignore[arg-type]


def test_subsample_keeps_class_proportions_and_exact_size() -> None:
    labels = _labels({0: 9000, 1: 800, 2: 200})
    keep = subsample_indices(len(labels), 1000, seed=7, strata=labels)
    assert len(keep) == 1000 and len(np.unique(keep)) == 1000
    assert [(labels[keep] == c).sum() for c in (0, 1, 2)] == [900, 80, 20]
    again = subsample_indices(len(labels), 1000, seed=7, strata=labels)
    other = subsample_indices(len(labels), 1000, seed=8, strata=labels)
    assert np.array_equal(keep, again) and not np.array_equal(keep, other)


def test_subsample_keeps_a_few_rows_of_rare_classes() -> None:
    labels = _labels({0: 10_000, 1: 5})
    keep = subsample_indices(len(labels), 100, seed=0, strata=labels)
    assert (labels[keep] == 1).sum() == MIN_ROWS_PER_CLASS


def test_subsample_larger_than_data_keeps_everything() -> None:
    keep = subsample_indices(50, 500, seed=0)
    assert np.array_equal(np.sort(keep), np.arange(50))


def test_max_rows_through_prepare_dataset() -> None:
    ds = prepare_dataset("magic", seed=2, max_rows=2000)
    assert sum(len(ds.split(s)[0]) for s in ("train", "val", "test")) == 2000
    # UCI: 12,332 gamma and 6,688 hadron events.
    assert ds.y_train[:, ds.target_names.index("g")].mean() == pytest.approx(
        12332 / 19020, abs=0.01
    )
    assert prepare_dataset("magic", seed=2, max_rows=2000).hash == ds.hash


def test_content_hash_covers_bytes_shape_and_dtype() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    reference = content_hash([a])
    assert content_hash([a.copy()]) == reference
    assert content_hash([np.asfortranarray(a)]) == reference  # same values, same hash
    assert content_hash([a.reshape(4, 3)]) != reference  # same bytes, other shape
    assert content_hash([a.view(np.int32)]) != reference  # same bytes, other dtype
    b = a.copy()
    b[2, 3] = np.nextafter(b[2, 3], np.float32(100))
    assert content_hash([b]) != reference
    assert content_hash([a[:0]]) != content_hash([a[:, :0]])
