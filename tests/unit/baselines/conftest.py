"""Fixtures for the baseline tests, exposed only as fixtures (the suite runs with
``--import-mode=importlib``, so test modules cannot import helpers from this folder).

Splits in the data contract's format (float32 features, one-hot or standardised ``(n, 1)``
targets), the shipped trainer configs, a seed-style MLP, and a split that reveals test leakage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

CONF_DIR = Path(__file__).resolve().parents[3] / "conf" / "trainer"

# The setting that pins each library's threads, as named in its trainer config.
THREAD_KEYS = {
    "xgboost": "n_jobs", "catboost": "thread_count", "adam": "n_threads", "tlm": "n_threads",
    "lm_tuned": "n_threads",
}


@dataclass(frozen=True)
class Split:
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    inverse_target: Callable[[np.ndarray], np.ndarray] | None = None

    def train_val(self) -> dict[str, np.ndarray]:
        return {
            "x_train": self.x_train,
            "y_train": self.y_train,
            "x_val": self.x_val,
            "y_val": self.y_val,
        }


def contract_split(x: np.ndarray, y: np.ndarray, task: str) -> Split:
    """60/20/20 split, features standardised on train, targets one-hot or standardised."""
    stratify = None if task == "regression" else y
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=stratify
    )
    stratify = None if task == "regression" else y_rest
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.25, random_state=0, stratify=stratify
    )
    scaler = StandardScaler().fit(x_train)

    def features(a: np.ndarray) -> np.ndarray:
        return scaler.transform(a).astype(np.float32)

    inverse = None
    if task == "regression":
        mean, std = float(y_train.mean()), float(y_train.std())

        def targets(a: np.ndarray) -> np.ndarray:
            return ((a - mean) / std).reshape(-1, 1).astype(np.float32)

        def inverse(a: np.ndarray) -> np.ndarray:
            return a * std + mean
    else:
        eye = np.eye(int(y.max()) + 1, dtype=np.float32)

        def targets(a: np.ndarray) -> np.ndarray:
            return eye[a]

    return Split(
        task,
        features(x_train),
        targets(y_train),
        features(x_val),
        targets(y_val),
        features(x_test),
        targets(y_test),
        inverse,
    )


def small_splits() -> dict[str, Split]:
    """breast_cancer (binary, 569 rows), wine (3 classes, 178 rows), diabetes (regression, 442)."""
    return {
        "binary": contract_split(*load_breast_cancer(return_X_y=True), "binary"),
        "multiclass": contract_split(*load_wine(return_X_y=True), "multiclass"),
        "regression": contract_split(*load_diabetes(return_X_y=True), "regression"),
    }


def load_trainer_cfg(name: str, budget: str = "quick", threads: int | None = 1) -> dict[str, Any]:
    """A shipped trainer config (``lm_tuned`` for LM) with ``budget`` selected.

    Tests run single-threaded (``threads=1``) unless they check thread pinning themselves: on this
    shared 2-core VM, two OpenMP threads on tiny problems were 3-10x slower and far noisier.
    """
    with (CONF_DIR / f"{name}.yaml").open() as handle:
        cfg = yaml.safe_load(handle)
    cfg["budget"] = budget
    if threads is not None:
        cfg["params"][THREAD_KEYS[name]] = threads
    return cfg


def mlp_factory(n_inputs: int, n_outputs: int, task: str, hidden: int = 16):
    """A seed-style MLP: Linear-Tanh-Linear, with a Softmax head for classification."""

    def build() -> torch.nn.Module:
        layers: list[torch.nn.Module] = [
            torch.nn.Linear(n_inputs, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, n_outputs),
        ]
        if task != "regression":
            layers.append(torch.nn.Softmax(dim=1))
        return torch.nn.Sequential(*layers)

    return build


LEAK_FEATURES = 6


def _rule_split(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, LEAK_FEATURES)).astype(np.float32)
    labels = (x[:, 0] * x[:, 1] + 0.5 * x[:, 2] > 0).astype(int)
    flip = rng.random(n) < noise
    labels[flip] = 1 - labels[flip]
    return x, labels


def leak_revealing_split(*, flip_test: bool) -> dict[str, np.ndarray]:
    """Binary train/val (identical for both variants) from one learnable rule; with
    ``flip_test`` the test labels are flipped, so selecting on test would reverse the ranking."""
    rng = np.random.default_rng(0)
    eye = np.eye(2, dtype=np.float32)
    x_train, l_train = _rule_split(rng, 300, noise=0.05)
    x_val, l_val = _rule_split(rng, 150, noise=0.05)
    x_test, l_test = _rule_split(rng, 200, noise=0.0)
    if flip_test:
        l_test = 1 - l_test
    return {
        "x_train": x_train,
        "y_train": eye[l_train],
        "x_val": x_val,
        "y_val": eye[l_val],
        "x_test": x_test,
        "y_test": eye[l_test],
    }


@pytest.fixture(scope="session")
def splits() -> dict[str, Split]:
    """breast_cancer (binary), wine (multiclass), diabetes (regression) in the data contract."""
    return small_splits()


@pytest.fixture
def quick_cfg() -> Callable[..., dict[str, Any]]:
    """``load_trainer_cfg``: a shipped config with ``budget: quick``, single-threaded by default."""
    return load_trainer_cfg


@pytest.fixture
def quick_tuning():
    """A small equal budget for every method: the default configuration plus one sampled."""
    from lmbench.baselines import TuningSettings

    return TuningSettings(n_samples=1)


@pytest.fixture
def conf_dir() -> Path:
    """``conf/trainer`` of this checkout."""
    return CONF_DIR


@pytest.fixture
def factory_for() -> Callable[[Split], Callable[[], torch.nn.Module]]:
    """A seed-style MLP factory sized for a split."""

    def make(split: Split) -> Callable[[], torch.nn.Module]:
        return mlp_factory(split.x_train.shape[1], split.y_train.shape[1], split.task)

    return make


@pytest.fixture
def leak_split() -> Callable[..., dict[str, np.ndarray]]:
    """``leak_revealing_split(flip_test=...)``."""
    return leak_revealing_split
