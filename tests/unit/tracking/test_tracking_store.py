"""prepare_store: idempotent, race-safe, and enough for concurrent sweep workers."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

import lmbench.tracking.store as store_module
from lmbench.tracking import prepare_store
from lmbench.tracking.uri import store_lock

HERE = Path(__file__).resolve().parent


def test_prepare_store_is_idempotent(store) -> None:
    uri, experiment_id, folder = store
    assert prepare_store(uri, "unit") == experiment_id
    store_module._forget_prepared()  # as if a new process called it
    assert prepare_store(uri, "unit") == experiment_id
    client = MlflowClient(tracking_uri=uri)
    matching = [e for e in client.search_experiments() if e.name == "unit"]
    assert [e.experiment_id for e in matching] == [experiment_id]
    assert matching[0].artifact_location == str(folder / "mlruns" / "unit")


def test_prepare_store_survives_losing_the_creation_race(store, monkeypatch) -> None:
    uri = store[0]
    # Another process creates the experiment right after our lookup said it was missing.
    other_id = MlflowClient(tracking_uri=uri).create_experiment("raced")
    real = store_module.get_client(uri)

    class LateClient:
        def __init__(self) -> None:
            self.lookups = 0

        def get_experiment_by_name(self, name: str):
            self.lookups += 1
            return None if self.lookups == 1 else real.get_experiment_by_name(name)

        def __getattr__(self, attr: str):
            return getattr(real, attr)

    late = LateClient()
    monkeypatch.setattr(store_module, "get_client", lambda _uri: late)
    assert prepare_store(uri, "raced") == other_id
    assert late.lookups == 2


def test_prepare_store_refuses_a_deleted_experiment(store) -> None:
    uri = store[0]
    client = MlflowClient(tracking_uri=uri)
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(RuntimeError, match="tracking.experiment_name"):
        prepare_store(uri, "gone")


def test_prepare_store_rejects_empty_name(store) -> None:
    with pytest.raises(ValueError, match="tracking.experiment_name"):
        prepare_store(store[0], "")


def test_concurrent_workers_on_default_store_lose_no_run(tmp_path: Path, monkeypatch) -> None:
    """The parent prepares the default store (cwd = tmp_path); 2 spawned workers x 3 runs."""
    monkeypatch.syspath_prepend(str(HERE))  # spawned children import the worker module
    from _tracking_workers import log_runs

    experiment_id = prepare_store(None, "sweep")  # in the parent, before the workers
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert (tmp_path / "mlflow.db").is_file()
    experiment = MlflowClient(tracking_uri=uri).get_experiment(experiment_id)
    assert experiment.artifact_location == str(tmp_path / "mlruns" / "sweep")
    ctx = multiprocessing.get_context("spawn")  # children inherit cwd and env: same default
    with ctx.Pool(2) as pool:
        results = pool.starmap(log_runs, [(None, "sweep", w, 3) for w in range(2)], chunksize=1)
    run_ids = {run_id for ids in results for run_id in ids}
    assert len(run_ids) == 6
    runs = MlflowClient(tracking_uri=uri).search_runs([experiment_id], max_results=100)
    assert {r.info.run_id for r in runs} == run_ids
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.info.run_name for r in runs} == {f"w{w}-r{i}" for w in range(2) for i in range(3)}
    assert all(len(r.data.params) == 2 and r.data.metrics["train_loss"] for r in runs)


def _try_lock_in_other_process(lock_file: Path) -> bool:
    """True if another process can take the store lock file ``lock_file`` right now."""
    code = (
        "import sys\n"
        "from filelock import FileLock, Timeout\n"
        "try:\n"
        "    FileLock(sys.argv[1]).acquire(timeout=0)\n"
        "except Timeout:\n"
        "    sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(lock_file)], check=False)
    assert done.returncode in (0, 3)
    return done.returncode == 0


def test_store_lock_excludes_other_processes(tmp_path: Path) -> None:
    # Without it, two workers creating a fresh store at once crash in the migrations
    # ("table experiments already exists") and that worker's runs are lost.
    uri = f"sqlite:///{tmp_path}/locked/mlflow.db"
    lock_file = tmp_path / "locked" / "mlflow.db.lock"
    with store_lock(uri):
        assert not _try_lock_in_other_process(lock_file)
    assert _try_lock_in_other_process(lock_file)
    # the lock file is the only thing written: no store is created by the lock
    assert [p.name for p in (tmp_path / "locked").iterdir()] == ["mlflow.db.lock"]


def test_first_client_of_a_store_is_opened_under_the_lock(store, monkeypatch) -> None:
    taken: list[str] = []
    real_lock = store_module.store_lock

    def recording_lock(uri: str):
        taken.append(uri)
        return real_lock(uri)

    store_module._forget_prepared()
    monkeypatch.setattr(store_module, "store_lock", recording_lock)
    store_module.get_client(store[0])
    assert taken == [store[0]]


def test_hydra_callback_prepares_store_at_multirun_start(store) -> None:
    from omegaconf import OmegaConf

    from lmbench.tracking.hydra_callback import PrepareTrackingStore

    cfg = OmegaConf.create(
        {"tracking": {"enabled": True, "tracking_uri": store[0], "experiment_name": "cb"}}
    )
    PrepareTrackingStore().on_multirun_start(cfg)
    assert MlflowClient(tracking_uri=store[0]).get_experiment_by_name("cb") is not None
    PrepareTrackingStore().on_multirun_start(OmegaConf.create({"tracking": {"enabled": False}}))


def test_a_tracking_server_that_accepts_no_connection_fails_at_once_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from lmbench.tracking import TrackingStoreError

    monkeypatch.setattr(store_module, "SERVER_PROBE_ATTEMPTS", 1)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store_module._forget_prepared()
    with pytest.raises(TrackingStoreError) as info:
        prepare_store(f"http://user:secret@127.0.0.1:{port}", "unreachable")
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "mlflow server" in message
    assert "MLFLOW_TRACKING_URI" in message and "secret" not in message
    # a listening server passes the check (any answer to a connection will do)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        store_module.check_server_reachable(f"http://127.0.0.1:{listener.getsockname()[1]}")
    store_module.check_server_reachable("databricks")  # not a server URI: nothing to probe
