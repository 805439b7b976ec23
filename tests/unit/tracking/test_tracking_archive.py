"""Carrying an embedded store between sittings: a real MLflow store packed, restored and read."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from lmbench.tracking.archive import main, restore_store, save_store
from lmbench.tracking.store import get_client


def test_a_saved_store_restores_with_its_runs(store, tmp_path: Path) -> None:
    uri, experiment_id, folder = store
    client = get_client(uri)
    run = client.create_run(experiment_id, run_name="carried")
    client.log_metric(run.info.run_id, "test_rmse", 1.25)
    client.set_terminated(run.info.run_id, "FINISHED")

    archive = tmp_path / "studies" / "study.db.gz"
    assert save_store(folder / "mlflow.db", archive) == archive.stat().st_size
    restored = tmp_path / "fresh" / "study.db"
    assert restore_store(archive, restored)

    back = get_client(f"sqlite:///{restored}").get_run(run.info.run_id)
    assert (back.info.status, back.data.metrics["test_rmse"]) == ("FINISHED", 1.25)


def test_restore_never_overwrites_an_existing_store(tmp_path: Path) -> None:
    database = tmp_path / "study.db"
    database.write_bytes(b"newer")
    archive = tmp_path / "old.db.gz"
    archive.write_bytes(gzip.compress(b"older"))
    assert not restore_store(archive, database)
    assert database.read_bytes() == b"newer"


def test_bad_inputs_name_the_file_and_leave_nothing_behind(tmp_path: Path, capsys) -> None:
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("not a database")
    with pytest.raises(ValueError, match="notes.db is not an SQLite database"):
        save_store(not_sqlite, tmp_path / "a.db.gz")
    assert not (tmp_path / "a.db.gz").exists()

    packed_text = tmp_path / "text.db.gz"
    packed_text.write_bytes(gzip.compress(b"not a database either"))
    target = tmp_path / "restored.db"
    with pytest.raises(ValueError, match="not an SQLite database"):
        restore_store(packed_text, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db", "text.db.gz"]

    assert main(["restore", str(tmp_path / "missing.db.gz"), str(tmp_path / "x.db")]) == 2
    assert "no store archive at" in capsys.readouterr().err
