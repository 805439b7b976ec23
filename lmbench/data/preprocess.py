"""Feature and target encoding, fitted on the training split only.

Features: numeric columns are imputed with the training median and standardized with the
training mean and standard deviation; categorical columns are imputed with the training mode
and one-hot encoded with at most ``max_categories`` columns each (the most frequent training
levels, plus an ``other`` column when levels were cut). Targets: classification labels become
one-hot rows (binary included: two columns, for a softmax head, as the original library does);
regression targets are standardized with the training mean and standard deviation, and the
encoder maps predictions back to the original units. Every output is float32 numpy. A
classification target with more than ``MAX_CLASSES`` distinct labels is refused (a continuous
target declared as classification).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lmbench.data.errors import DatasetConfigError

OTHER_LEVEL = "other"
MISSING_LEVEL = "missing"
#: The most distinct labels a classification target may have (the registered datasets have at
#: most 26). More is almost always a continuous target declared as classification, which would
#: train one output per distinct value.
MAX_CLASSES = 100


@dataclass(frozen=True)
class ColumnRoles:
    """Which feature columns are numeric and which are categorical."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]


def infer_column_roles(
    features: pd.DataFrame, explicit_categorical: Sequence[str] | None = None
) -> ColumnRoles:
    """Numeric (and boolean) columns are numeric; the others, plus any listed, are categorical.

    ``explicit_categorical`` names numeric columns that are really codes (e.g. an industry code)
    so they get one-hot encoded instead of standardized.
    """
    listed = set(explicit_categorical or ())
    unknown = sorted(listed - set(features.columns))
    if unknown:
        raise DatasetConfigError(f"categorical columns {unknown} are not in the table")
    numeric, categorical = [], []
    for column in features.columns:
        is_number = pd.api.types.is_numeric_dtype(features[column])
        (numeric if is_number and column not in listed else categorical).append(str(column))
    return ColumnRoles(tuple(numeric), tuple(categorical))


