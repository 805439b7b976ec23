"""Fixtures for the tracking tests: real SQLite stores in temporary folders, never the repo."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmbench.tracking import prepare_store

REPO_ROOT = Path(__file__).resolve().parents[3]
_STRAY = ("mlflow.db", "mlruns")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No inherited MLFLOW_TRACKING_URI, no leftover Hydra job state and a scratch cwd, so a
    default store lands in tmp."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    if "hydra" in sys.modules:  # an earlier in-process Hydra app leaves its runtime.cwd set
        from hydra.core.hydra_config import HydraConfig

        monkeypatch.setattr(HydraConfig.instance(), "cfg", None)


@pytest.fixture(autouse=True, scope="module")
def _repo_stays_clean() -> Iterator[None]:
    """Fail the module if it left an MLflow store or artifact folder in the repository root."""
    before = {name for name in _STRAY if (REPO_ROOT / name).exists()}
    yield
    created = {name for name in _STRAY if (REPO_ROOT / name).exists()} - before
    assert not created, f"tracking tests wrote {sorted(created)} into {REPO_ROOT}"


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """One prepared SQLite store for these tests (migrations cost 3-5 s): (uri, exp id, dir).

    Shared safely: every test logs its own runs or experiments and reads back only those.
    """
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    experiment_id = prepare_store(uri, "unit")
    return uri, experiment_id, folder
