"""Structured-config schemas: Hydra checks the LM trainer configs against their settings types.

Each schema is generated from the dataclass that reads the config (its fields, types and
defaults), so a knob is declared once: ``conf/trainer/lm.yaml`` from ``TrainerSettings``
(``lmbench.core.settings``), the ``params`` of ``conf/trainer/lm_tuned.yaml`` from
``LMSettings`` (``lmbench.baselines.lm``). Each file names its schema first in its defaults
list; Hydra then refuses, while composing and before any job or run exists, a wrong-typed value
(``trainer.mu_init=abc``, ``trainer.params.mu_init=abc``) or an unknown key
(``trainer.mu_intt=1``) with the key's full name. Values of closed vocabularies (engine,
damping, loss names) are strings here and are checked by the settings themselves.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Optional, Union

from hydra.core.config_store import ConfigStore

from lmbench.core.settings import ALIASES, TrainerSettings, field_types, optional_fields

#: The config store entry (group ``trainer``) that conf/trainer/lm.yaml extends.
LM_TRAINER_SCHEMA = "lm_schema"
#: The one conf/trainer/lm_tuned.yaml extends.
LM_TUNED_SCHEMA = "lm_tuned_schema"
#: Keys of an LM trainer config that are not LM settings: what the harness reads (``label``:
#: the run's method tag when it is not ``name``, for variants of one method in one study).
HARNESS_KEYS: dict[str, str] = {"name": "lm", "runner": "lm", "label": ""}


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


def omegaconf_type(hint: Any) -> Any:
    """A settings annotation as OmegaConf types it: ``X | None`` -> ``Optional[X]``, a
    ``Literal`` -> ``str``, ``tuple[X, ...]`` -> ``list[X]``, other unions -> ``Any``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = omegaconf_type(rest[0]) if len(rest) == 1 else Any
        return Optional[inner] if len(rest) < len(args) else inner  # noqa: UP045
    if origin is Literal:
        return str
    if origin is tuple:
        return list[omegaconf_type(args[0])]  # type: ignore[misc]
    return hint


def lm_tuned_schema() -> type:
    """``conf/trainer/lm_tuned.yaml``: harness keys, ``params`` typed from ``LMSettings``
    (every field, its default), and the untyped ``space`` and ``budgets`` the tuning reads."""
    from lmbench.baselines.lm import LMSettings

    hints = typing.get_type_hints(LMSettings)
    params = dataclasses.make_dataclass("LMTunedParams", [
        (spec.name, omegaconf_type(hints[spec.name]), dataclasses.field(
            default_factory=lambda value=spec.default: list(value)
        ) if isinstance(spec.default, tuple) else dataclasses.field(default=spec.default))
        for spec in dataclasses.fields(LMSettings)
    ])
    return dataclasses.make_dataclass("LMTunedConfig", [
        ("name", str, dataclasses.field(default="lm")),
        ("runner", str, dataclasses.field(default="baseline")),
        ("label", str, dataclasses.field(default="")),
        ("budget", str, dataclasses.field(default="full")),
        ("params", params, dataclasses.field(default_factory=params)),
        ("space", dict[str, Any], dataclasses.field(default_factory=dict)),
        ("budgets", dict[str, Any], dataclasses.field(default_factory=dict)),
    ])


def register_schemas(store: ConfigStore | None = None) -> None:
    """Put the schemas in Hydra's config store (done on ``import lmbench.harness``)."""
    store = store or ConfigStore.instance()
    store.store(group="trainer", name=LM_TRAINER_SCHEMA, node=lm_trainer_schema())
    store.store(group="trainer", name=LM_TUNED_SCHEMA, node=lm_tuned_schema())
