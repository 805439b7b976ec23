"""Worker run in spawned processes by the concurrency test (must be importable, not a test)."""

from __future__ import annotations


def log_runs(uri: str | None, experiment_name: str, worker: int, n_runs: int) -> list[str]:
    """Log ``n_runs`` small runs, as a sweep worker would; return their run ids."""
    from lmbench.tracking import RunTracker

    run_ids = []
    for i in range(n_runs):
        name = f"w{worker}-r{i}"
        with RunTracker(
            name, tracking_uri=uri, experiment_name=experiment_name, sweep_id="concurrent"
        ) as tracker:
            tracker.log_config({"worker": worker, "run": i})
            tracker.log_epoch_history({"train_loss": [1.0 / (k + 1) for k in range(20)]})
            tracker.log_metrics({"worker": worker, "run": i})
        run_ids.append(tracker.run_id)
    return run_ids
