"""Resuming a study: the hash of a job's configuration, and the FINISHED run that already holds
the result of a configuration (so that re-running a study's command trains only what is
missing).

Every job run is tagged ``config_hash`` (:func:`config_hash`); before a job trains, the harness
asks :func:`find_finished_run` for a FINISHED run of the same experiment with that tag. Only
FINISHED counts: FAILED and KILLED runs, and runs left RUNNING by a process that died, are
trained again. The lookup is an ordinary MLflow search (a filter string), so it works the same
on the embedded SQLite store and on a tracking server.

Two sweeps into one store at once would both find no FINISHED run of a configuration and both
train it. So a job first claims its configuration (:func:`claim_configuration`): an exclusive
lock on ``<db>.claims/<experiment>-<config_hash>.lock`` beside a SQLite store, held while it
looks the configuration up and trains it. A second job of the same configuration waits for the
first, then finds its FINISHED run and skips (or trains, when the first failed). The lock is the
operating system's: it is released when its process ends, however it ends, so a killed job
leaves no stale claim. A tracking server has no such shared folder: there the claim is a no-op
and two sweeps of the same configurations started at once may each train one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from filelock import FileLock, Timeout

from lmbench.tracking.config import TrackingConfig
from lmbench.tracking.flatten import to_plain
from lmbench.tracking.redact import redact_text
from lmbench.tracking.schema import GROUPING_KINDS, TAG_CONFIG_HASH, TAG_KIND
from lmbench.tracking.store import get_client, store_errors
from lmbench.tracking.uri import claims_dir, resolve_tracking_uri

__all__ = [
    "HASH_IGNORED_KEYS", "FinishedRun", "claim_configuration", "config_hash", "find_finished_run",
]

_log = logging.getLogger(__name__)
_warned_unclaimed: set[str] = set()

#: Config keys (dotted paths) left out of the hash because they cannot change what a job
#: computes: where and how it is logged (``tracking``, ``tags``, ``progress``), Hydra's own
#: settings (``hydra``), the resume switch itself (``resume``), a scratch directory
#: (``trainer.temp_folder``) and a dataset's citation text.
HASH_IGNORED_KEYS: tuple[str, ...] = (
    "tracking", "tags", "progress", "hydra", "resume", "trainer.temp_folder", "dataset.citation",
)
HASH_LENGTH = 16
_HASH_PATTERN = re.compile(r"[0-9a-f]{16}")


def config_hash(config: Mapping[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of ``config`` as canonical JSON (keys sorted,
    no whitespace, integral floats written as integers so ``10`` and ``10.0`` agree), after
    dropping :data:`HASH_IGNORED_KEYS`.

    Two jobs with the same hash compute the same thing, so a FINISHED run with the hash holds
    the job's result. ``threads`` and ``device`` stay in the hash: a benchmark reports
    timings, which they change, and they change floating-point reduction order (a GPU run's
    numbers differ from a CPU run's). The code version is not in the hash: after changing the
    code, rerun with ``resume=false``.
    """
    plain = to_plain(config)
    if not isinstance(plain, dict):
        raise TypeError(f"a job config must be a mapping, got {type(config).__name__}")
    for dotted in HASH_IGNORED_KEYS:
        _drop(plain, dotted.split("."))
    text = json.dumps(_canonical(plain), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _drop(tree: dict[str, Any], path: list[str]) -> None:
    node: Any = tree
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class FinishedRun:
    """A FINISHED run that holds a configuration's result: its id, tags and latest metrics."""

    run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def claim_configuration(
    tracking: Mapping[str, Any] | TrackingConfig | None, digest: str
) -> Iterator[None]:
    """Hold the claim on configuration ``digest`` in the experiment ``tracking`` names while
    inside: waits (saying so) while another process holds it. Look the configuration up with
    :func:`find_finished_run` and train it inside, so that of two jobs of one configuration
    started at once only one trains (module doc). A no-op when tracking is off, and for a
    tracking server (noted once per process)."""
    _check_digest(digest)
    settings = TrackingConfig.from_mapping(tracking)
    if not settings.enabled:
        yield
        return
    uri = resolve_tracking_uri(settings.tracking_uri)
    folder = claims_dir(uri)
    if folder is None:
        if uri not in _warned_unclaimed:
            _warned_unclaimed.add(uri)
            _log.info("configurations are claimed only in a local SQLite store: with %s, two "
                      "sweeps of the same configurations run at once may each train one",
                      redact_text(uri))
        yield
        return
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", settings.experiment_name)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / f"{slug}-{digest}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        _log.info("configuration %s is being trained by another process; waiting for it",
                  digest)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _check_digest(digest: str) -> None:
    if not _HASH_PATTERN.fullmatch(digest):
        raise ValueError(f"a config hash is {HASH_LENGTH} lowercase hex digits, got {digest!r}")


def find_finished_run(
    tracking: Mapping[str, Any] | TrackingConfig | None, digest: str
) -> FinishedRun | None:
    """The newest FINISHED result run (not a sweep, grid or tuning trial: ``GROUPING_KINDS``)
    tagged ``config_hash = digest`` in the experiment ``tracking`` names; ``None`` when there
    is none, when tracking is off, or when the experiment does not exist yet (it is not
    created here)."""
    _check_digest(digest)
    settings = TrackingConfig.from_mapping(tracking)
    if not settings.enabled:
        return None
    uri = resolve_tracking_uri(settings.tracking_uri)
    client = get_client(uri)
    with store_errors(uri):
        experiment = client.get_experiment_by_name(settings.experiment_name)
        if experiment is None or experiment.lifecycle_stage != "active":
            return None
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=(f"tags.`{TAG_CONFIG_HASH}` = '{digest}' "
                           f"AND attributes.status = 'FINISHED'"),
            max_results=100,
            order_by=["attributes.start_time DESC"],
        )
    for run in runs:
        if run.data.tags.get(TAG_KIND) not in GROUPING_KINDS:
            return FinishedRun(run.info.run_id, dict(run.data.tags), dict(run.data.metrics))
    return None
