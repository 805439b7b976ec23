"""The harness: Hydra entry points composing data, models, engine, baselines and tracking.

``jobs.run_job`` runs the runner ``cfg.job`` names (``runners/``: ``lm``, ``search``,
``limits``, ``paper_check``; shared types in ``outcome``). Submodules are imported on use
(``lmbench.harness.jobs``, ``.run``, ``.report``, ...), so a CLI pulls in only what it needs.
"""

import os

from omegaconf import OmegaConf

from lmbench.harness.config_schema import register_schemas

#: The resolver ``${lmbench.pid:}``: the id of the process that composes the config.
PID_RESOLVER = "lmbench.pid"


def register_resolvers() -> None:
    """Register ``${lmbench.pid:}`` (cached, so a sweep's joblib workers see the launching
    process's id): it makes the output folders of two ``lmbench-run`` started in the same
    second differ (conf/hydra/default.yaml)."""
    if not OmegaConf.has_resolver(PID_RESOLVER):
        OmegaConf.register_new_resolver(PID_RESOLVER, os.getpid, use_cache=True)


register_schemas()
register_resolvers()
