"""Credentials never reach the store; a broken store file is named with what to do."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lmbench.tracking import RunTracker, TrackingStoreError, prepare_store, redact, redact_text
from lmbench.tracking.store import _forget_prepared


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:secret@host:5000", "http://***@host:5000"),
        ("https://secret@host/api", "https://***@host/api"),
        ("https://host/x?token=secret&a=1", "https://host/x?token=***&a=1"),
        ("s3://b/k?X-Amz-Signature=secret", "s3://b/k?X-Amz-Signature=***"),
        ("postgresql://u:secret@db/m?sslmode=require&password=secret",
         "postgresql://***@db/m?sslmode=require&password=***"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("mail me at a@b.org", "mail me at a@b.org"),
    ],
)
def test_redact_text_masks_user_info_and_token_parameters(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_masks_secret_named_keys_in_nested_configs() -> None:
    config = {"tracking": {"tracking_uri": "http://u:secret@h", "api_key": "secret"},
              "trainer": {"max_tokens": 3}, "list": ["https://h/?access_token=secret"]}
    assert "secret" not in repr(redact(config))
    assert redact(config)["trainer"] == {"max_tokens": 3}


def _everything_logged(client: MlflowClient, run_id: str, tmp: Path) -> str:
    run = client.get_run(run_id)
    texts = [repr(run.data.params), repr(run.data.tags), run.info.run_name or ""]
    folder = Path(client.download_artifacts(run_id, "", str(tmp)))
    texts += [p.read_text() for p in folder.rglob("*") if p.is_file()]
    return "\n".join(texts)


def test_a_run_logs_no_credentials_in_params_tags_artifacts_or_messages(
    store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri, experiment_id, _ = store
    config = {"seed": 0, "tracking": {"enabled": True,
                                      "tracking_uri": "http://user:secret@host:5000",
                                      "experiment_name": "lmbench"},
              "tags": {"source": "https://host/data.csv?token=secret"}}
    caplog.set_level(logging.INFO, logger="lmbench")
    with pytest.raises(ConnectionError), RunTracker(
        "creds", tracking_uri=uri, experiment_id=experiment_id,
        tags={"origin": "http://user:secret@host:5000"},
    ) as tracker:
        params = tracker.log_config(config)
        tracker.set_tags({"server": config["tracking"]["tracking_uri"]})
        tracker.log_dict(config, "copy.json")
        raise ConnectionError("cannot reach http://user:secret@host:5000/api")
    assert params["tracking.tracking_uri"] == "http://***@host:5000"
    client = MlflowClient(tracking_uri=uri)
    logged = _everything_logged(client, tracker.run_id, tmp_path)
    assert "http://***@host:5000" in logged
    assert {"config.yaml", "error.txt", "copy.json"} <= {
        a.path for a in client.list_artifacts(tracker.run_id)
    }
    assert "secret" not in logged
    assert "secret" not in caplog.text
    assert client.get_run(tracker.run_id).info.status == "FAILED"


@pytest.mark.parametrize("content", ["text", "malformed"])
def test_a_broken_store_file_is_named_with_what_to_do(tmp_path: Path, content: str) -> None:
    db = tmp_path / "mlflow.db"
    if content == "text":
        db.write_text("not a database at all\n" * 10)
    else:
        connection = sqlite3.connect(db)
        connection.execute("create table t(a)")
        connection.executemany("insert into t values (?)", [("x" * 1000,)] * 100)
        connection.commit()
        connection.close()
        data = bytearray(db.read_bytes())
        data[100:4000] = b"\xff" * 3900
        db.write_bytes(bytes(data))
    _forget_prepared()
    with pytest.raises(TrackingStoreError) as info:
        prepare_store(f"sqlite:///{db}", "broken")
    message = str(info.value)
    assert str(db) in message and "Move it away" in message
    assert "tracking.tracking_uri" in message
    assert info.value.__cause__ is None
