"""Packaged public tabular datasets: registry, preprocessing, splits and ``TableLoader``."""

from lmbench.data.errors import (
    DatasetConfigError,
    DatasetError,
    DatasetPackageMissingError,
    UnknownDatasetError,
)
from lmbench.data.prepare import PreparedDataset, prepare_dataset, prepare_frame
from lmbench.data.registry import DatasetSpec, list_datasets, load_dataset_config
from lmbench.data.table_loader import TableLoader

__all__ = [
    "DatasetConfigError",
    "DatasetError",
    "DatasetPackageMissingError",
    "DatasetSpec",
    "PreparedDataset",
    "TableLoader",
    "UnknownDatasetError",
    "list_datasets",
    "load_dataset_config",
    "prepare_dataset",
    "prepare_frame",
]
