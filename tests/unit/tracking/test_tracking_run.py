"""RunTracker against a real SQLite store, read back through MlflowClient."""

from __future__ import annotations

import inspect
import json
import math
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from lmbench.tracking import (
    MAX_PARAM_VALUE_LENGTH,
    NullTracker,
    RunTracker,
    Tracker,
    get_client,
    git_commit,
    tracker_from_config,
)

CONF_DIR = Path(__file__).resolve().parents[3] / "conf" / "tracking"


def _tracker(store: tuple[str, str, Path], name: str, **kwargs: object) -> RunTracker:
    uri, experiment_id, _ = store
    return RunTracker(name, tracking_uri=uri, experiment_id=experiment_id, **kwargs)  # type: ignore[arg-type]


def _read(store: tuple[str, str, Path]) -> MlflowClient:
    return MlflowClient(tracking_uri=store[0])


def _artifact(client: MlflowClient, run_id: str, path: str, dst: Path) -> Path:
    return Path(client.download_artifacts(run_id, path, str(dst)))


def test_run_is_tagged_finished_and_stored_next_to_db(store, tmp_path: Path) -> None:
    import mlflow
    import torch

    uri, experiment_id, folder = store
    with _tracker(store, "parent", sweep_id="sweep-1") as parent:
        pass
    with _tracker(
        store,
        "job-0",
        sweep_id="sweep-1",
        parent_run_id=parent.run_id,
        device="cpu",
        dataset_hash="abc123",
        tags={"model": "mlp"},
    ) as tracker:
        run_id = tracker.run_id
    run = _read(store).get_run(run_id)
    tags = run.data.tags
    assert run.info.status == "FINISHED" and tracker.status == "FINISHED"
    assert run.info.run_name == "job-0"
    assert tags["git_commit"] == git_commit()
    assert tags["lmbench_version"] == metadata.version("lmbench")
    assert tags["torch_version"] == torch.__version__
    assert tags["mlflow_version"] == mlflow.__version__
    assert tags["device"] == "cpu"
    assert tags["dataset_hash"] == "abc123"
    assert tags["sweep_id"] == "sweep-1"
    assert tags["mlflow.parentRunId"] == parent.run_id
    assert tags["model"] == "mlp"
    assert "error" not in tags
    assert Path(run.info.artifact_uri).is_relative_to(folder / "mlruns")
    found = _read(store).search_runs([experiment_id], "tags.sweep_id = 'sweep-1'")
    assert {r.info.run_id for r in found} == {parent.run_id, run_id}


def test_log_config_params_flattened_and_yaml_artifact(store, tmp_path: Path) -> None:
    cfg = {
        "model": {"widths": [64, 32], "activation": "tanh"},
        "trainer": {"mu": 0.01, "damping": {"rule": "marquardt"}},
        "dataset": {"rename": {"Sepal Length (cm)": "x", "Sepal Length [cm]": "y"}},
        "notes": "n" * 7000,
    }
    with _tracker(store, "config") as tracker:
        logged = tracker.log_config(cfg)
    run = _read(store).get_run(tracker.run_id)
    params = run.data.params
    assert params["model.widths"] == "[64, 32]"
    assert params["model.activation"] == "tanh"
    assert params["trainer.mu"] == "0.01"
    assert params["trainer.damping.rule"] == "marquardt"
    assert params["dataset.rename.Sepal Length _cm_"] == "x"
    twin = [k for k in params if k.startswith("dataset.rename.Sepal Length _cm_-")]
    assert len(twin) == 1 and params[twin[0]] == "y"
    assert len(params["notes"]) == MAX_PARAM_VALUE_LENGTH
    assert params == logged
    saved = yaml.safe_load(
        _artifact(_read(store), tracker.run_id, "config.yaml", tmp_path).read_text()
    )
    assert saved == cfg


