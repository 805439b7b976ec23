"""Every config in conf/ and every named experiment composes; runs are reproducible."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from lmbench.harness.context import model_tag
from lmbench.harness.jobs import run_job, run_name

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_with(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=False)


@pytest.mark.parametrize("group", ["dataset", "model", "trainer", "tracking"])
def test_every_option_of_every_group_composes(group):
    names = options(group)
    assert names, group
    for name in names:
        cfg = compose_with([f"{group}={name}"])
        assert cfg[group] is not None


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(experiment):
    cfg = compose_with([f"+experiment={experiment}"])
    assert cfg.tracking.experiment_name


def test_same_config_gives_bit_identical_metrics():
    overrides = ["dataset=wine", "model=mlp_tiny", "trainer.max_epochs=6", "tracking=none"]
    first = run_job(compose_with(overrides))
    second = run_job(compose_with(overrides))
    assert first.test_metrics == second.test_metrics  # exact, not approximate
    third = run_job(compose_with([*overrides, "seed=1"]))
    assert third.test_metrics != first.test_metrics


@pytest.mark.parametrize(("trainer", "model"), [("lm", "mlp_small"), ("lm_tuned", "mlp_grid"),
                                                ("adam", "mlp_grid"), ("xgboost", "xgboost")])
def test_run_names_name_the_model_the_run_is_tagged_with(trainer, model):
    cfg = compose_with([f"trainer={trainer}", "dataset=iris", "model=mlp_small"])
    assert model_tag(cfg) == model
    assert run_name(cfg, "m", "iris").startswith(f"m-iris-{model}-s0-")


def test_a_job_of_zero_epochs_is_refused_naming_the_key():
    cfg = compose_with(["dataset=iris", "model=mlp_tiny", "trainer.max_epochs=0",
                        "tracking=none"])
    with pytest.raises(ValueError, match=r"trainer\.max_epochs must be >= 1 in a benchmark "
                                         r"job, got 0: .* untrained model"):
        run_job(cfg)
