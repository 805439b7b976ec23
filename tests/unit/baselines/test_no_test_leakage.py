"""The tunings never see the test split.

The data make a leak visible: train and validation follow one rule, while the alternative test
split has its labels flipped (every model ranks the reverse way on it). If anything about the
test split reached the tuning, the selection record (trials sampled, scores, choice) would change
with it.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from lmbench.baselines import (
    TuningSettings,
    run_baseline,
    search_adam,
    search_catboost,
    search_lm,
    search_tlm,
    search_xgboost,
)

SEARCHES = [search_xgboost, search_catboost, search_adam, search_tlm, search_lm, run_baseline]
#: The default and two sampled configurations; TPE models the scores from the second sampled one
#: on, so a leak into any score would also change which configurations are sampled.
TUNING = TuningSettings(n_samples=2, tpe_startup_trials=1)


def _harness_like_run(name: str, cfg: dict, split: dict) -> tuple:
    """What the harness does: tune on train/val, then score the test split (two models)."""
    result = run_baseline(
        name,
        cfg,
        x_train=split["x_train"],
        y_train=split["y_train"],
        x_val=split["x_val"],
        y_val=split["y_val"],
        task="binary",
        seed=0,
        tuning=TUNING,
    )
    result.default_evaluate(split["x_test"], split["y_test"])
    return result, result.evaluate(split["x_test"], split["y_test"])


@pytest.mark.parametrize("name", ["xgboost", "catboost", "adam", "tlm", "lm"])
def test_selection_is_identical_whatever_the_test_split(name, quick_cfg, leak_split) -> None:
    cfg = quick_cfg("lm_tuned" if name == "lm" else name)
    honest = leak_split(flip_test=False)
    adversarial = leak_split(flip_test=True)
    for key in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(honest[key], adversarial[key])

    result_a, test_a = _harness_like_run(name, cfg, honest)
    result_b, test_b = _harness_like_run(name, cfg, adversarial)

    assert result_a.best_params == result_b.best_params
    assert [(p.params, p.val_metrics, p.best_iteration) for p in result_a.trials] == [
        (p.params, p.val_metrics, p.best_iteration) for p in result_b.trials
    ]
    probe = honest["x_val"]
    np.testing.assert_array_equal(result_a.predict(probe), result_b.predict(probe))
    # the two test splits really are different problems for the same model
    assert test_a["roc_auc"] > 0.7
    assert test_b["roc_auc"] == pytest.approx(1 - test_a["roc_auc"])

    # control: a tuning that did see the adversarial test split (here: as its validation split)
    # records different scores, so the comparison above would catch a leak.
    leaky = dict(adversarial, x_val=adversarial["x_test"], y_val=adversarial["y_test"])
    result_leaky, _ = _harness_like_run(name, cfg, leaky)
    assert [p.val_score for p in result_leaky.trials] != [
        p.val_score for p in result_a.trials
    ]


@pytest.mark.parametrize("search", SEARCHES, ids=lambda f: f.__name__)
def test_search_functions_cannot_take_test_data(search, leak_split) -> None:
    names = list(inspect.signature(search).parameters)
    assert not [n for n in names if "test" in n.lower()], names
    assert {"x_train", "y_train", "x_val", "y_val"} <= set(names)
    arrays = leak_split(flip_test=False)
    with pytest.raises(TypeError, match="x_test"):
        search(x_test=arrays["x_test"])  # type: ignore[call-arg]
