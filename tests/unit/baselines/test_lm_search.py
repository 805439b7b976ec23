"""LM under the baselines' budget rules: ``search_lm`` / ``run_baseline("lm", ...)`` with the
shipped ``conf/trainer/lm_grid.yaml``, end to end on the three tasks, with the record it keeps,
its independence from the test split and its configuration errors."""

from __future__ import annotations

import inspect
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
    grid_points,
    run_baseline,
    search_lm,
)
from lmbench.baselines.adam import evaluation_loss
from lmbench.metrics import CLASSIFICATION_METRICS, PRIMARY_METRIC, REGRESSION_METRICS, is_better

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
    """The shipped lm_grid.yaml, quick budget, single-threaded, plus ``params`` overrides (a key
    overridden here is also taken out of the grid, which would otherwise win)."""

    def make(budget: str = "quick", **params) -> dict:
        cfg = quick_cfg("lm_grid", budget=budget, threads=None)
        cfg["params"].update({"n_threads": 1, **params})
        for key in params:
            cfg["grid"][budget].pop(key, None)
        return cfg

    return make


def test_shipped_config_grids(conf_dir) -> None:
    cfg = OmegaConf.load(conf_dir / "lm_grid.yaml")  # as Hydra will hand it over
    assert cfg.name == "lm" and cfg.budget == "full" and set(cfg.grid) == set(BUDGETS)
    full = grid_points(cfg)
    quick = grid_points(OmegaConf.merge(cfg, {"budget": "quick"}))
    assert len(full) == 12 and len(quick) == 2
    settings = [LMSettings.from_mapping(p) for p in full]  # all valid, typed (YAML ints -> float)
    assert {(s.mu_init, s.demping_coef, s.hidden) for s in settings} == {
        (mu, coef, hidden)
        for mu in (0.1, 1.0, 10.0)
        for coef in (3.0, 10.0)
        for hidden in ((16,), (32, 16))
    }
    assert all(s.patience == 10 and s.damping == "seed" for s in settings)
    assert set(cfg.params) == set(LMSettings.__dataclass_fields__)  # every knob is documented
    assert "lm" in SEARCHES


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_lm_end_to_end_through_run_baseline(task, splits, lm_cfg) -> None:
    split = splits[task]
    result = run_baseline(
        "lm", lm_cfg(loss="mse"), **split.train_val(), task=task, seed=0,
        inverse_target=split.inverse_target,
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

    # the search record
    assert result.primary_metric == PRIMARY_METRIC[task][0]
    assert result.grid_size == len(result.grid_scores) == len(result.runs) == 2
    assert result.best_params in [p.params for p in result.grid_scores]
    assert not any(is_better(task, p.val_score, result.best_val_score) for p in result.grid_scores)
    assert result.best_val_score == result.best_val_metrics[result.primary_metric]
    assert not math.isnan(result.best_val_score)
    assert 0 < result.best_fit_time_s <= result.search_time_s
    n_parameters = sum(p.numel() for p in result.model.parameters())
    assert result.model_size == {"n_parameters": n_parameters}
    for score, run in zip(result.grid_scores, result.runs, strict=True):
        assert score.best_iteration == run.best_epoch <= run.epochs <= 20  # quick max_epochs
        assert run.stop_reason in {"max_epochs", "min_error", "validation_patience", "mu_max"}
        assert run.n_parameters == n_parameters  # the quick grid has one width

    # the selected run's history: one entry per epoch, epoch 0 (initial state) included
    history = result.history
    assert set(history) == HISTORY_KEYS
    best = result.runs[result.grid_scores.index(_selected(result))]
    assert {len(v) for v in history.values()} == {best.epochs + 1}
    assert history["trials"][0] == 0 and history["epoch_time_s"][0] == 0.0
    assert all(t >= 1 for t in history["trials"][1:])
    assert history["mu"][0] == result.best_params["mu_init"]
    # validation patience restored the best-validation weights
    assert history["val_loss"][best.best_epoch] == min(history["val_loss"])
    restored = evaluation_loss(result.model, split.x_val, split.y_val, task, "mse")
    assert restored == pytest.approx(min(history["val_loss"]), rel=1e-5)


def _selected(result):
    return next(p for p in result.grid_scores if p.params == result.best_params)


def test_selection_is_identical_whatever_the_test_split(leak_split, lm_cfg) -> None:
    for parameter in inspect.signature(search_lm).parameters:
        assert "test" not in parameter
    honest, adversarial = leak_split(flip_test=False), leak_split(flip_test=True)

    def harness_like(split: dict) -> tuple:
        result = run_baseline(
            "lm", lm_cfg(), task="binary", seed=0,
            **{k: split[k] for k in ("x_train", "y_train", "x_val", "y_val")},
        )  # fmt: skip
        return result, result.evaluate(split["x_test"], split["y_test"])

    result_a, test_a = harness_like(honest)
    result_b, test_b = harness_like(adversarial)
    assert result_a.best_params == result_b.best_params
    assert [(p.params, p.val_metrics, p.best_iteration) for p in result_a.grid_scores] == [
        (p.params, p.val_metrics, p.best_iteration) for p in result_b.grid_scores
    ]
    assert result_a.history["val_loss"] == result_b.history["val_loss"]
    probe = honest["x_val"]
    np.testing.assert_array_equal(result_a.predict(probe), result_b.predict(probe))
    assert test_a["roc_auc"] > 0.7  # the two test splits really are opposite problems
    assert test_b["roc_auc"] == pytest.approx(1 - test_a["roc_auc"])

    # control: a search that did see the adversarial test split (as validation) records
    # different scores, so the comparison above would catch a leak
    leaky, _ = harness_like(
        dict(adversarial, x_val=adversarial["x_test"], y_val=adversarial["y_test"])
    )
    leaky_scores = [p.val_metrics for p in leaky.grid_scores]
    assert leaky_scores != [p.val_metrics for p in result_a.grid_scores]


def test_every_point_starts_from_the_seeded_weights(splits) -> None:
    """Same seed -> same initial network at every point of one width (the epoch-0 loss of the
    selected run does not depend on which point won), and a different seed changes it."""
    split = splits["multiclass"]
    losses = {}
    for mu in (0.1, 1.0, 100.0):
        cfg = {"budget": "quick", "params": {"n_threads": 1, "max_epochs": 3},
               "grid": {"quick": {"mu_init": [mu]}}}  # fmt: skip
        result = search_lm(**split.train_val(), task="multiclass", cfg=cfg, seed=0)
        losses[mu] = result.history["train_loss"]
    assert losses[0.1][0] == losses[1.0][0] == losses[100.0][0]
    assert losses[0.1][1:] != losses[100.0][1:]  # mu_init reached the damping rule
    other_seed = search_lm(**split.train_val(), task="multiclass", cfg=cfg, seed=1)
    assert other_seed.history["train_loss"][0] != losses[0.1][0]


def test_model_factory_fixes_the_network(splits, lm_cfg) -> None:
    split = splits["binary"]

    def factory() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(30, 4), torch.nn.Tanh(),
                                   torch.nn.Linear(4, 2), torch.nn.Softmax(dim=1))  # fmt: skip

    with pytest.raises(ValueError, match=r"must not set \['activation', 'dtype', 'hidden'\]"):
        search_lm(**split.train_val(), task="binary", cfg=lm_cfg(), seed=0, model_factory=factory)
    cfg = {"budget": "quick", "params": {"n_threads": 1, "max_epochs": 5},
           "grid": {"quick": {"mu_init": [1.0, 10.0]}}}  # fmt: skip
    result = run_baseline("lm", cfg, **split.train_val(), task="binary", seed=0,
                          model_factory=factory)  # fmt: skip
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
        run_baseline("lm", lm_cfg(**params), **split.train_val(), task="binary", seed=0)


