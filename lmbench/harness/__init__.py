"""The harness: Hydra entry points composing data, models, engine, baselines and tracking.

``jobs.run_job`` runs the runner ``cfg.job`` names (``runners/``: ``lm``, ``search``,
``limits``, ``paper_check``; shared types in ``outcome``). Submodules are imported on use
(``lmbench.harness.jobs``, ``.run``, ``.report``, ...), so a CLI pulls in only what it needs.
"""

from lmbench.harness.config_schema import register_schemas

register_schemas()
