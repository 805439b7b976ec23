"""The MLflow store: one client per URI, and ``prepare_store`` to create store and experiment once.

MLflow is imported lazily (about 3 s) so that code paths with tracking off never pay for it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lmbench.tracking.redact import redact_text
from lmbench.tracking.uri import (
    default_artifact_location,
    resolve_tracking_uri,
    sqlite_path,
    store_lock,
)

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

_log = logging.getLogger(__name__)

_lock = threading.Lock()
_clients: dict[str, MlflowClient] = {}
# (resolved uri, experiment name) -> experiment id, for this process.
_prepared: dict[tuple[str, str], str] = {}

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: Connection attempts (and their timeout) before a tracking server counts as unreachable.
SERVER_PROBE_ATTEMPTS = 3
SERVER_PROBE_TIMEOUT_S = 5.0


class TrackingStoreError(RuntimeError):
    """The store cannot be used (a local file that is not SQLite or is corrupted, a tracking
    server that accepts no connection); the message names it and what to do."""


def _unusable(path: Path, detail: str) -> TrackingStoreError:
    return TrackingStoreError(
        f"the MLflow store {path} is not a usable SQLite database ({detail}). Move it away "
        f"(e.g. `mv {path} {path}.broken`) to start a fresh store there, or point "
        f"tracking.tracking_uri (or MLFLOW_TRACKING_URI) at another store."
    )


def check_sqlite_file(tracking_uri: str) -> None:
    """Refuse a local store file that exists but is not a SQLite database (checked by its
    header, before MLflow opens it); a missing or empty file is fine (MLflow creates it)."""
    path = sqlite_path(tracking_uri)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise _unusable(path, "the file does not start with the SQLite header")


def check_server_reachable(tracking_uri: str) -> None:
    """Refuse an ``http(s)://`` tracking server that accepts no connection, with a message that
    says what to do; MLflow itself would retry each request for minutes before failing.

    Only the TCP connection is tried (any HTTP answer, even an error, means the server is
    there); skipped for other schemes and when a proxy in the environment routes the host.
    """
    parts = urllib.parse.urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    host = parts.hostname
    if urllib.request.getproxies_environment() and not urllib.request.proxy_bypass(host):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TrackingStoreError(
            f"the tracking URI {redact_text(tracking_uri)} has a bad port ({exc}); "
            f"write it as http://HOST:PORT"
        ) from None
    failure: OSError | None = None
    for attempt in range(SERVER_PROBE_ATTEMPTS):
        if attempt:
            time.sleep(attempt)
        try:
            with socket.create_connection((host, port), timeout=SERVER_PROBE_TIMEOUT_S):
                return
        except OSError as exc:
            failure = exc
    raise TrackingStoreError(
        f"the MLflow tracking server {redact_text(tracking_uri)} does not answer "
        f"({host}:{port}: {failure}). Start it (`mlflow server --backend-store-uri ... "
        f"--host {host} --port {port}`) or point tracking.tracking_uri (or "
        f"MLFLOW_TRACKING_URI) at a running server."
    )


@contextlib.contextmanager
def store_errors(tracking_uri: str) -> Iterator[None]:
    """Turn a corrupted local store's database error into :class:`TrackingStoreError`
    (a busy/locked database is left as it is: that is not corruption)."""
    try:
        yield
    except Exception as exc:
        path = sqlite_path(tracking_uri)
        if path is None or not _is_database_error(exc) or "locked" in str(exc).lower():
            raise
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise _unusable(path, detail) from None


def _is_database_error(exc: BaseException) -> bool:
    try:
        from sqlalchemy.exc import DatabaseError
    except ImportError:  # pragma: no cover - sqlalchemy comes with mlflow
        return False
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # MLflow may wrap the error
        if isinstance(current, DatabaseError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def get_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` bound to ``tracking_uri`` (already resolved), cached per process.

    The first client of a local SQLite store opens it under :func:`store_lock`, because that is
    when MLflow runs schema migrations on a fresh file; a tracking server is first checked to
    accept connections (:func:`check_server_reachable`). SQLAlchemy's one-time "noload is
    deprecated" warning from inside MLflow's store module is silenced here.
    """
    with _lock:
        client = _clients.get(tracking_uri)
        if client is None:
            check_sqlite_file(tracking_uri)
            check_server_reachable(tracking_uri)
            with store_lock(tracking_uri), store_errors(tracking_uri), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*``noload`` loader strategy")
                from mlflow import MlflowClient

                client = MlflowClient(tracking_uri=tracking_uri)
            _clients[tracking_uri] = client
        return client


def prepare_store(tracking_uri: str | None, experiment_name: str) -> str:
    """Create the store and the experiment if missing; return the experiment id.

    Call once in the parent before parallel sweep workers start: creating a fresh SQLite store
    takes 3-5 s of migrations and concurrent creators lose runs. Idempotent: an existing
    experiment is reused, and losing a creation race to another process is handled. For a
    local SQLite store the experiment's artifacts go to ``<db dir>/mlruns/<name>``.
    ``tracking_uri`` is resolved with :func:`resolve_tracking_uri` (``None``: env or default).
    """
    if not experiment_name:
        raise ValueError("tracking.experiment_name must be a non-empty string")
    uri = resolve_tracking_uri(tracking_uri)
    key = (uri, experiment_name)
    cached = _prepared.get(key)
    if cached is not None:
        return cached
    client = get_client(uri)
    with store_lock(uri), store_errors(uri):
        experiment_id = _get_or_create_experiment(client, uri, experiment_name)
    _prepared[key] = experiment_id
    return experiment_id


def _get_or_create_experiment(client: MlflowClient, uri: str, name: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            experiment_id = client.create_experiment(
                name, artifact_location=default_artifact_location(uri, name)
            )
            _log.info("created MLflow experiment %r (id %s) in %s", name, experiment_id,
                      redact_text(uri))
            return str(experiment_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # Another process created it between our lookup and our create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise RuntimeError(
            f"MLflow experiment {name!r} (id {experiment.experiment_id}) in {redact_text(uri)} "
            f"is deleted; "
            f"restore it (`mlflow experiments restore --experiment-id "
            f"{experiment.experiment_id}`) or choose another tracking.experiment_name"
        )
    return str(experiment.experiment_id)


def _forget_prepared() -> None:
    """Drop this process's caches (tests use it to simulate a fresh process)."""
    with _lock:
        _prepared.clear()
        _clients.clear()


@contextlib.contextmanager
def process_tracking_uri(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's process-wide tracking URI at ``tracking_uri``, then restore it (for the
    fluent APIs that read only that URI: ``log_model``, ``search_runs``)."""
    import mlflow

    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None: back to the default


def search_runs(tracking_uri: str, experiment_ids: list[str]) -> pd.DataFrame:
    """``mlflow.search_runs`` of every run (every status) of the experiments in the store."""
    import mlflow

    with process_tracking_uri(tracking_uri), store_errors(tracking_uri):
        frame = mlflow.search_runs(experiment_ids, max_results=None)  # None: every page
    return frame  # type: ignore[return-value]  # a DataFrame (output_format="pandas")

