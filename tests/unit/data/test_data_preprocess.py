"""Preprocessing learns every statistic from the training split and nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmbench.data import DatasetConfigError, DatasetSpec
from lmbench.data.prepare import prepare_frame
from lmbench.data.preprocess import (
    MAX_CLASSES,
    ColumnRoles,
    FeatureEncoder,
    TargetEncoder,
    infer_column_roles,
)


def _spec(task: str = "multiclass", **overrides: object) -> DatasetSpec:
    cfg = {
        "name": "synthetic",
        "source": {"package": "none", "key": "none"},
        "citation": "test data",
        "task": task,
        "target": "label",
        "drop": ["row_id"],
        "categorical": ["code"],
        "max_categories": 20,
        "approx_rows": 300,
    }
    cfg.update(overrides)
    return DatasetSpec.from_config(cfg)


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "row_id": np.arange(n),
            "size": rng.normal(10.0, 2.0, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "code": rng.choice([1, 2], n),
            "label": rng.choice(["x", "y", "z"], n),
        }
    )


def test_statistics_and_levels_come_from_the_training_rows_only() -> None:
    frame = _frame()
    first = prepare_frame(frame, _spec(), seed=3)
    held_out = np.concatenate([first.row_indices["val"], first.row_indices["test"]])
    poisoned = frame.copy()
    poisoned.loc[held_out, "size"] = 1e6
    poisoned.loc[held_out, "colour"] = "never_seen_in_training"
    poisoned.loc[held_out, "code"] = 7
    ds = prepare_frame(poisoned, _spec(), seed=3)

    train_rows = ds.row_indices["train"]
    np.testing.assert_array_equal(train_rows, first.row_indices["train"])  # split ignores x
    train_size = frame.loc[train_rows, "size"].to_numpy()
    np.testing.assert_allclose(ds.features.means, [train_size.mean()])
    np.testing.assert_allclose(ds.features.scales, [train_size.std()])
    np.testing.assert_allclose(ds.features.medians, [np.median(train_size)])
    assert ds.features.levels == (("blue", "green", "red"), ("1", "2"))
    assert ds.feature_names == (
        "size",
        "colour=blue",
        "colour=green",
        "colour=red",
        "code=1",
        "code=2",
    )
    # Held-out rows: the extreme value is scaled with training statistics; unseen levels
    # (no "other" column, as nothing was cut) encode as all-zero blocks.
    expected = (1e6 - train_size.mean()) / train_size.std()
    np.testing.assert_allclose(ds.x_val[:, 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(ds.x_test[:, 1:], 0.0)
    np.testing.assert_array_equal(ds.x_train, first.x_train)


def test_imputation_uses_training_median_and_mode() -> None:
    frame = _frame(seed=1)
    probe = prepare_frame(frame, _spec(), seed=0)
    train_rows, test_rows = probe.row_indices["train"], probe.row_indices["test"]
    frame.loc[test_rows[:5], ["size", "colour"]] = np.nan
    frame.loc[test_rows[5:], "size"] = -1e9  # must not move the median
    ds = prepare_frame(frame, _spec(), seed=0)
    train = frame.loc[train_rows]
    mode = train["colour"].value_counts().idxmax()
    assert ds.features.fill_levels[0] == mode
    restored = ds.x_test[:5, 0] * ds.features.scales[0] + ds.features.means[0]
    np.testing.assert_allclose(restored, np.median(train["size"]), rtol=1e-5)
    mode_column = ds.feature_names.index(f"colour={mode}")
    np.testing.assert_array_equal(ds.x_test[:5, mode_column], 1.0)


def test_missing_training_values_are_filled_before_scaling() -> None:
    train = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0], "b": ["u", None, "u", "v"]})
    encoder = FeatureEncoder.fit(train, ColumnRoles(("a",), ("b",)), max_categories=5)
    assert encoder.medians[0] == 3.0
    filled = np.array([1.0, 3.0, 3.0, 5.0])
    assert encoder.means[0] == pytest.approx(filled.mean())
    assert encoder.scales[0] == pytest.approx(filled.std())
    assert encoder.fill_levels == ("u",)
    x = encoder.transform(train)
    np.testing.assert_array_equal(x[:, 1:], [[1, 0], [1, 0], [1, 0], [0, 1]])


def test_cardinality_cap_keeps_top_levels_plus_other() -> None:
    counts = {"a": 50, "b": 40, "c": 30, "d": 20, "e": 10, "f": 5, "g": 5}
    train = pd.DataFrame({"k": [lvl for lvl, n in counts.items() for _ in range(n)]})
    encoder = FeatureEncoder.fit(train, ColumnRoles((), ("k",)), max_categories=4)
    assert encoder.levels == (("a", "b", "c"),) and encoder.has_other == (True,)
    assert encoder.feature_names == ("k=a", "k=b", "k=c", "k=other")
    x = encoder.transform(pd.DataFrame({"k": ["c", "e", "zzz", "a"]}))
    np.testing.assert_array_equal(x, [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [1, 0, 0, 0]])
    assert x.dtype == np.float32


def test_level_ties_are_broken_alphabetically() -> None:
    train = pd.DataFrame({"k": ["q", "p", "r", "p", "q", "r", "s"]})
    encoder = FeatureEncoder.fit(train, ColumnRoles((), ("k",)), max_categories=3)
    assert encoder.levels == (("p", "q"),)
    assert encoder.fill_levels == ("p",)


def test_constant_training_column_scales_to_zero_not_nan() -> None:
    train = pd.DataFrame({"c": [4.0, 4.0, 4.0]})
    encoder = FeatureEncoder.fit(train, ColumnRoles(("c",), ()), max_categories=2)
    x = encoder.transform(pd.DataFrame({"c": [4.0, 6.0]}))
    np.testing.assert_array_equal(x[:, 0], [0.0, 2.0])


def test_column_roles_follow_dtypes_and_the_explicit_list() -> None:
    frame = pd.DataFrame(
        {
            "n": [1.0, 2.0],
            "i": [1, 2],
            "s": ["a", "b"],
            "c": pd.Categorical(["a", "b"]),
            "flag": [True, False],
        }
    )
    roles = infer_column_roles(frame, ["i"])
    assert roles == ColumnRoles(numeric=("n", "flag"), categorical=("i", "s", "c"))
    with pytest.raises(DatasetConfigError, match="missing_col"):
        infer_column_roles(frame, ["missing_col"])


def test_binary_targets_are_two_one_hot_columns() -> None:
    labels = pd.Series(["no", "yes", "yes", "no", "yes"])
    encoder = TargetEncoder.fit("binary", labels)
    y = encoder.transform(labels)
    assert encoder.class_names == ("no", "yes")
    np.testing.assert_array_equal(y, [[1, 0], [0, 1], [0, 1], [1, 0], [0, 1]])
    assert y.dtype == np.float32


def test_numeric_class_labels_sort_numerically() -> None:
    labels = pd.Series([10, 2, 7, 2, 10])
    encoder = TargetEncoder.fit("multiclass", labels)
    assert encoder.class_names == ("2", "7", "10")
    with pytest.raises(DatasetConfigError, match="not among the classes"):
        encoder.transform(pd.Series([3]))


def test_regression_target_uses_training_statistics_and_inverts() -> None:
    train = pd.Series([10.0, 20.0, 30.0, 40.0])
    encoder = TargetEncoder.fit("regression", train)
    assert (encoder.mean, encoder.scale) == (25.0, pytest.approx(np.std([10, 20, 30, 40])))
    y = encoder.transform(pd.Series([25.0, 1000.0]))
    assert y.shape == (2, 1) and y.dtype == np.float32
    np.testing.assert_allclose(encoder.inverse_transform(y), [[25.0], [1000.0]], rtol=1e-6)


def test_regression_through_prepare_frame_standardizes_on_train() -> None:
    frame = _frame().assign(label=lambda f: f["size"] * 3.0 + 5.0)
    ds = prepare_frame(frame, _spec("regression"), seed=0)
    train_target = frame.loc[ds.row_indices["train"], "label"]
    assert ds.target.mean == pytest.approx(train_target.mean())
    assert ds.target_names == ("label",) and ds.n_classes is None
    np.testing.assert_allclose(
        ds.inverse_transform_target(ds.y_test)[:, 0],
        frame.loc[ds.row_indices["test"], "label"],
        rtol=1e-5,
    )


def test_rows_without_target_are_dropped_and_id_columns_removed() -> None:
    frame = _frame()
    frame.loc[[0, 5, 9], "label"] = None
    ds = prepare_frame(frame, _spec(), seed=0)
    assert sum(len(ds.split(s)[0]) for s in ("train", "val", "test")) == 297
    assert not any(name.startswith("row_id") for name in ds.feature_names)


def test_continuous_target_declared_multiclass_is_refused_naming_the_column() -> None:
    frame = _frame().assign(label=lambda f: f["size"] * 3.0 + 5.0)  # 300 distinct values
    with pytest.raises(DatasetConfigError, match=(
        rf"Dataset 'synthetic': task 'multiclass' but target column 'label' has 300 distinct "
        rf"values, more than the {MAX_CLASSES} classes .*dataset.task=regression"
    )):
        prepare_frame(frame, _spec("multiclass"), seed=0)
    many = pd.Series(np.arange(MAX_CLASSES), name="label")
    assert len(TargetEncoder.fit("multiclass", many).classes) == MAX_CLASSES  # the limit itself
