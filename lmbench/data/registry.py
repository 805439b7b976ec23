"""The dataset registry: conf/dataset/*.yaml are the single source of truth.

Each YAML file describes one public tabular dataset that ships inside an installed package.
This module only finds, reads and validates those files; it holds no dataset metadata itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lmbench.data.errors import DatasetConfigError, UnknownDatasetError
from lmbench.paths import CONF_DIR

#: conf/dataset/ inside the package (the Hydra config group of the same name).
DATASET_CONFIG_DIR = CONF_DIR / "dataset"

TASKS = ("binary", "multiclass", "regression")
CLASSIFICATION_TASKS = ("binary", "multiclass")
_REQUIRED_KEYS = ("name", "source", "citation", "task", "target", "approx_rows")
_OPTIONAL_KEYS = ("drop", "categorical", "max_categories")
DEFAULT_MAX_CATEGORIES = 20


@dataclass(frozen=True)
class SourceSpec:
    """Where the raw table lives: a source package, an item key, and loader options."""

    package: str
    key: str
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, name: str, default: Any = None) -> Any:
        """One loader option (e.g. ``columns`` for header-less CSV files)."""
        return dict(self.options).get(name, default)


@dataclass(frozen=True)
class DatasetSpec:
    """A validated dataset config (hashable, so raw loads can be cached by it)."""

    name: str
    source: SourceSpec
    citation: str
    task: str
    target: str
    drop: tuple[str, ...]
    categorical: tuple[str, ...] | None
    max_categories: int
    approx_rows: int

    @property
    def is_classification(self) -> bool:
        return self.task in CLASSIFICATION_TASKS

    @classmethod
    def from_config(
        cls, cfg: Mapping[str, Any] | DictConfig, origin: str = "<config>"
    ) -> DatasetSpec:
        """Validate a dataset config (a YAML's content, a dict or Hydra's ``cfg.dataset``)."""
        data = _to_plain_dict(cfg, origin)
        missing = [key for key in _REQUIRED_KEYS if data.get(key) in (None, "")]
        if missing:
            raise DatasetConfigError(f"{origin}: missing required key(s) {missing}")
        unknown = sorted(set(data) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
        if unknown:
            raise DatasetConfigError(f"{origin}: unknown key(s) {unknown}")
        name = str(data["name"])
        task = str(data["task"])
        if task not in TASKS:
            raise DatasetConfigError(f"{origin}: task must be one of {TASKS}, got {task!r}")
        source = data["source"]
        if not isinstance(source, Mapping) or not source.get("package") or not source.get("key"):
            raise DatasetConfigError(f"{origin}: source needs 'package' and 'key', got {source!r}")
        options = tuple(
            sorted((str(k), _freeze(v)) for k, v in source.items() if k not in ("package", "key"))
        )
        max_categories = data.get("max_categories")
        max_categories = DEFAULT_MAX_CATEGORIES if max_categories is None else int(max_categories)
        if max_categories < 2:
            raise DatasetConfigError(f"{origin}: max_categories must be >= 2, got {max_categories}")
        categorical = data.get("categorical")
        return cls(
            name=name,
            source=SourceSpec(str(source["package"]), str(source["key"]), options),
            citation=str(data["citation"]),
            task=task,
            target=str(data["target"]),
            drop=tuple(str(c) for c in (data.get("drop") or ())),
            categorical=None if categorical is None else tuple(str(c) for c in categorical),
            max_categories=max_categories,
            approx_rows=int(data["approx_rows"]),
        )


def list_datasets(config_dir: Path | str | None = None) -> list[str]:
    """Names of all registered datasets (the stems of conf/dataset/*.yaml), sorted."""
    directory = Path(config_dir) if config_dir is not None else DATASET_CONFIG_DIR
    return sorted(path.stem for path in directory.glob("*.yaml"))


def load_dataset_config(name: str, config_dir: Path | str | None = None) -> DictConfig:
    """Read conf/dataset/<name>.yaml; unknown names raise with the list of known ones."""
    directory = Path(config_dir) if config_dir is not None else DATASET_CONFIG_DIR
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(list_datasets(directory)) or "none"
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}: no config {path}. Registered datasets: {known}"
        )
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise DatasetConfigError(f"{path}: expected a mapping at the top level")
    if cfg.get("name") != name:
        raise DatasetConfigError(f"{path}: 'name' is {cfg.get('name')!r}, expected {name!r}")
    return cfg


def resolve_spec(name_or_cfg: str | Mapping[str, Any] | DictConfig) -> DatasetSpec:
    """A DatasetSpec from a registered name, a DictConfig or a plain dict."""
    if isinstance(name_or_cfg, str):
        cfg = load_dataset_config(name_or_cfg)
        return DatasetSpec.from_config(cfg, origin=str(DATASET_CONFIG_DIR / f"{name_or_cfg}.yaml"))
    return DatasetSpec.from_config(name_or_cfg)


def _to_plain_dict(cfg: Mapping[str, Any] | DictConfig, origin: str) -> dict[str, Any]:
    if isinstance(cfg, DictConfig):
        container = OmegaConf.to_container(cfg, resolve=True)
    elif isinstance(cfg, Mapping):
        container = dict(cfg)
    else:
        raise DatasetConfigError(f"{origin}: expected a mapping, got {type(cfg).__name__}")
    assert isinstance(container, dict)
    return container


def _freeze(value: Any) -> Any:
    """Lists become tuples so that a spec stays hashable (for the raw-load cache)."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    return value
