"""The MLflow store: one client per URI, and ``prepare_store`` to create store and experiment once.

MLflow is imported lazily (about 3 s) so that code paths with tracking off never pay for it.
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import TYPE_CHECKING

from lmbench.tracking.uri import default_artifact_location, resolve_tracking_uri, store_lock

if TYPE_CHECKING:
    from mlflow import MlflowClient

_log = logging.getLogger(__name__)

_lock = threading.Lock()
_clients: dict[str, MlflowClient] = {}
# (resolved uri, experiment name) -> experiment id, for this process.
_prepared: dict[tuple[str, str], str] = {}


def get_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` bound to ``tracking_uri`` (already resolved), cached per process.

    The first client of a local SQLite store opens it under :func:`store_lock`, because that is
    when MLflow runs schema migrations on a fresh file. SQLAlchemy's one-time "noload is
    deprecated" warning from inside MLflow's store module is silenced here.
    """
    with _lock:
        client = _clients.get(tracking_uri)
        if client is None:
            with store_lock(tracking_uri), warnings.catch_warnings():
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
    with store_lock(uri):
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
            _log.info("created MLflow experiment %r (id %s) in %s", name, experiment_id, uri)
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
            f"MLflow experiment {name!r} (id {experiment.experiment_id}) in {uri} is deleted; "
            f"restore it (`mlflow experiments restore --experiment-id "
            f"{experiment.experiment_id}`) or choose another tracking.experiment_name"
        )
    return str(experiment.experiment_id)


def _forget_prepared() -> None:
    """Drop this process's caches (tests use it to simulate a fresh process)."""
    with _lock:
        _prepared.clear()
        _clients.clear()
