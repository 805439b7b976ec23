"""Where the tracking store lives: URI resolution, the local SQLite layout, and its lock.

No MLflow import here: resolving a URI must be cheap and testable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

_log = logging.getLogger(__name__)

#: Environment variable MLflow itself reads; ours comes second after an explicit value.
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
#: File name of the embedded store inside the launch directory.
DEFAULT_DB_NAME = "mlflow.db"
#: Folder next to the SQLite file that holds artifacts.
ARTIFACTS_DIR_NAME = "mlruns"
#: Suffix of the store's lock file (``mlflow.db.lock`` beside ``mlflow.db``).
LOCK_SUFFIX = ".lock"
#: Suffix of the folder of per-configuration claim locks (``mlflow.db.claims`` beside it).
CLAIMS_SUFFIX = ".claims"

_SQLITE_PREFIX = "sqlite:///"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def launch_dir() -> Path:
    """The directory the program was launched from.

    Under Hydra this is ``hydra.runtime.cwd`` (correct even when ``hydra.job.chdir=true`` moved
    the job into its output folder); otherwise the current directory.
    """
    if "hydra" in sys.modules:
        try:
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.initialized():
                return Path(HydraConfig.get().runtime.cwd)
        except Exception:  # any Hydra state problem means "not under Hydra"
            pass
    return Path.cwd()


def _absolute_sqlite(uri: str, base: Path) -> str:
    """Rewrite ``sqlite:///relative.db`` as ``sqlite:////<base>/relative.db``; keep query args."""
    rest = uri[len(_SQLITE_PREFIX) :]
    path_part, q, query = rest.partition("?")
    if path_part in ("", ":memory:") or path_part.startswith("file:"):
        return uri
    path = Path(path_part).expanduser()
    if not path.is_absolute():
        path = base / path
    return f"{_SQLITE_PREFIX}{os.path.normpath(path)}{q}{query}"


def resolve_tracking_uri(
    tracking_uri: str | None = None,
    *,
    launch_directory: str | os.PathLike[str] | None = None,
) -> str:
    """Pick the tracking URI: explicit value > ``MLFLOW_TRACKING_URI`` > embedded SQLite default.

    ``None`` or an empty string means "not given". The default is
    ``sqlite:///<launch dir>/mlflow.db``. A relative SQLite path (from either source) is made
    absolute against the launch directory, so every worker of a sweep reaches the same file; a
    bare ``*.db`` path becomes a SQLite URI. Server URIs (``http://...``) and other schemes are
    returned unchanged.
    """
    base = Path(launch_directory) if launch_directory is not None else launch_dir()
    base = base.expanduser().resolve()
    chosen = (tracking_uri or "").strip() or os.environ.get(TRACKING_URI_ENV, "").strip()
    if not chosen:
        return f"{_SQLITE_PREFIX}{base / DEFAULT_DB_NAME}"
    if chosen.startswith(_SQLITE_PREFIX):
        return _absolute_sqlite(chosen, base)
    if not _SCHEME.match(chosen) and chosen.endswith((".db", ".sqlite", ".sqlite3")):
        path = Path(chosen).expanduser()
        return f"{_SQLITE_PREFIX}{os.path.normpath(path if path.is_absolute() else base / path)}"
    return chosen


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of an absolute ``sqlite:///`` URI, else ``None`` (server, memory, ...)."""
    if not tracking_uri.startswith(_SQLITE_PREFIX):
        return None
    path_part = tracking_uri[len(_SQLITE_PREFIX) :].partition("?")[0]
    if path_part in ("", ":memory:") or path_part.startswith("file:"):
        return None
    path = Path(path_part)
    return path if path.is_absolute() else None


def default_artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """Artifact folder for a new experiment: ``<db dir>/mlruns/<experiment slug>`` for SQLite.

    Fixed at creation so it does not depend on the creating process's working directory (MLflow's
    own default is ``./mlruns``). ``None`` for servers and other stores: they decide themselves.
    """
    db = sqlite_path(tracking_uri)
    if db is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", experiment_name).strip(".") or "experiment"
    return str(db.parent / ARTIFACTS_DIR_NAME / slug)


def store_lock_path(tracking_uri: str) -> Path | None:
    """The lock file of a local SQLite store (``<db>.lock`` beside it), else ``None``."""
    db = sqlite_path(tracking_uri)
    return None if db is None else db.with_name(db.name + LOCK_SUFFIX)


def claims_dir(tracking_uri: str) -> Path | None:
    """The folder of a local SQLite store's configuration claims (``<db>.claims`` beside it,
    ``lmbench.tracking.resume.claim_configuration``), else ``None``."""
    db = sqlite_path(tracking_uri)
    return None if db is None else db.with_name(db.name + CLAIMS_SUFFIX)


@contextlib.contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """Hold an exclusive lock while a local SQLite store is created or its experiment made.

    Two processes that create the same fresh store at once race in the schema migrations and a
    run is lost; a :class:`filelock.FileLock` on ``<db>.lock`` beside the store serialises them
    (the lock file stays, empty, after release). A no-op for non-SQLite stores; where the lock
    file cannot be created (a read-only folder) the store is opened without it.
    """
    lock_path = store_lock_path(tracking_uri)
    if lock_path is None:
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire()
    except OSError as exc:  # e.g. a read-only folder or a filesystem without locks
        _log.debug("store lock unavailable at %s: %s", lock_path, exc)
        yield
        return
    try:
        yield
    finally:
        lock.release()
