"""The harness: Hydra entry points composing data, models, engine, baselines and tracking."""

from lmbench.harness.jobs import JobOutcome, run_job

__all__ = ["JobOutcome", "run_job"]
