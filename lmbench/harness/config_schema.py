"""Structured-config schemas: Hydra checks LM trainer configs against ``TrainerSettings``.

The schema is generated from ``TrainerSettings`` (its fields, types and defaults), so a knob is
declared once, in ``lmbench.core.settings``. ``conf/trainer/lm.yaml`` names the schema first in
its defaults list; Hydra then refuses, while composing and before any job or run exists, a
wrong-typed value (``trainer.mu_init=abc``) or an unknown key (``trainer.mu_intt=1``) with the
key's full name. Values of closed vocabularies (engine, damping, loss names) are strings here and
are checked by ``TrainerSettings`` itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from lmbench.core.settings import ALIASES, TrainerSettings, field_types, optional_fields

#: The config store entry (group ``trainer``) that conf/trainer/lm.yaml extends.
LM_TRAINER_SCHEMA = "lm_schema"
#: Keys of an LM trainer config that are not LM settings: what the harness reads.
HARNESS_KEYS: dict[str, str] = {"name": "lm", "runner": "lm"}


def config_key(setting: str) -> str:
    """The config spelling of a ``TrainerSettings`` field (the seed's ``demping_coef``)."""
    return {field: key for key, field in ALIASES.items()}.get(setting, setting)


def lm_trainer_schema() -> type:
    """A dataclass with the harness keys and every ``TrainerSettings`` field (config spelling),
    typed for OmegaConf (``X | None`` -> ``Optional[X]``; a ``Literal`` -> ``str``)."""
    kinds, optional = field_types(), optional_fields()
    specs: list[tuple[str, Any, Any]] = [
        (key, str, dataclasses.field(default=value)) for key, value in HARNESS_KEYS.items()
    ]
    for spec in dataclasses.fields(TrainerSettings):
        kind: Any = Optional[kinds[spec.name]] if spec.name in optional else kinds[spec.name]  # noqa: UP045
        specs.append((config_key(spec.name), kind, dataclasses.field(default=spec.default)))
    return dataclasses.make_dataclass("LMTrainerConfig", specs)


def register_schemas(store: ConfigStore | None = None) -> None:
    """Put the schemas in Hydra's config store (done on ``import lmbench.harness``)."""
    (store or ConfigStore.instance()).store(
        group="trainer", name=LM_TRAINER_SCHEMA, node=lm_trainer_schema()
    )