def test_many_params_are_sent_in_chunks_of_100(store) -> None:
    cfg = {f"p{i:03d}": i for i in range(250)}
    with _tracker(store, "many-params") as tracker:
        tracker.log_config(cfg)
    assert len(_read(store).get_run(tracker.run_id).data.params) == 250


def test_epoch_history_steps_values_and_nan_skipped(store, monkeypatch) -> None:
    history = {
        "train_loss": [1.0, 0.5, 0.25, 0.125],
        "val_loss": [None, 0.6, float("nan"), 0.3],
        "mu": [1e-3, 1e-4, 1e-5, 1e-6],
        "damping_trials": [1, 3, 2, 1],
    }
    with _tracker(store, "history") as tracker:
        logged = tracker.log_epoch_history(history, step_offset=10)
    assert logged == 4 + 2 + 4 + 4
    client = _read(store)
    for key, values in history.items():
        got = sorted((m.step, m.value) for m in client.get_metric_history(tracker.run_id, key))
        expected = [
            (10 + i, float(v)) for i, v in enumerate(values) if v is not None and not math.isnan(v)
        ]
        assert got == expected, key
    assert all(
        not math.isnan(m.value) for m in client.get_metric_history(tracker.run_id, "val_loss")
    )


def test_long_history_batched_at_most_1000_per_call(store, monkeypatch) -> None:
    with _tracker(store, "long-history") as tracker:
        client = get_client(tracker.tracking_uri)
        sizes: list[int] = []
        real = client.log_batch

        def spy(run_id, metrics=(), params=(), tags=()):
            sizes.append(len(metrics))
            return real(run_id, metrics=metrics, params=params, tags=tags)

        monkeypatch.setattr(client, "log_batch", spy)
        n = tracker.log_epoch_history({"a": list(range(1500)), "b": list(range(1000))})
        monkeypatch.undo()
    assert n == 2500
    assert sizes == [1000, 1000, 500]
    history = _read(store).get_metric_history(tracker.run_id, "a")
    assert sorted(m.step for m in history) == list(range(1500))


def test_final_metrics_batched_and_missing_skipped(store) -> None:
    with _tracker(store, "final") as tracker:
        n = tracker.log_metrics(
            {"test_rmse": 0.5, "n_params": 1234, "wall_time_s": 3.5, "test_acc": None}
        )
        with pytest.raises(TypeError, match="test_label"):
            tracker.log_metrics({"test_label": "good"})
    assert n == 3
    metrics = _read(store).get_run(tracker.run_id).data.metrics
    assert metrics == {"test_rmse": 0.5, "n_params": 1234.0, "wall_time_s": 3.5}


