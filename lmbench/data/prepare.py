"""One entry point from a dataset name (or config) and a seed to float32 train/val/test arrays."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from lmbench.data.errors import DatasetConfigError
from lmbench.data.preprocess import FeatureEncoder, TargetEncoder, infer_column_roles
from lmbench.data.registry import DatasetSpec, resolve_spec
from lmbench.data.sources import load_raw_frame
from lmbench.data.splits import check_fractions, content_hash, split_indices, subsample_indices

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class PreparedDataset:
    """A dataset ready for training: float32 arrays per split plus what produced them.

    ``y_*`` are one-hot rows for classification (two columns for binary tasks) and
    standardized (n, 1) columns for regression; ``inverse_transform_target`` maps regression
    outputs back to original units, in which metrics are reported. ``hashes`` holds a sha256
    per split (inputs and targets); ``hash`` covers all three splits.
    """

    name: str
    task: str
    seed: int
    val_fraction: float
    test_fraction: float
    max_rows: int | None
    max_train_rows: int | None
    max_eval_rows: int | None
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    hashes: Mapping[str, str]
    hash: str
    row_indices: Mapping[str, np.ndarray]
    features: FeatureEncoder
    target: TargetEncoder

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.y_train.shape[1]

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if which not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {SPLIT_NAMES}, got {which!r}")
        return getattr(self, f"x_{which}"), getattr(self, f"y_{which}")

    def inverse_transform_target(self, y: np.ndarray) -> np.ndarray:
        """Regression outputs (standardized) back in the target's original units."""
        return self.target.inverse_transform(y)


def prepare_dataset(
    name_or_cfg: str | Mapping[str, Any] | DictConfig,
    seed: int = 0,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    max_rows: int | None = None,
    max_train_rows: int | None = None,
    max_eval_rows: int | None = None,
) -> PreparedDataset:
    """Load, clean, (optionally) subsample, split and encode a registered dataset.

    ``name_or_cfg`` is a name from conf/dataset/ or a mapping with the same keys (e.g. Hydra's
    ``cfg.dataset``). ``max_rows`` subsamples the table before splitting; ``max_train_rows``
    truncates the training split after splitting (as Grinsztajn et al. 2022 truncate training
    sets) and ``max_eval_rows`` the validation and test splits each, so capped training does
    not also shrink the data the methods are scored on. Every subsample is stratified for
    classification and seeded by ``seed`` (default 0, the harness's default ``seed``). The
    result depends only on the config, the seed, the fractions and the caps; raw tables are
    cached per process.
    """
    spec = resolve_spec(name_or_cfg)
    return prepare_frame(
        load_raw_frame(spec),
        spec,
        seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        max_rows=max_rows,
        max_train_rows=max_train_rows,
        max_eval_rows=max_eval_rows,
    )


def prepare_frame(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    seed: int,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    max_rows: int | None = None,
    max_train_rows: int | None = None,
    max_eval_rows: int | None = None,
) -> PreparedDataset:
    """``prepare_dataset`` on an already loaded raw table (also the seam used by tests)."""
    check_fractions(val_fraction, test_fraction)
    table = clean_frame(frame, spec)
    features = table.drop(columns=[spec.target])
    labels = table[spec.target]
    try:
        roles = infer_column_roles(features, spec.categorical)
        # The class vocabulary is schema, read from every row, so n_classes is the same for
        # every seed and subsample; regression statistics are fitted on train further down.
        classes = TargetEncoder.fit(spec.task, labels) if spec.is_classification else None
        strata = classes.class_codes(labels) if classes is not None else None
    except DatasetConfigError as err:
        raise DatasetConfigError(f"Dataset {spec.name!r}: {err}") from err

    rows = np.arange(len(table))
    if max_rows is not None:
        rows = subsample_indices(len(table), max_rows, seed, strata=strata)
    parts = split_indices(
        len(rows),
        seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        strata=None if strata is None else strata[rows],
    )
    row_indices = {name: rows[idx] for name, idx in parts.as_dict().items()}
    caps = {"train": max_train_rows, "val": max_eval_rows, "test": max_eval_rows}
    for stream, (name, cap) in enumerate(caps.items(), start=1):
        if cap is not None and cap < len(row_indices[name]):
            split_rows = row_indices[name]
            kept = subsample_indices(
                len(split_rows),
                cap,
                seed + 7919 * stream,
                strata=None if strata is None else strata[split_rows],
            )
            row_indices[name] = split_rows[np.sort(kept)]

    split_features = {name: features.iloc[idx] for name, idx in row_indices.items()}
    split_labels = {name: labels.iloc[idx] for name, idx in row_indices.items()}
    feature_encoder = FeatureEncoder.fit(split_features["train"], roles, spec.max_categories)
    target_encoder = classes or TargetEncoder.fit(spec.task, split_labels["train"])

    arrays: dict[str, np.ndarray] = {}
    hashes: dict[str, str] = {}
    for name in SPLIT_NAMES:
        arrays[f"x_{name}"] = feature_encoder.transform(split_features[name])
        arrays[f"y_{name}"] = target_encoder.transform(split_labels[name])
        hashes[name] = content_hash((arrays[f"x_{name}"], arrays[f"y_{name}"]))
    overall = hashlib.sha256("|".join(f"{n}:{hashes[n]}" for n in SPLIT_NAMES).encode())

    return PreparedDataset(
        name=spec.name,
        task=spec.task,
        seed=int(seed),
        val_fraction=float(val_fraction),
        test_fraction=float(test_fraction),
        max_rows=max_rows,
        max_train_rows=max_train_rows,
        max_eval_rows=max_eval_rows,
        n_classes=None if spec.task == "regression" else len(target_encoder.classes),
        feature_names=feature_encoder.feature_names,
        target_names=target_encoder.class_names if spec.is_classification else (spec.target,),
        hashes=MappingProxyType(hashes),
        hash=overall.hexdigest(),
        row_indices=MappingProxyType(row_indices),
        features=feature_encoder,
        target=target_encoder,
        **arrays,
    )


def clean_frame(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Drop the configured columns and the rows without a target; index becomes 0..n-1."""
    where = f"Dataset {spec.name!r}"
    missing = [c for c in (*spec.drop, spec.target) if c not in frame.columns]
    if missing:
        raise DatasetConfigError(
            f"{where}: column(s) {missing} not in the table; columns are {list(frame.columns)}"
        )
    table = frame.drop(columns=list(spec.drop))
    table = table[table[spec.target].notna()].reset_index(drop=True)
    if table.empty:
        raise DatasetConfigError(f"{where}: no rows with a target {spec.target!r}")
    if table.shape[1] < 2:
        raise DatasetConfigError(f"{where}: no feature columns left after 'drop'")
    return table
