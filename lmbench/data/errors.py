"""Errors raised by the dataset registry, each naming the dataset and the fix."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class for every dataset registry error."""


class UnknownDatasetError(DatasetError, LookupError):
    """The dataset name has no config in conf/dataset/, or the source has no such item."""


class DatasetPackageMissingError(DatasetError, ImportError):
    """The package that ships the dataset's data is not installed."""


class DatasetConfigError(DatasetError, ValueError):
    """A dataset config is malformed (missing key, bad task, target not in the table...)."""