def test_artifacts_text_dict_file_dir_figure_weights(store, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    src = tmp_path / "src"
    (src / "hydra").mkdir(parents=True)
    (src / "hydra" / "overrides.yaml").write_text("- a=1\n")
    (src / "single.csv").write_text("x\n1\n")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
    with _tracker(store, "artifacts") as tracker:
        tracker.log_text("hello", "notes/readme.md")
        tracker.log_dict({"a": 1, "b": [1, 2]}, "summary.json")
        tracker.log_artifact(src / "single.csv")
        tracker.log_artifact(src / "hydra", ".hydra")
        tracker.log_figure(fig, "figures/loss")
        weights = tracker.log_state_dict(state, "mlp")
        with pytest.raises(FileNotFoundError):
            tracker.log_artifact(src / "missing.txt")
    plt.close(fig)
    client, run_id, dst = _read(store), tracker.run_id, tmp_path / "dst"
    assert weights == "weights/mlp.pt"
    assert _artifact(client, run_id, "notes/readme.md", dst).read_text() == "hello"
    assert json.loads(_artifact(client, run_id, "summary.json", dst).read_text()) == {
        "a": 1,
        "b": [1, 2],
    }
    assert _artifact(client, run_id, "single.csv", dst).read_text() == "x\n1\n"
    assert _artifact(client, run_id, ".hydra/overrides.yaml", dst).read_text() == "- a=1\n"
    png = _artifact(client, run_id, "figures/loss.png", dst).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    loaded = torch.load(_artifact(client, run_id, weights, dst), weights_only=True)
    assert set(loaded) == {"w", "b"} and torch.equal(loaded["w"], state["w"])


def test_log_weights_off_skips_state_dict(store) -> None:
    with _tracker(store, "no-weights", log_weights=False) as tracker:
        assert tracker.log_state_dict({"w": 1}) is None
    assert _read(store).list_artifacts(tracker.run_id) == []


def test_exception_marks_run_failed_records_error_and_propagates(store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="singular system"), _tracker(store, "boom") as tracker:
        tracker.log_metrics({"train_loss": 1.0})
        raise ValueError("singular system at epoch 3")
    client = _read(store)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "ValueError: singular system at epoch 3"
    text = _artifact(client, tracker.run_id, "error.txt", tmp_path).read_text()
    assert "Traceback" in text and "singular system at epoch 3" in text
    assert run.data.metrics == {"train_loss": 1.0}


def test_keyboard_interrupt_marks_run_killed_and_propagates(store) -> None:
    with pytest.raises(KeyboardInterrupt), _tracker(store, "ctrl-c") as tracker:
        raise KeyboardInterrupt
    assert _read(store).get_run(tracker.run_id).info.status == "KILLED"


def test_logging_before_start_is_an_error(store) -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _tracker(store, "unstarted").log_metrics({"a": 1.0})


def test_tracker_creates_missing_experiment_from_name(store) -> None:
    uri = store[0]
    with RunTracker("named", tracking_uri=uri, experiment_name="created-by-tracker") as tracker:
        pass
    experiment = _read(store).get_experiment_by_name("created-by-tracker")
    assert experiment is not None and tracker.experiment_id == experiment.experiment_id


def test_null_tracker_has_the_same_interface_and_does_nothing(tmp_path: Path) -> None:
    public = [n for n, v in vars(RunTracker).items() if callable(v) and not n.startswith("_")]
    for name in [*public, "__enter__", "__exit__"]:
        assert inspect.signature(getattr(NullTracker, name)) == inspect.signature(
            getattr(RunTracker, name)
        ), name
    with pytest.raises(ZeroDivisionError), NullTracker() as null:
        assert isinstance(null, Tracker)
        assert null.log_config({"a": 1}) == {}
        assert null.log_epoch_history({"a": [1.0]}) == 0
        assert null.log_state_dict({}) is None
        1 / 0  # noqa: B018
    assert not (tmp_path / "mlflow.db").exists()


def test_config_group_files_build_the_right_tracker(store) -> None:
    from omegaconf import OmegaConf

    on = OmegaConf.load(CONF_DIR / "mlflow.yaml")
    off = OmegaConf.load(CONF_DIR / "none.yaml")
    assert on.tracking_uri is None and on.experiment_name == "lmbench"
    assert on.log_weights is True and on.log_report is True
    on.tracking_uri = store[0]
    tracker = tracker_from_config(on, run_name="from-config", device="cpu")
    assert isinstance(tracker, RunTracker) and tracker.tracking_uri == store[0]
    assert tracker.experiment_name == "lmbench" and tracker.log_weights and tracker.log_report
    assert isinstance(tracker_from_config(off, run_name="x"), NullTracker)
    assert isinstance(tracker_from_config(None), NullTracker)
    with pytest.raises(ValueError, match="tracking.uri"):
        tracker_from_config({"uri": "sqlite:///x.db"})


def test_config_group_composes_with_hydra() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR.parent), version_base="1.3"):
        cfg = compose(overrides=["+tracking=none"])
    assert cfg.tracking.enabled is False
    assert isinstance(tracker_from_config(cfg.tracking), NullTracker)
