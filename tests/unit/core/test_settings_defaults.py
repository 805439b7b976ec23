"""Each LM knob has one default: TrainerSettings for the engine, each damping rule for its own
parameters; configs are checked against the schema generated from TrainerSettings."""

import dataclasses
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException

from lmbench.core.damping import (
    DAMPING_NAMES,
    GainRatioDamping,
    SeedDamping,
    damping_parameters,
    make_damping,
)
from lmbench.core.settings import TrainerSettings, cast_setting
from lmbench.harness.config_schema import config_key, lm_trainer_schema
from lmbench.harness.run import CONF_DIR
from lmbench.tracking.flatten import flatten_config


def test_each_rule_starts_from_its_own_defaults() -> None:
    assert TrainerSettings(damping="gain_ratio").damping_rule() == GainRatioDamping()
    assert GainRatioDamping().mu_init == 1e-3 and GainRatioDamping().threshold == 1e-4
    assert TrainerSettings().damping_rule() == SeedDamping(mu_init=10.0, factor=10.0)
    marquardt = TrainerSettings(damping="marquardt").damping_rule()
    assert (marquardt.mu_init, marquardt.factor, marquardt.scale_by_diagonal) == (10, 10, True)


def test_every_rule_parameter_is_reachable_from_settings_and_config() -> None:
    rule = TrainerSettings.from_mapping(
        {"damping": "gain_ratio", "mu_init": "0.5", "gain_ratio_threshold": 0.25}
    ).damping_rule()
    assert rule == GainRatioDamping(mu_init=0.5, threshold=0.25)
    seed = TrainerSettings.from_mapping({"demping_coef": 3}).damping_rule()
    assert seed == SeedDamping(factor=3.0)
    # every parameter of every rule has a TrainerSettings field
    settings_fields = {f.name for f in dataclasses.fields(TrainerSettings)}
    spelled = {"mu_init": "mu_init", "factor": "damping_factor",
               "threshold": "gain_ratio_threshold", "grow_factor": "damping_grow_factor",
               "shrink_factor": "damping_shrink_factor"}
    for name in DAMPING_NAMES:
        assert {spelled[p] for p in damping_parameters(name)} <= settings_fields


def test_a_bad_rule_parameter_names_itself() -> None:
    with pytest.raises(ValueError, match="gain_ratio_threshold"):
        TrainerSettings(damping="gain_ratio", gain_ratio_threshold=1.5)
    with pytest.raises(ValueError, match="unknown damping rule 'trust'"):
        make_damping("trust")
    with pytest.raises(ValueError, match="mu_init must be a float, got 'abc'"):
        cast_setting("mu_init", "abc")


def test_the_schema_is_generated_from_trainer_settings() -> None:
    schema = {f.name: f.default for f in dataclasses.fields(lm_trainer_schema())}
    for spec in dataclasses.fields(TrainerSettings):
        assert schema[config_key(spec.name)] == spec.default
    assert "demping_coef" in schema and "damping_factor" not in schema
    assert set(schema) - {config_key(f.name) for f in dataclasses.fields(TrainerSettings)} == {
        "name", "runner", "label"}


def _compose(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("override, key", [
    ("trainer.mu_init=abc", "trainer.mu_init"),
    ("trainer.max_epochs=ten", "trainer.max_epochs"),
    ("trainer.mu_intt=1", "mu_intt"),
    ("trainer.patience=[1]", "trainer.patience"),
])
def test_a_wrong_trainer_override_fails_at_compose_time_naming_the_key(override, key) -> None:
    with pytest.raises(ConfigCompositionException) as error:
        _compose(override)
    assert key in str(error.value.__cause__ or error.value)


@pytest.mark.parametrize("override, key", [
    ("trainer.params.mu_init=abc", "trainer.params.mu_init"),
    ("trainer.params.hidden=[a]", "trainer.params.hidden"),
    ("trainer.params.mu_intt=1", "mu_intt"),
])
def test_a_wrong_lm_tuned_param_fails_at_compose_time_naming_the_key(override, key) -> None:
    with pytest.raises(ConfigCompositionException) as error:
        _compose("trainer=lm_tuned", override)
    assert key in str(error.value.__cause__ or error.value)


def test_the_lm_tuned_schema_holds_every_lm_setting_with_its_default() -> None:
    from lmbench.baselines.lm import LMSettings

    params = _compose("trainer=lm_tuned", "trainer.params.hidden=[32,16]").trainer.params
    assert set(params) == {spec.name for spec in dataclasses.fields(LMSettings)}
    assert list(params.hidden) == [32, 16] and params.mu_init == 10.0
    assert LMSettings.from_mapping(params).hidden == (32, 16)


def test_typed_values_are_logged_as_written() -> None:
    cfg = _compose("trainer.mu_init=1", "trainer.gain_ratio_threshold=0.5")
    assert cfg.trainer.mu_init == 1.0 and isinstance(cfg.trainer.mu_init, float)
    params = flatten_config({"trainer": cfg.trainer})
    assert params["trainer.mu_init"] == "1" and params["trainer.gain_ratio_threshold"] == "0.5"


def test_the_cli_refuses_a_wrong_type_before_any_job() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lmbench.harness.run", "trainer.mu_init=abc", "--cfg", "job"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "trainer.mu_init" in done.stderr + done.stdout