def test_classification_targets_must_be_one_hot(splits, lm_cfg) -> None:
    arrays = splits["binary"].train_val()
    labels = arrays["y_train"].argmax(axis=1)
    with pytest.raises(ValueError, match=r"one-hot rows \(n, n_classes >= 2\).*\(341,\)"):
        run_baseline("lm", lm_cfg(), **(arrays | {"y_train": labels}), task="binary", seed=0)


def test_max_train_rows_null_disables_the_guard(splits, lm_cfg) -> None:
    split = splits["multiclass"]
    cfg = lm_cfg(max_train_rows=None, max_epochs=2)
    assert run_baseline("lm", cfg, **split.train_val(), task="multiclass", seed=0).grid_size == 2


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_lm_classifier_rows_minimise_cross_entropy_by_default(task, splits, lm_cfg) -> None:
    """``loss: auto``: logits trained with cross-entropy, softmax probabilities predicted, and the
    restored best-validation weights give the lowest validation cross-entropy of the history."""
    split = splits[task]
    result = run_baseline("lm", lm_cfg(), **split.train_val(), task=task, seed=0)
    prediction = result.predict(split.x_test)
    np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-5)
    metric, threshold = THRESHOLDS[task]
    assert result.evaluate(split.x_test, split.y_test)[metric] > threshold
    best = result.runs[result.grid_scores.index(_selected(result))]
    history = result.history
    assert history["val_loss"][best.best_epoch] == min(history["val_loss"])
    with torch.no_grad():
        logits = result.model(torch.as_tensor(split.x_val, dtype=torch.float32))
        restored = torch.nn.functional.cross_entropy(
            logits, torch.as_tensor(split.y_val, dtype=torch.float32)
        )
    assert float(restored) == pytest.approx(min(history["val_loss"]), rel=1e-5)
