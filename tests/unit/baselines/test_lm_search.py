"""LM under the baselines' tuning rules: ``search_lm`` / ``run_baseline("lm", ...)`` with the
shipped ``conf/trainer/lm_tuned.yaml``, end to end on the three tasks, with the record it keeps,
its independence from the test split and its configuration errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lmbench.baselines import (
    BUDGETS,
    SEARCHES,
    LMSearchResult,
    LMSettings,
    TuningSettings,
    budget_params,
    run_baseline,
    search_lm,
)
from lmbench.baselines.adam import evaluation_loss
from lmbench.core.history import REGULARIZATION_SERIES
from lmbench.metrics import CLASSIFICATION_METRICS, PRIMARY_METRIC, REGRESSION_METRICS, is_better

#: The default configuration and one sampled configuration.
TWO_TRIALS = TuningSettings(n_samples=1)
DEFAULT_ONLY = TuningSettings(n_samples=0)
HISTORY_KEYS = {"train_loss", "val_loss", "mu", "epoch_time_s", "trials"}
# What a working learner clears easily on these splits and a broken one does not: majority class
# gives AUC 0.5 / wine accuracy ~0.4; predicting the mean gives r2 ~0.
THRESHOLDS = {
    "binary": ("roc_auc", 0.95),
    "multiclass": ("accuracy", 0.85),
    "regression": ("r2", 0.2),
}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks on the shared 2-core VM: one thread is 5-10x faster and far less noisy."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def lm_cfg(quick_cfg):
    """The shipped lm_tuned.yaml, quick budget, single-threaded, plus ``params`` overrides (a key
    overridden here is also taken out of the space and the budget's overrides, so it is fixed)."""

    def make(budget: str = "quick", **params) -> dict:
        cfg = quick_cfg("lm_tuned", budget=budget, threads=None)
        cfg["params"].update({"n_threads": 1, **params})
        for key in params:
            cfg["space"].pop(key, None)
            cfg["budgets"][budget].pop(key, None)
        return cfg

    return make


def test_shipped_config(conf_dir) -> None:
    cfg = OmegaConf.load(conf_dir / "lm_tuned.yaml")  # as Hydra will hand it over
    assert cfg.name == "lm" and cfg.budget == "full" and set(cfg.budgets) == set(BUDGETS)
    full = LMSettings.from_mapping(budget_params(cfg))  # valid, typed (YAML ints -> float)
    quick = LMSettings.from_mapping(budget_params(OmegaConf.merge(cfg, {"budget": "quick"})))
    assert (full.mu_init, full.demping_coef, full.hidden) == (10.0, 10.0, (16,))  # the seed's
    assert full.patience == 10 and full.damping == "seed" and full.max_epochs == 100
    assert (quick.max_epochs, quick.patience) == (20, 5)
    assert set(cfg.space) == {"mu_init", "demping_coef", "hidden", "weight_decay"}
    assert cfg.space.weight_decay == OmegaConf.load(conf_dir / "adam.yaml").space.weight_decay
    assert set(cfg.params) == set(LMSettings.__dataclass_fields__)  # every knob is documented
    assert "lm" in SEARCHES


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_lm_end_to_end_through_run_baseline(task, splits, lm_cfg) -> None:
    split = splits[task]
    result = run_baseline(
        "lm", lm_cfg(loss="mse"), **split.train_val(), task=task, seed=0,
        tuning=TWO_TRIALS, inverse_target=split.inverse_target,
    )  # fmt: skip
    assert isinstance(result, LMSearchResult) and result.name == "lm"
    metrics = result.evaluate(split.x_test, split.y_test, inverse_target=split.inverse_target)
    expected = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    assert tuple(metrics) == expected
    metric, threshold = THRESHOLDS[task]
    assert metrics[metric] > threshold, metrics
    prediction = result.predict(split.x_test)
    assert prediction.shape == split.y_test.shape and prediction.dtype == np.float64
    if task == "regression":
        assert metrics["rmse"] > 10  # original units (diabetes std ~77), not standardised ~0.8
    else:
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-5)  # softmax head

    # the tuning record
    assert result.primary_metric == PRIMARY_METRIC[task][0]
    assert result.n_trials == len(result.trials) == len(result.runs) == 2
    assert result.best_params == result.trials[result.selected_trial].params
    assert not any(is_better(task, p.val_score, result.best_val_score) for p in result.trials)
    assert result.best_val_score == result.best_val_metrics[result.primary_metric]
    assert not math.isnan(result.best_val_score)
    assert 0 < result.best_fit_time_s <= result.search_time_s
    n_parameters = sum(p.numel() for p in result.model.parameters())
    assert result.model_size == {"n_parameters": n_parameters}
    for score, run in zip(result.trials, result.runs, strict=True):
        assert score.best_iteration == run.best_epoch <= run.epochs <= 20  # quick max_epochs
        assert run.stop_reason in {"max_epochs", "min_error", "validation_patience", "mu_max",
                                   "converged_ftol", "converged_xtol", "converged_gtol"}
    assert result.runs[result.selected_trial].n_parameters == n_parameters

    # the selected run's history: one entry per epoch, epoch 0 (initial state) included
    history = result.history
    assert set(history) == HISTORY_KEYS | set(REGULARIZATION_SERIES)  # weight_decay 1e-8 > 0
    best = result.runs[result.selected_trial]
    assert {len(v) for v in history.values()} == {best.epochs + 1}
    assert history["trials"][0] == 0 and history["epoch_time_s"][0] == 0.0
    assert all(t >= 1 for t in history["trials"][1:])
    assert history["mu"][0] == result.best_params["mu_init"]
    # validation patience restored the best-validation weights
    assert history["val_loss"][best.best_epoch] == min(history["val_loss"])
    restored = evaluation_loss(result.model, split.x_val, split.y_val, task, "mse")
    assert restored == pytest.approx(min(history["val_loss"]), rel=1e-5)


