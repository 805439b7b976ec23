"""The harness: Hydra entry points composing data, models, engine, baselines and tracking.

Submodules are imported on use (``lmbench.harness.jobs``, ``.run``, ``.report``, ...), so a
CLI pulls in only what it needs.
"""
