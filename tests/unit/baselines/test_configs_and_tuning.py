"""The shipped trainer configs, the equal-budget Optuna tuning every method runs, and the
run_baseline dispatcher."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from lmbench.baselines import (
    BUDGETS,
    NEURAL,
    SEARCHES,
    AdamSettings,
    LMSettings,
    TLMSettings,
    TuningSettings,
    budget_params,
    parse_space,
    run_baseline,
)

CONFIG_OF = {name: "lm_tuned" if name == "lm" else name for name in SEARCHES}
SETTINGS_OF = {"adam": AdamSettings, "tlm": TLMSettings, "lm": LMSettings}
ROOT_CONFIG = OmegaConf.load(Path(__file__).resolve().parents[3] / "conf" / "config.yaml")


@pytest.mark.parametrize("name", SEARCHES)
def test_shipped_config_has_both_budgets_a_space_and_a_default_inside_it(name, conf_dir) -> None:
    cfg = OmegaConf.load(conf_dir / f"{CONFIG_OF[name]}.yaml")  # as Hydra will hand it over
    assert cfg.name == name and cfg.budget == "full"
    assert set(cfg.budgets) == set(BUDGETS)
    dimensions = parse_space(cfg.space)
    assert len(dimensions) >= 3
    for budget in BUDGETS:
        default = budget_params(OmegaConf.merge(cfg, {"budget": budget}))
        for dimension in dimensions:  # raises if the default lies outside the space
            dimension.encode(default[dimension.name])
        if name in SETTINGS_OF:  # every value is a valid typed setting
            SETTINGS_OF[name].from_mapping(default)


def test_neural_methods_search_the_same_architectures_from_the_same_default(conf_dir) -> None:
    configs = {name: OmegaConf.load(conf_dir / f"{CONFIG_OF[name]}.yaml") for name in NEURAL}
    choices = {name: OmegaConf.to_container(c.space.hidden) for name, c in configs.items()}
    defaults = {name: list(c.params.hidden) for name, c in configs.items()}
    assert len({repr(c) for c in choices.values()}) == 1, choices
    assert len({repr(d) for d in defaults.values()}) == 1, defaults
    assert len({c.params.activation for c in configs.values()}) == 1


def test_the_root_config_gives_one_budget_for_every_method() -> None:
    tuning = TuningSettings.from_mapping(OmegaConf.to_container(ROOT_CONFIG.tuning))
    assert tuning.n_samples >= 1 and tuning.sampler in ("tpe", "random")
    assert tuning.trial_time_limit_s is not None and tuning.trial_time_limit_s > 0


def test_budget_overrides_params() -> None:
    cfg = {"budget": "quick", "params": {"a": 0, "b": 0}, "budgets": {"quick": {"a": 1}}}
    assert budget_params(cfg) == {"a": 1, "b": 0}
    assert budget_params({"params": {"a": 0}, "budgets": {"full": {}}}) == {"a": 0}


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"budget": "medium", "budgets": {"full": {}, "quick": {}}}, "trainer.budget='medium'"),
        ({"budgets": {"full": [1]}}, "trainer.budgets.full must be a mapping"),
    ],
)
def test_bad_budgets_name_the_knob(cfg, message) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        budget_params(cfg)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lr": [0.1, 0.2]}, r"trainer\.space\.lr must be a mapping with type"),
        ({"lr": {"type": "float", "low": 1, "high": 1}}, r"low < high"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, r"low must be > 0"),
        ({"depth": {"type": "int", "low": 1.5, "high": 4}}, r"whole numbers"),
        ({"h": {"type": "categorical", "choices": []}}, r"choices must be a non-empty list"),
    ],
)
def test_bad_spaces_name_the_knob(space, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_space(space)


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        ({"n_samples": -1}, r"tuning\.n_samples"),
        ({"sampler": "grid"}, r"tuning\.sampler must be one of"),
        ({"trial_time_limit_s": 0}, r"tuning\.trial_time_limit_s"),
        ({"trials": 3}, r"unknown tuning settings \['trials'\]"),
    ],
)
def test_bad_tuning_settings_name_the_knob(tuning, message) -> None:
    with pytest.raises(ValueError, match=message):
        TuningSettings.from_mapping(tuning)


def test_a_default_outside_its_space_is_refused(splits, quick_cfg) -> None:
    split = splits["multiclass"]
    cfg = quick_cfg("xgboost")
    cfg["params"]["max_depth"] = 12
    with pytest.raises(ValueError, match=r"max_depth=12 lies outside trainer\.space\.max_depth"):
        run_baseline("xgboost", cfg, **split.train_val(), task="multiclass", seed=0)
    cfg = quick_cfg("adam")
    cfg["params"]["hidden"] = [7]
    with pytest.raises(ValueError, match=r"hidden=\[7\] is not among trainer\.space\.hidden"):
        run_baseline("adam", cfg, **split.train_val(), task="multiclass", seed=0)


@pytest.mark.parametrize("name", SEARCHES)
def test_trial_zero_is_the_default_and_every_method_gets_the_same_k(
    name, splits, quick_cfg
) -> None:
    """One tuning config -> 1 + K trials for every method; trial 0 runs exactly the default
    configuration (params under the budget), the others are sampled from the space."""
    split = splits["multiclass"]
    cfg = quick_cfg(CONFIG_OF[name])
    tuning = {"n_samples": 2, "sampler": "random", "trial_time_limit_s": 30}
    result = run_baseline(name, cfg, **split.train_val(), task="multiclass", seed=0,
                          tuning=tuning)  # fmt: skip
    assert result.n_trials == 3
    assert [t.number for t in result.trials] == [0, 1, 2]
    assert [t.origin for t in result.trials] == ["default", "sampled", "sampled"]
    assert result.trials[0].params == budget_params(cfg)
    tuned = [d.name for d in parse_space(cfg["space"])]
    assert all(set(t.params) == set(budget_params(cfg)) for t in result.trials)
    assert any(t.params[k] != budget_params(cfg)[k] for t in result.trials[1:] for k in tuned)
    assert result.default_val_score == result.trials[0].val_score
    assert not any(t.timed_out for t in result.trials)
    probabilities = result.default_evaluate(split.x_test, split.y_test)
    assert 0 <= probabilities["accuracy"] <= 1


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_sampler_is_seeded(sampler, splits, quick_cfg) -> None:
    split = splits["binary"]
    tuning = TuningSettings(n_samples=4, sampler=sampler, tpe_startup_trials=2)

    def sampled(seed: int) -> list[dict]:
        result = run_baseline("xgboost", quick_cfg("xgboost"), **split.train_val(),
                              task="binary", seed=seed, tuning=tuning)  # fmt: skip
        return [t.params for t in result.trials]

    first = sampled(0)
    assert sampled(0) == first  # same seed -> same trials
    other = sampled(1)
    assert other[0] == first[0]  # the default does not depend on the seed
    assert other[1:] != first[1:]


@pytest.mark.parametrize("name", SEARCHES)
def test_timed_out_trials_are_kept_scored_and_recorded(name, splits, quick_cfg) -> None:
    """A limit shorter than one epoch / boosting round: every fit stops at its first step (LM,
    whose engine checks the limit inside an epoch, before it; the others after it),
    keeps that model, is scored and is recorded as timed out."""
    split = splits["multiclass"]
    tuning = TuningSettings(n_samples=1, trial_time_limit_s=1e-9)
    result = run_baseline(name, quick_cfg(CONFIG_OF[name]), **split.train_val(),
                          task="multiclass", seed=0, tuning=tuning)  # fmt: skip
    assert result.n_trials == 2 and result.n_timed_out == 2
    assert all(t.timed_out for t in result.trials)
    assert all(math.isfinite(t.val_score) for t in result.trials)
    assert all(t.best_iteration <= 1 for t in result.trials)
    prediction = result.predict(split.x_test)
    np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-5)


def test_run_baseline_rejects_unknown_names_and_bad_splits(splits, quick_cfg) -> None:
    arrays = splits["binary"].train_val()
    with pytest.raises(ValueError, match="unknown baseline 'lightgbm'"):
        run_baseline("lightgbm", {}, **arrays, task="binary", seed=0)
    with pytest.raises(ValueError, match="x_val has 3 rows but y_val has"):
        run_baseline(
            "xgboost",
            quick_cfg("xgboost"),
            **(arrays | {"x_val": arrays["x_val"][:3]}),
            task="binary",
            seed=0,
        )


def test_regression_val_scores_follow_inverse_target_but_selection_does_not(
    splits, quick_cfg
) -> None:
    split = splits["regression"]
    cfg = quick_cfg("xgboost")
    tuning = TuningSettings(n_samples=2)
    standardised = run_baseline("xgboost", cfg, **split.train_val(), task="regression", seed=0,
                                tuning=tuning)  # fmt: skip
    original = run_baseline(
        "xgboost",
        cfg,
        **split.train_val(),
        task="regression",
        seed=0,
        tuning=tuning,
        inverse_target=split.inverse_target,
    )
    assert standardised.best_params == original.best_params
    inverse = split.inverse_target
    scale = float(inverse(np.ones((1, 1)))[0, 0] - inverse(np.zeros((1, 1)))[0, 0])
    for a, b in zip(standardised.trials, original.trials, strict=True):
        assert a.params == b.params
        assert b.val_score == pytest.approx(a.val_score * scale, rel=1e-5)
        assert not math.isnan(a.val_score)


def test_the_method_registry_and_the_store_vocabulary_name_the_same_methods(conf_dir) -> None:
    from lmbench.baselines.dispatch import METHODS
    from lmbench.harness.context import own_model
    from lmbench.tracking import schema

    assert set(METHODS) == set(schema.METHODS)
    assert own_model({"trainer": {"name": "xgboost", "runner": "baseline"}}) == "xgboost"
    assert own_model({"trainer": {"name": "lm", "runner": "baseline"}}) == "mlp_grid"
    for name in METHODS:  # each method's trainer config names it, so the harness finds it
        assert OmegaConf.load(conf_dir / f"{CONFIG_OF[name]}.yaml").name == name
