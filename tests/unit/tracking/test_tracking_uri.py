"""Tracking URI resolution: explicit > MLFLOW_TRACKING_URI > sqlite:///<launch dir>/mlflow.db."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from lmbench.tracking import resolve_tracking_uri
from lmbench.tracking.uri import (
    default_artifact_location,
    launch_dir,
    sqlite_path,
    store_lock,
    store_lock_path,
)


def test_default_is_sqlite_in_launch_dir(tmp_path: Path) -> None:
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert resolve_tracking_uri(None) == resolve_tracking_uri("")


def test_env_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5000"


def test_explicit_beats_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    uri = f"sqlite:///{tmp_path}/explicit.db"
    assert resolve_tracking_uri(uri) == uri


def test_relative_sqlite_made_absolute_against_launch_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sub = tmp_path / "launch"
    sub.mkdir()
    monkeypatch.chdir(sub)
    expected = f"sqlite:///{sub.resolve()}/stores/rel.db"
    assert resolve_tracking_uri("sqlite:///stores/rel.db") == expected
    assert resolve_tracking_uri("sqlite:///./stores/../stores/rel.db") == expected
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///stores/rel.db")
    assert resolve_tracking_uri() == expected


def test_explicit_launch_directory_and_query_string_kept(tmp_path: Path) -> None:
    got = resolve_tracking_uri("sqlite:///x.db?timeout=30", launch_directory=tmp_path / "a")
    assert got == f"sqlite:///{(tmp_path / 'a').resolve()}/x.db?timeout=30"


def test_bare_db_path_becomes_sqlite(tmp_path: Path) -> None:
    assert resolve_tracking_uri("runs.db") == f"sqlite:///{tmp_path.resolve()}/runs.db"


@pytest.mark.parametrize(
    "uri",
    ["http://tracking.example:5000", "https://x/y", "postgresql://u@h/db", "sqlite://"],
)
def test_other_uris_unchanged(uri: str) -> None:
    assert resolve_tracking_uri(uri) == uri


def test_launch_dir_prefers_hydra_runtime_cwd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hydra.core.hydra_config import HydraConfig

    original = tmp_path / "original"
    fake = types.SimpleNamespace(runtime=types.SimpleNamespace(cwd=str(original)))
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: fake))
    assert launch_dir() == original
    assert resolve_tracking_uri() == f"sqlite:///{original}/mlflow.db"


def test_artifact_location_next_to_db(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert sqlite_path(uri) == tmp_path / "mlflow.db"
    assert default_artifact_location(uri, "my exp/1") == str(tmp_path / "mlruns" / "my_exp_1")
    assert default_artifact_location("http://h:5000", "e") is None


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "https://h/x", "postgresql://u@h/db"])
def test_servers_get_no_sqlite_file_no_artifact_folder_and_no_lock(
    uri: str, tmp_path: Path
) -> None:
    assert sqlite_path(uri) is None
    assert default_artifact_location(uri, "e") is None
    assert store_lock_path(uri) is None
    with store_lock(uri):
        pass
    assert list(tmp_path.iterdir()) == []  # nothing written beside the launch directory