def test_every_trial_starts_from_the_seeded_weights(splits) -> None:
    """Same seed -> same initial network at every trial of one width (the epoch-0 loss of the
    selected run does not depend on which trial won), and a different seed changes it."""
    split = splits["multiclass"]
    losses = {}
    for mu in (0.1, 1.0, 100.0):
        cfg = {"budget": "quick", "params": {"n_threads": 1, "max_epochs": 3, "mu_init": mu},
               "budgets": {"quick": {}}}  # fmt: skip
        result = search_lm(
            **split.train_val(), task="multiclass", cfg=cfg, seed=0, tuning=DEFAULT_ONLY
        )
        losses[mu] = result.history["train_loss"]
    assert losses[0.1][0] == losses[1.0][0] == losses[100.0][0]
    assert losses[0.1][1:] != losses[100.0][1:]  # mu_init reached the damping rule
    other_seed = search_lm(
        **split.train_val(), task="multiclass", cfg=cfg, seed=1, tuning=DEFAULT_ONLY
    )
    assert other_seed.history["train_loss"][0] != losses[0.1][0]


def test_model_factory_fixes_the_network(splits, lm_cfg) -> None:
    split = splits["binary"]

    def factory() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(30, 4), torch.nn.Tanh(),
                                   torch.nn.Linear(4, 2), torch.nn.Softmax(dim=1))  # fmt: skip

    with pytest.raises(ValueError, match=r"must not set \['activation', 'dtype', 'hidden'\]"):
        search_lm(**split.train_val(), task="binary", cfg=lm_cfg(), seed=0, model_factory=factory)
    cfg = {"budget": "quick", "params": {"n_threads": 1, "max_epochs": 5, "mu_init": 10.0},
           "space": {"mu_init": {"type": "float", "low": 1.0, "high": 10.0}},
           "budgets": {"quick": {}}}  # fmt: skip
    result = run_baseline("lm", cfg, **split.train_val(), task="binary", seed=0,
                          model_factory=factory, tuning=TWO_TRIALS)  # fmt: skip
    assert result.model_size == {"n_parameters": 30 * 4 + 4 + 4 * 2 + 2}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_train_rows": 100}, r"341 rows, more than trainer\.params\.max_train_rows=100"),
        ({"momentum": 0.9}, r"unknown trainer\.params for lm: \['momentum'\]"),
        ({"damping": "dogleg"}, r"trainer\.params\.damping must be one of"),
        ({"patience": 0}, r"trainer\.params\.patience must be positive or null"),
        ({"demping_coef": 1}, "demping_coef"),
        ({"hidden": [8, 0]}, r"trainer\.params\.hidden must be widths >= 1"),
    ],
)
def test_config_errors_name_the_knob(params, message, splits, lm_cfg) -> None:
    split = splits["binary"]
    with pytest.raises(ValueError, match=message):
        run_baseline(
            "lm", lm_cfg(**params), **split.train_val(), task="binary", seed=0,
            tuning=DEFAULT_ONLY,
        )  # fmt: skip


def test_classification_targets_must_be_one_hot(splits, lm_cfg) -> None:
    arrays = splits["binary"].train_val()
    labels = arrays["y_train"].argmax(axis=1)
    with pytest.raises(ValueError, match=r"one-hot rows \(n, n_classes >= 2\).*\(341,\)"):
        run_baseline("lm", lm_cfg(), **(arrays | {"y_train": labels}), task="binary", seed=0)


def test_max_train_rows_null_disables_the_guard(splits, lm_cfg) -> None:
    split = splits["multiclass"]
    cfg = lm_cfg(max_train_rows=None, max_epochs=2)
    result = run_baseline(
        "lm", cfg, **split.train_val(), task="multiclass", seed=0, tuning=DEFAULT_ONLY
    )
    assert result.n_trials == 1


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_lm_classifier_rows_minimise_cross_entropy_by_default(task, splits, lm_cfg) -> None:
    """``loss: auto``: logits trained with cross-entropy, softmax probabilities predicted, and the
    restored best-validation weights give the lowest validation cross-entropy of the history."""
    split = splits[task]
    result = run_baseline("lm", lm_cfg(), **split.train_val(), task=task, seed=0,
                          tuning=TWO_TRIALS)  # fmt: skip
    prediction = result.predict(split.x_test)
    np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-5)
    metric, threshold = THRESHOLDS[task]
    assert result.evaluate(split.x_test, split.y_test)[metric] > threshold
    best = result.runs[result.selected_trial]
    history = result.history
    assert history["val_loss"][best.best_epoch] == min(history["val_loss"])
    with torch.no_grad():
        logits = result.model(torch.as_tensor(split.x_val, dtype=torch.float32))
        restored = torch.nn.functional.cross_entropy(
            logits, torch.as_tensor(split.y_val, dtype=torch.float32)
        )
    assert float(restored) == pytest.approx(min(history["val_loss"]), rel=1e-5)
