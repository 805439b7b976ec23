"""The study's tiers as composed by Hydra: the standard tier's 5 seeds and six methods, the
medium tier's datasets, caps, budget and LM on the auto engine, and their make targets."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from lmbench.harness.context import method_label

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "lmbench" / "conf"
MEDIUM_DATASETS = {"penbased", "magic", "letter", "randhie", "cps1988", "diamonds",
                   "census_income"}
BASELINES = {"xgboost", "catboost", "adam", "tlm"}


def compose_with(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


def sweep(cfg) -> dict[str, set[str]]:
    return {k: set(str(v).split(",")) for k, v in cfg.hydra.sweeper.params.items()}


def test_standard_tier_runs_five_seeds_of_six_methods():
    cfg = compose_with(["+experiment=lm_vs_gbdt_standard"])
    params = sweep(cfg)
    assert params["trainer"] == {"lm_tuned", "lm_bayesian"} | BASELINES
    assert params["seed"] == {"0", "1", "2", "3", "4"} and len(params["dataset"]) == 19
    assert (cfg.tuning.n_samples, cfg.tuning.trial_time_limit_s) == (4, 20)
    assert (cfg.split.max_train_rows, cfg.split.max_eval_rows) == (1000, 1000)


def test_medium_tier_truncates_the_large_datasets_and_runs_lm_on_the_auto_engine():
    cfg = compose_with(["+experiment=lm_vs_gbdt_medium"])
    params = sweep(cfg)
    assert params["dataset"] == MEDIUM_DATASETS and params["seed"] == {"0", "1", "2"}
    assert params["trainer"] == {"lm_medium", "lm_bayesian_medium", "xgboost", "catboost",
                                 "adam_medium", "tlm_medium"}
    assert (cfg.split.max_train_rows, cfg.split.max_eval_rows) == (10_000, 5_000)
    assert (cfg.tuning.n_samples, cfg.tuning.trial_time_limit_s) == (1, 90)
    assert cfg.tags.tier == "medium" and cfg.tracking.experiment_name == "lm_vs_gbdt_medium"
    lm = compose_with(["+experiment=lm_vs_gbdt_medium", "trainer=lm_medium"]).trainer
    assert (method_label(lm), lm.params.engine) == ("lm", "auto")
    assert lm.space.weight_decay is not None  # tuned, as in the standard tier
    bayes = compose_with(["+experiment=lm_vs_gbdt_medium", "trainer=lm_bayesian_medium"]).trainer
    assert (method_label(bayes), bayes.params.engine) == ("lm_bayesian", "auto")
    assert bayes.params.regularization == "bayesian" and bayes.space.weight_decay is None
    assert set(bayes.space) - {"weight_decay"} == {"mu_init", "demping_coef", "hidden"}


def test_medium_tier_networks_share_widths_up_to_32_16_and_keep_their_method_tags():
    """Every network method searches the same widths there, without [64, 32] (one LM epoch of
    it outlasts a trial), and the runs keep the standard tier's method tags."""
    labels = {}
    standard_of = {"lm_medium": "lm_tuned", "lm_bayesian_medium": "lm_bayesian",
                   "adam_medium": "adam", "tlm_medium": "tlm"}
    for trainer, standard_name in standard_of.items():
        composed = compose_with(["+experiment=lm_vs_gbdt_medium", f"trainer={trainer}"]).trainer
        assert list(map(list, composed.space.hidden.choices)) == [[16], [32], [32, 16]], trainer
        standard = compose_with([f"trainer={standard_name}"]).trainer
        assert {k: v for k, v in composed.space.items() if k != "hidden"} == {
            k: v for k, v in standard.space.items() if k != "hidden"}, trainer
        labels[trainer] = method_label(composed)
    assert labels == {"lm_medium": "lm", "lm_bayesian_medium": "lm_bayesian",
                      "adam_medium": "adam", "tlm_medium": "tlm"}


def test_each_tier_has_a_make_target_with_its_own_resumable_store():
    makefile = (REPO / "Makefile").read_text()
    assert "study-medium:" in makefile
    assert "build/study-medium.db $(VENV)/bin/lmbench-run +experiment=lm_vs_gbdt_medium" in makefile
    assert "build/study.db $(VENV)/bin/lmbench-run +experiment=lm_vs_gbdt_standard" in makefile
