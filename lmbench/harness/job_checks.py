"""Checks of a job config made before the job touches the tracking store.

A mistake in the config (``trainer.mu_init=-1``, ``device=cuda`` on a machine without a GPU, a
dataset whose package is not installed) is found here, in well under a second, instead of
after the split is prepared and a run is opened: ``lmbench-run`` then prints one line naming
the key and exits with status 2, and the store holds no FAILED run that reports must skip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lmbench.core.checks import check_device
from lmbench.data import DatasetError, DatasetSpec
from lmbench.data.sources import import_source_package
from lmbench.data.splits import check_fractions
from lmbench.harness.resume import resume_enabled
from lmbench.harness.runners import runner_name, runner_spec

#: The exit status of ``lmbench-run`` refusing its config (argparse's usage status).
CONFIG_ERROR_STATUS = 2


class JobConfigError(ValueError):
    """A job config that cannot run; the message names the config key and the fix."""


def check_job_config(cfg: DictConfig) -> None:
    """Refuse ``cfg`` if a job would fail on its config: the runner, ``resume``, ``device``,
    and for dataset jobs the dataset (its config and source package), the split fractions, an
    LM trainer's settings (``TrainerSettings`` validates every knob) and a tuned trainer's
    method and ``tuning`` settings. Raises
    :class:`JobConfigError` (the original error as its cause)."""
    _checked("job", lambda: runner_spec(runner_name(cfg)))
    _checked("", lambda: resume_enabled(cfg))
    _checked("", lambda: check_device(str(cfg.get("device", "cpu"))))
    name = runner_name(cfg)
    if not runner_spec(name).on_dataset:
        return
    spec = _checked("dataset", lambda: DatasetSpec.from_config(cfg.dataset, origin="dataset"))
    _checked("dataset", lambda: import_source_package(spec))
    split = cfg.get("split") or {}
    _checked("split", lambda: check_fractions(float(split.get("val_fraction", 0.2)),
                                              float(split.get("test_fraction", 0.2))))
    if name == "lm":
        from lmbench.harness.runners.lm import trainer_settings

        _checked("trainer", lambda: trainer_settings(cfg.trainer, spec.task), cfg.trainer)
    elif name == "search":
        _checked("", lambda: _check_tuned_method(cfg))


def _check_tuned_method(cfg: DictConfig) -> None:
    """A tuned trainer names a known method, and ``cfg.tuning`` is valid tuning settings."""
    from lmbench.baselines.dispatch import METHODS
    from lmbench.baselines.tuning import TuningSettings

    method = str((cfg.get("trainer") or {}).get("name", ""))
    if method not in METHODS:
        raise ValueError(f"trainer.name={method!r} is not a tuned method; known: "
                         f"{', '.join(METHODS)} (trainer=lm for a single LM configuration)")
    tuning = cfg.get("tuning")
    TuningSettings.from_mapping(None if tuning is None else OmegaConf.to_container(tuning))


def _checked(section: str, check: Callable[[], Any], node: Any = None) -> Any:
    """Run ``check``; its error becomes a :class:`JobConfigError` whose message starts with
    the config key (``trainer.mu_init must be ...``) or the section (``dataset: ...``)."""
    try:
        return check()
    except (ValueError, TypeError, DatasetError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        first = message.split()[0].rstrip(":,")
        if not section or message.startswith(f"{section}.") or message.startswith(f"{section}="):
            key_message = message
        elif node is not None and first in node:
            key_message = f"{section}.{message}"
        else:
            key_message = f"{section}: {message}"
        raise JobConfigError(key_message) from exc
