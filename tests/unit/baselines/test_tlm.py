"""The reference LM library (torch-levenberg-marquardt) as a tuned method: it learns real data
better than a trivial predictor, restores its best-validation weights, uses the task's loss, and
its mini-batch mode and settings errors behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmbench.baselines import TLMSettings, TuningSettings, run_baseline, search_tlm
from lmbench.metrics import evaluate_predictions

DEFAULT_ONLY = TuningSettings(n_samples=0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _trivial(task: str, y_train: np.ndarray, n: int) -> np.ndarray:
    """The best constant predictor: train class frequencies, or the train mean."""
    return np.repeat(np.asarray(y_train, dtype=np.float64).mean(axis=0, keepdims=True), n, axis=0)


@pytest.mark.parametrize(
    ("task", "metric", "margin"),
    [("binary", "log_loss", 0.3), ("multiclass", "log_loss", 0.5), ("regression", "rmse", 10.0)],
)
def test_tlm_beats_the_trivial_predictor(task, metric, margin, splits, quick_cfg) -> None:
    split = splits[task]
    result = run_baseline("tlm", quick_cfg("tlm"), **split.train_val(), task=task, seed=0,
                          tuning=DEFAULT_ONLY, inverse_target=split.inverse_target)  # fmt: skip
    tuned = result.evaluate(split.x_test, split.y_test, inverse_target=split.inverse_target)
    trivial = evaluate_predictions(task, split.y_test,
                                   _trivial(task, split.y_train, len(split.y_test)),
                                   inverse_target=split.inverse_target)  # fmt: skip
    assert tuned[metric] < trivial[metric] - margin, (tuned, trivial)
    assert result.name == "tlm" and result.trials[0].best_iteration >= 1
    assert result.model_size == {
        "n_parameters": sum(p.numel() for p in result.model.parameters())
    }


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_best_validation_weights_are_restored_under_the_task_loss(task, splits, quick_cfg) -> None:
    """Cross-entropy on logits for classification (softmax probabilities), MSE for regression;
    the returned weights have the lowest validation loss of the history."""
    split = splits[task]
    cfg = quick_cfg("tlm")
    cfg["budgets"]["quick"] = {"max_epochs": 60, "patience": 3}
    result = search_tlm(**split.train_val(), task=task, cfg=cfg, seed=0, tuning=DEFAULT_ONLY)
    history = result.history
    assert len(history["val_loss"]) < 60, "early stopping never triggered"
    x_val = torch.as_tensor(split.x_val)
    with torch.no_grad():
        output = result.model(x_val)
    if task == "regression":
        restored = F.mse_loss(output, torch.as_tensor(split.y_val))
    else:
        restored = F.cross_entropy(output, torch.as_tensor(split.y_val.argmax(axis=1)))
        np.testing.assert_allclose(result.predict(split.x_val).sum(axis=1), 1.0, rtol=1e-5)
    assert float(restored) == pytest.approx(min(history["val_loss"]), rel=1e-5)
    best_epoch = result.trials[0].best_iteration
    assert history["val_loss"][best_epoch - 1] == min(history["val_loss"])


def test_mini_batch_mode_trains_and_repeats_for_a_seed(splits, quick_cfg) -> None:
    split = splits["binary"]
    cfg = quick_cfg("tlm")
    cfg["params"]["batch_size"] = 100  # 341 train rows -> 4 even batches per epoch

    def run(seed: int) -> list[float]:
        result = search_tlm(**split.train_val(), task="binary", cfg=cfg, seed=seed,
                            tuning=DEFAULT_ONLY)  # fmt: skip
        assert result.evaluate(split.x_test, split.y_test)["roc_auc"] > 0.9
        return result.history["train_loss"]

    assert run(0) == run(0)
    assert run(0) != run(1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"dec_factor": 2.0}, r"0 < dec_factor < 1 < inc_factor"),
        ({"damping_start": 1e12}, r"damping_min <= damping_start <= damping_max"),
        ({"solve_method": "lu"}, r"trainer\.params\.solve_method must be one of"),
        ({"batch_size": 0}, r"trainer\.params\.batch_size must be positive or null"),
        ({"momentum": 0.9}, r"unknown trainer\.params for tlm: \['momentum'\]"),
    ],
)
def test_bad_settings_name_the_knob(values, message) -> None:
    with pytest.raises(ValueError, match=message):
        TLMSettings.from_mapping(values)