@dataclass(frozen=True, eq=False)
class FeatureEncoder:
    """Imputation, scaling and one-hot statistics learned from the training split."""

    numeric_columns: tuple[str, ...]
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    categorical_columns: tuple[str, ...]
    fill_levels: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    has_other: tuple[bool, ...]

    @classmethod
    def fit(cls, train: pd.DataFrame, roles: ColumnRoles, max_categories: int) -> FeatureEncoder:
        """Learn every statistic from ``train`` (the training split) and nothing else."""
        if max_categories < 2:
            raise DatasetConfigError(f"max_categories must be >= 2, got {max_categories}")
        numeric = _numeric_values(train, roles.numeric)
        # A column with no observed training value is filled with 0 (its mean after scaling).
        medians = np.zeros(numeric.shape[1])
        observed = ~np.isnan(numeric).all(axis=0)
        if observed.any():
            medians[observed] = np.nanmedian(numeric[:, observed], axis=0)
        filled = np.where(np.isnan(numeric), medians, numeric)
        means = filled.mean(axis=0) if len(filled) else np.zeros(len(roles.numeric))
        stds = filled.std(axis=0) if len(filled) else np.ones(len(roles.numeric))
        scales = np.where(stds > 0, stds, 1.0)

        fill_levels, levels, has_other = [], [], []
        for column in roles.categorical:
            values = _categorical_values(train[column])
            counts = values.value_counts()
            fill = _most_frequent(counts) if len(counts) else MISSING_LEVEL
            counts = values.fillna(fill).value_counts()
            ranked = _rank_levels(counts)
            cut = len(ranked) > max_categories
            kept = ranked[: max_categories - 1] if cut else ranked
            fill_levels.append(fill)
            levels.append(tuple(sorted(kept)))
            has_other.append(cut)
        return cls(
            numeric_columns=roles.numeric,
            medians=medians,
            means=means,
            scales=scales,
            categorical_columns=roles.categorical,
            fill_levels=tuple(fill_levels),
            levels=tuple(levels),
            has_other=tuple(has_other),
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Output column names: numeric names, then ``column=level`` and ``column=other``."""
        names = list(self.numeric_columns)
        for column, levels, other in zip(
            self.categorical_columns, self.levels, self.has_other, strict=True
        ):
            names.extend(f"{column}={level}" for level in levels)
            if other:
                names.append(f"{column}={OTHER_LEVEL}")
        return tuple(names)

    @property
    def n_features(self) -> int:
        return len(self.numeric_columns) + sum(
            len(levels) + other for levels, other in zip(self.levels, self.has_other, strict=True)
        )

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode any split with the training statistics (float32, one row per frame row).

        Levels unseen in training go to the ``other`` column when the column has one, else the
        row's one-hot block for that column is all zeros.
        """
        n_rows = len(frame)
        out = np.zeros((n_rows, self.n_features), dtype=np.float32)
        numeric = _numeric_values(frame, self.numeric_columns)
        numeric = np.where(np.isnan(numeric), self.medians, numeric)
        out[:, : len(self.numeric_columns)] = (numeric - self.means) / self.scales
        offset = len(self.numeric_columns)
        # Flat positions of each row's first column: 1-D fancy indexing is ~30x faster than
        # the 2-D form on large tables.
        row_starts = np.arange(n_rows, dtype=np.int64) * out.shape[1]
        flat = out.reshape(-1)
        for column, fill, levels, other in zip(
            self.categorical_columns, self.fill_levels, self.levels, self.has_other, strict=True
        ):
            codes = _positions_in(_categorical_values(frame[column]).fillna(fill), levels)
            if other:
                codes = np.where(codes >= 0, codes, len(levels))
            known = codes >= 0
            flat[row_starts[known] + offset + codes[known]] = 1.0
            offset += len(levels) + other
        return out


@dataclass(frozen=True, eq=False)
class TargetEncoder:
    """One-hot class encoding, or standardization of a regression target (with its inverse)."""

    task: str
    classes: tuple[Any, ...] = ()
    mean: float = 0.0
    scale: float = 1.0

    @classmethod
    def fit(cls, task: str, target: pd.Series) -> TargetEncoder:
        """Regression: mean and scale of ``target`` (pass the training split's targets).

        Classification: the sorted class vocabulary of ``target``. ``prepare_frame`` passes
        the whole cleaned label column here: the vocabulary is schema rather than a fitted
        statistic, and reading it from all rows keeps ``n_classes`` fixed across seeds.
        """
        if task == "regression":
            values = _target_numbers(target)
            std = float(values.std()) if len(values) else 1.0
            return cls(task, mean=float(values.mean()), scale=std if std > 0 else 1.0)
        classes = _sorted_classes(target)
        if len(classes) > MAX_CLASSES:
            column = f"target column {target.name!r}" if target.name is not None else "the target"
            raise DatasetConfigError(
                f"task {task!r} but {column} has {len(classes)} distinct values, more than the "
                f"{MAX_CLASSES} classes a classification target may have (MAX_CLASSES): it looks "
                "continuous. Set dataset.task=regression, or bin the target into classes first."
            )
        if task == "binary" and len(classes) != 2:
            raise DatasetConfigError(f"task 'binary' needs 2 classes, found {len(classes)}")
        if task == "multiclass" and len(classes) < 3:
            raise DatasetConfigError(f"task 'multiclass' needs >= 3 classes, found {len(classes)}")
        return cls(task, classes=classes)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(_label_name(c) for c in self.classes)

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "regression" else len(self.classes)

    def class_codes(self, labels: pd.Series) -> np.ndarray:
        """Integer class index per row (``classes`` order); unknown labels raise."""
        codes = _positions_in(_class_values(labels), self.classes)
        if (codes < 0).any():
            unknown = sorted({_label_name(v) for v in labels[codes < 0]})[:5]
            raise DatasetConfigError(
                f"labels {unknown} are not among the classes {self.class_names}"
            )
        return codes

    def transform(self, target: pd.Series) -> np.ndarray:
        """float32 targets: (n, n_classes) one-hot rows, or (n, 1) standardized values."""
        if self.task == "regression":
            values = (_target_numbers(target) - self.mean) / self.scale
            return values.reshape(-1, 1).astype(np.float32)
        return np.eye(len(self.classes), dtype=np.float32)[self.class_codes(target)]

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        """Map standardized regression outputs back to the target's original units (float64)."""
        if self.task != "regression":
            raise TypeError(
                f"inverse_transform is for regression targets; this task is {self.task}"
            )
        return np.asarray(y, dtype=np.float64) * self.scale + self.mean


def _numeric_values(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    if not columns:
        return np.empty((len(frame), 0), dtype=np.float64)
    return frame.loc[:, list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)


def _categorical_values(series: pd.Series) -> pd.Series:
    """Levels as strings (integer codes included) with missing values kept as <NA>."""
    return series.astype("string")


def _positions_in(values: pd.Series, levels: Sequence[Any]) -> np.ndarray:
    """Index of each value in ``levels``; -1 for values not in it and for missing values."""
    value_codes, uniques = pd.factorize(values, use_na_sentinel=True)
    position = {level: i for i, level in enumerate(levels)}
    # The extra -1 at the end serves factorize's NA code (-1).
    lookup = np.array([position.get(u, -1) for u in uniques] + [-1], dtype=np.int64)
    return lookup[value_codes]


def _rank_levels(counts: pd.Series) -> list[str]:
    """Levels by decreasing count, ties broken alphabetically (so the order is deterministic)."""
    return sorted(counts.index, key=lambda level: (-int(counts[level]), level))


def _most_frequent(counts: pd.Series) -> str:
    return _rank_levels(counts)[0]


def _target_numbers(target: pd.Series) -> np.ndarray:
    return pd.to_numeric(target, errors="raise").to_numpy(dtype=np.float64)


def _class_values(labels: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        return labels
    return labels.astype(str)


def _sorted_classes(labels: pd.Series) -> tuple[Any, ...]:
    uniques = pd.unique(_class_values(labels.dropna()))
    return tuple(sorted(v.item() if isinstance(v, np.generic) else v for v in uniques))


def _label_name(label: Any) -> str:
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)
