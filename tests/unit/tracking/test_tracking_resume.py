"""Resuming: the config hash (stable, blind to logging settings only) and the lookup of the
FINISHED run holding a configuration's result, against a real SQLite store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lmbench.tracking import RunTracker, schema
from lmbench.tracking.resume import claim_configuration, config_hash, find_finished_run
from lmbench.tracking.sweep import SweepParent, record_skipped_job

CONFIG = {
    "seed": 0,
    "trainer": {"name": "lm", "mu_init": 10, "demping_coef": 10, "temp_folder": "./temp"},
    "model": {"name": "mlp_small", "hidden": [16]},
    "dataset": {"name": "wine", "citation": "Forina et al."},
    "tracking": {"enabled": True, "experiment_name": "a"},
    "tags": {},
    "progress": "auto",
    "resume": True,
    "threads": 1,
    "device": "cpu",
}


def _with(path: str, value: object) -> dict:
    """A deep copy of CONFIG with the dotted ``path`` set to ``value``."""
    config = json.loads(json.dumps(CONFIG))
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


def test_the_hash_is_sha256_of_canonical_json_cut_to_16_hex_digits() -> None:
    kept = {k: v for k, v in CONFIG.items() if k not in ("tracking", "tags", "progress", "resume")}
    kept["trainer"] = {k: v for k, v in CONFIG["trainer"].items() if k != "temp_folder"}
    kept["dataset"] = {"name": "wine"}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    assert config_hash(CONFIG) == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_the_hash_ignores_key_order_and_is_the_same_in_another_process() -> None:
    reordered = {k: CONFIG[k] for k in reversed(list(CONFIG))}
    reordered["trainer"] = dict(reversed(list(CONFIG["trainer"].items())))
    assert config_hash(reordered) == config_hash(CONFIG)
    code = (f"import json; from lmbench.tracking.resume import config_hash; "
            f"print(config_hash(json.loads({json.dumps(json.dumps(CONFIG))})))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, check=True)
    assert other.stdout.strip() == config_hash(CONFIG)


@pytest.mark.parametrize("path, value", [
    ("trainer.mu_init", 100), ("trainer.demping_coef", 3), ("model.hidden", [32]),
    ("seed", 1), ("dataset.name", "iris"), ("threads", 2), ("device", "cuda"),
])
def test_a_setting_that_changes_the_result_changes_the_hash(path: str, value: object) -> None:
    assert config_hash(_with(path, value)) != config_hash(CONFIG)


@pytest.mark.parametrize("path, value", [
    ("tracking.experiment_name", "b"), ("tracking.log_models", False), ("tags.purpose", "x"),
    ("progress", True), ("resume", False), ("trainer.temp_folder", "/scratch"),
    ("dataset.citation", "another text"), ("trainer.mu_init", 10.0),
])
def test_logging_and_cosmetic_settings_leave_the_hash_alone(path: str, value: object) -> None:
    assert config_hash(_with(path, value)) == config_hash(CONFIG)


def _run(store: tuple[str, str, Path], digest: str, status: str, **tags: str) -> str:
    uri, experiment_id, _ = store
    tracker = RunTracker(f"job-{status}", tracking_uri=uri, experiment_id=experiment_id,
                         tags={schema.TAG_CONFIG_HASH: digest, **tags})
    tracker.start()
    tracker.log_metrics({schema.test_metric("accuracy"): 0.75})
    if status != "RUNNING":
        tracker.end(status)  # type: ignore[arg-type]
    assert tracker.run_id is not None
    return tracker.run_id


def test_only_a_finished_result_run_of_the_same_hash_counts(store) -> None:
    tracking = {"tracking_uri": store[0], "experiment_name": "unit"}
    digest = config_hash(_with("seed", 101))
    for status in ("FAILED", "KILLED", "RUNNING"):
        _run(store, digest, status)
    _run(store, digest, "FINISHED", **{schema.TAG_KIND: schema.KIND_SWEEP})
    _run(store, config_hash(_with("seed", 102)), "FINISHED")
    assert find_finished_run(tracking, digest) is None
    finished = _run(store, digest, "FINISHED")
    found = find_finished_run(tracking, digest)
    assert found is not None and found.run_id == finished
    assert found.metrics[schema.test_metric("accuracy")] == 0.75
    assert found.tags[schema.TAG_CONFIG_HASH] == digest


def test_no_store_or_no_experiment_has_nothing_to_skip(store) -> None:
    digest = config_hash(CONFIG)
    assert find_finished_run({"enabled": False}, digest) is None
    assert find_finished_run(None, digest) is None
    missing = {"tracking_uri": store[0], "experiment_name": "never-created"}
    assert find_finished_run(missing, digest) is None
    assert MlflowClient(store[0]).get_experiment_by_name("never-created") is None
    with pytest.raises(ValueError, match="16 lowercase hex digits"):
        find_finished_run(missing, "x' OR '1'='1")


def test_the_sweep_parent_counts_skipped_jobs(store, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    record_skipped_job(sweep_dir, 7, "a-sweep-before-this-one")  # same directory, earlier sweep
    parent = SweepParent({"tracking_uri": store[0], "experiment_name": "unit"}, str(sweep_dir))
    run_id = parent.start(store[1])
    for job_num in (0, 1):
        record_skipped_job(sweep_dir, job_num, "earlier-run")
    parent.finish()
    run = MlflowClient(store[0]).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics[schema.METRIC_SWEEP_SKIPPED] == 2
    assert run.data.metrics[schema.METRIC_SWEEP_JOBS] == 2
    assert run.data.metrics[schema.METRIC_SWEEP_FINISHED] == 0


_CLAIM_IN_ANOTHER_PROCESS = """
import sys
from lmbench.tracking.resume import claim_configuration
print("ready", flush=True)
with claim_configuration({"tracking_uri": sys.argv[1], "experiment_name": "a"}, sys.argv[2]):
    print("claimed", flush=True)
"""


def test_a_claimed_configuration_waits_for_the_process_that_holds_it(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    digest = config_hash(CONFIG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with claim_configuration({"tracking_uri": uri, "experiment_name": "a"}, digest):
        other = subprocess.Popen([sys.executable, "-c", _CLAIM_IN_ANOTHER_PROCESS, uri, digest],
                                 env=env, stdout=subprocess.PIPE, text=True)
        assert other.stdout.readline().strip() == "ready"
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=3)  # blocked on the claim held here
    rest, _ = other.communicate(timeout=60)
    assert other.returncode == 0 and rest.strip() == "claimed"
    assert (tmp_path / "mlflow.db.claims" / f"a-{digest}.lock").exists()


def test_a_tracking_server_has_no_claim_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    tracking = {"tracking_uri": "http://127.0.0.1:9", "experiment_name": "a"}
    with (caplog.at_level("INFO", logger="lmbench.tracking.resume"),
          claim_configuration(tracking, config_hash(CONFIG))):
        pass
    assert "claimed only in a local SQLite store" in caplog.text
