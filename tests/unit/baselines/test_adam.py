"""Adam baseline: best-weights restore, equal starts per trial, losses, config checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmbench.baselines import AdamSettings, TuningSettings, search_adam
from lmbench.baselines.adam import evaluation_loss
from lmbench.core import get_weights_count

#: One configuration: the default trial only.
DEFAULT_ONLY = TuningSettings(n_samples=0)


def _cfg(space: dict | None = None, **params) -> dict:
    """An Adam config of ``params`` (lr 0.01 unless given), an optional space, no budget
    overrides."""
    params.setdefault("n_threads", 1)
    params.setdefault("lr", 0.01)
    return {"budget": "quick", "params": params, "space": space or {}, "budgets": {"quick": {}}}


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_early_stopping_restores_the_best_validation_weights(loss, splits, factory_for) -> None:
    split = splits["multiclass"]
    # a wide net, a high learning rate and 1/4 of wine's train rows: overfits within a few epochs
    x_train, y_train = split.x_train[::4], split.y_train[::4]
    cfg = _cfg(lr=0.05, batch_size=8, max_epochs=300, patience=5, loss=loss)
    result = search_adam(
        x_train, y_train, split.x_val, split.y_val,
        task="multiclass", cfg=cfg, seed=0, tuning=DEFAULT_ONLY,
        model_factory=lambda: torch.nn.Sequential(
            torch.nn.Linear(13, 64), torch.nn.Tanh(), torch.nn.Linear(64, 3), torch.nn.Softmax(1)
        ),
    )  # fmt: skip
    val_history = result.history["val_loss"]
    best_epoch = result.trials[0].best_iteration
    assert len(val_history) < 300, "early stopping never triggered"
    assert len(val_history) == best_epoch + 5  # patience epochs after the best one
    assert val_history[-1] > min(val_history)  # restoring changes something
    assert best_epoch == int(np.argmin(val_history)) + 1
    restored = evaluation_loss(result.model, split.x_val, split.y_val, "multiclass", loss)
    assert restored == pytest.approx(min(val_history), rel=1e-6)


@pytest.mark.parametrize(
    ("task", "expected"), [("multiclass", "cross_entropy"), ("regression", "mse")]
)
def test_auto_loss_is_the_one_lm_minimises_for_the_task(task, expected, splits) -> None:
    split = splits[task]
    cfg = _cfg(max_epochs=5, patience=5, loss="auto", hidden=[8])
    result = search_adam(
        **split.train_val(), task=task, cfg=cfg, seed=0, tuning=DEFAULT_ONLY
    )
    best = result.history["val_loss"][result.trials[0].best_iteration - 1]
    restored = evaluation_loss(result.model, split.x_val, split.y_val, task, expected)
    assert restored == pytest.approx(best, rel=1e-6)
    other = "mse" if expected == "cross_entropy" else None
    if other:  # the two losses differ on the same weights, so the match above is informative
        assert evaluation_loss(result.model, split.x_val, split.y_val, task, other) != (
            pytest.approx(best, rel=1e-3)
        )


def test_every_trial_starts_from_the_same_weights(splits, factory_for) -> None:
    split = splits["binary"]
    cfg = _cfg(space={"lr": {"type": "categorical", "choices": [0.01]}}, max_epochs=3)
    result = search_adam(
        **split.train_val(), task="binary", cfg=cfg, seed=5, model_factory=factory_for(split),
        tuning=TuningSettings(n_samples=1),
    )  # fmt: skip
    first, second = result.trials
    assert first.params == second.params and first.val_metrics == second.val_metrics
    assert result.selected_trial == 0  # ties keep the earlier trial, the default


def test_seed_changes_the_run_and_repeats_it(splits, factory_for) -> None:
    split = splits["regression"]

    def run(seed: int) -> list[float]:
        result = search_adam(
            **split.train_val(), task="regression", cfg=_cfg(max_epochs=4), seed=seed,
            model_factory=factory_for(split), tuning=DEFAULT_ONLY,
        )  # fmt: skip
        return result.history["train_loss"]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_model_size_and_thread_setting_is_restored(splits, factory_for) -> None:
    split = splits["binary"]
    before = torch.get_num_threads()
    during = 2 if before == 1 else 1
    result = search_adam(
        **split.train_val(), task="binary", cfg=_cfg(max_epochs=2, n_threads=during), seed=0,
        model_factory=factory_for(split), tuning=DEFAULT_ONLY,
    )  # fmt: skip
    assert torch.get_num_threads() == before
    assert result.model_size == {"n_parameters": get_weights_count(factory_for(split)())}
    assert result.model_size["n_parameters"] == 30 * 16 + 16 + 16 * 2 + 2


def test_a_diverging_learning_rate_is_never_selected(splits, factory_for) -> None:
    split = splits["regression"]
    # the default diverges; the space also holds sane learning rates
    space = {"lr": {"type": "categorical", "choices": [1e12, 0.003, 0.01, 0.03]}}
    cfg = _cfg(space=space, lr=1e12, max_epochs=5, batch_size=32)
    result = search_adam(
        **split.train_val(), task="regression", cfg=cfg, seed=0, model_factory=factory_for(split),
        tuning=TuningSettings(n_samples=3, sampler="random"),
    )  # fmt: skip
    sane = [t for t in result.trials if t.params["lr"] < 0.1]
    assert sane, "the seeded sampler drew no sane learning rate; pick another seed"
    assert result.best_params["lr"] < 0.1
    assert np.isnan(result.trials[0].val_score) or all(
        result.trials[0].val_score > t.val_score for t in sane
    )


def test_bad_settings_name_the_knob(splits, factory_for) -> None:
    split = splits["binary"]
    with pytest.raises(ValueError, match="unknown trainer.params for adam: \\['momentum'\\]"):
        AdamSettings.from_mapping({"momentum": 0.9})
    with pytest.raises(ValueError, match="trainer.params.loss"):
        AdamSettings.from_mapping({"loss": "hinge"})
    with pytest.raises(ValueError, match="trainer.params.batch_size"):
        AdamSettings.from_mapping({"batch_size": 0})
    no_softmax = lambda: torch.nn.Sequential(torch.nn.Linear(30, 2))  # noqa: E731
    with pytest.raises(ValueError, match="cross_entropy needs an nn.Sequential"):
        search_adam(
            **split.train_val(), task="binary", cfg=_cfg(loss="cross_entropy"), seed=0,
            model_factory=no_softmax, tuning=DEFAULT_ONLY,
        )  # fmt: skip
    with pytest.raises(ValueError, match="output shape"):
        search_adam(
            **split.train_val(), task="binary", cfg=_cfg(), seed=0,
            model_factory=lambda: torch.nn.Linear(30, 1), tuning=DEFAULT_ONLY,
        )  # fmt: skip
