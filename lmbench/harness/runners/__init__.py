"""Runners by name: one module per kind of job, each with a ``run`` function.

``cfg.job.runner`` names the runner (``conf/job/*.yaml``); the default job ``train`` says
``auto``: ``lm`` for a single LM configuration (a trainer with ``runner: lm``), else ``search``.
Two signatures:

* dataset runners (``lm``, ``search``): ``run(job: DatasetJob) -> JobOutcome``, called by the
  harness inside the run it opened on a prepared split (``lmbench.harness.jobs``);
* standalone runners (``limits``, ``paper_check``): ``run(cfg, *, sweep_id) -> JobOutcome``,
  which open their own runs.

Runner modules are imported on use and never import each other or this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunnerSpec:
    """Where a runner lives and whether it runs on a prepared dataset split."""

    module: str
    on_dataset: bool
    description: str


RUNNERS: dict[str, RunnerSpec] = {
    "lm": RunnerSpec("lmbench.harness.runners.lm", True, "one LM configuration"),
    "search": RunnerSpec(
        "lmbench.harness.runners.search", True,
        "one method's tuning (xgboost, catboost, adam, tlm, lm_tuned)",
    ),
    "limits": RunnerSpec(
        "lmbench.harness.runners.limits", False, "one engine at one size, measured"
    ),
    "paper_check": RunnerSpec(
        "lmbench.harness.runners.paper_check", False,
        "K random starts of LM on a classic problem",
    ),
}


def runner_name(cfg: Mapping[str, Any]) -> str:
    """The runner ``cfg`` asks for: ``cfg.job.runner``, with ``auto`` resolved by the trainer."""
    job = cfg.get("job") or {}
    name = str(job.get("runner", "auto"))
    if name == "auto":
        trainer = cfg.get("trainer") or {}
        return "lm" if str(trainer.get("runner", "search")) == "lm" else "search"
    return name


def runner_spec(name: str) -> RunnerSpec:
    """The registry entry of ``name``; an unknown name is an error listing the known ones."""
    if name not in RUNNERS:
        raise ValueError(f"job.runner={name!r} is not a known runner; known: auto, "
                         f"{', '.join(RUNNERS)}")
    return RUNNERS[name]


def load_runner(name: str) -> Callable[..., Any]:
    """The ``run`` function of runner ``name`` (its module imported now)."""
    return importlib.import_module(runner_spec(name).module).run
