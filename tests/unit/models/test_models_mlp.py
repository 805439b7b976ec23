"""MLP builder: layer sizes, heads, dtypes, and the presets in conf/model/."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from lmbench.core.losses import LOSS_NAMES
from lmbench.models import (
    ACTIVATIONS,
    LOGIT_LOSSES,
    build_mlp,
    build_model,
    head_for_task,
    loss_for_task,
    probabilities,
)

MODEL_CONF_DIR = Path(__file__).resolve().parents[3] / "conf" / "model"
PRESET_WIDTHS = {
    "mlp_tiny": [8],
    "mlp_small": [16],
    "mlp_medium": [32, 16],
    "mlp_large": [64, 32],
}


def _weights(in_features: int, widths: list[int], out_features: int) -> int:
    sizes = [in_features, *widths, out_features]
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("hidden", [(), (5,), (6, 4), (8, 8, 3)])
def test_layers_and_parameter_count(hidden: tuple[int, ...]) -> None:
    model = build_mlp(11, 3, hidden=hidden, activation="relu", head="linear")
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == list(
        zip([11, *hidden], [*hidden, 3], strict=True)
    )
    assert sum(isinstance(m, nn.ReLU) for m in model) == len(hidden)
    assert _n_params(model) == _weights(11, list(hidden), 3)
    assert model(torch.randn(9, 11)).shape == (9, 3)


def test_softmax_head_gives_probabilities() -> None:
    torch.manual_seed(0)
    model = build_mlp(4, 2, hidden=(5,), head="softmax")
    assert isinstance(model[-1], nn.Softmax)
    out = model(torch.randn(20, 4) * 10)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(20))
    assert (out > 0).all()


def test_sigmoid_and_linear_heads() -> None:
    torch.manual_seed(0)
    sigmoid = build_mlp(4, 3, hidden=(5,), head="sigmoid")
    out = sigmoid(torch.randn(50, 4) * 10)
    assert ((out > 0) & (out < 1)).all() and not torch.allclose(out.sum(1), torch.ones(50))
    linear = build_mlp(4, 1, hidden=(5,), head="linear")
    assert isinstance(linear[-1], nn.Linear)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_builds_and_runs(activation: str) -> None:
    model = build_mlp(3, 2, hidden=(4,), activation=activation)
    assert model(torch.randn(5, 3)).shape == (5, 2)


def test_float64_models_compute_in_float64() -> None:
    model = build_mlp(3, 2, hidden=(4,), dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert model(torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"activation": "swishy"}, "unknown activation"),
        ({"head": "argmax"}, "unknown head"),
        ({"hidden": (4, 0)}, "hidden widths"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_mlp(3, 2, **kwargs)


def test_heads_by_task_follow_the_original_library() -> None:
    assert head_for_task("binary") == "softmax"
    assert head_for_task("multiclass") == "softmax"
    assert head_for_task("regression") == "linear"
    with pytest.raises(ValueError, match="unknown task"):
        head_for_task("ranking")


@pytest.mark.parametrize("preset", sorted(PRESET_WIDTHS))
def test_presets_parse_and_build(preset: str) -> None:
    cfg = OmegaConf.load(MODEL_CONF_DIR / f"{preset}.yaml")
    assert cfg.name == preset and list(cfg.hidden) == PRESET_WIDTHS[preset]
    classifier = build_model(cfg, in_features=10, out_features=3, task="multiclass")
    regressor = build_model(cfg, in_features=10, out_features=1, task="regression")
    assert isinstance(classifier[-1], nn.Softmax) and isinstance(regressor[-1], nn.Linear)
    assert _n_params(regressor) == _weights(10, PRESET_WIDTHS[preset], 1)
    assert isinstance(classifier[1], nn.Tanh)


def test_every_model_yaml_builds() -> None:
    paths = sorted(MODEL_CONF_DIR.glob("*.yaml"))
    assert {p.stem for p in paths} >= set(PRESET_WIDTHS)
    for path in paths:
        model = build_model(OmegaConf.load(path), 4, 2, "binary")
        assert model(torch.randn(3, 4)).shape == (3, 2)


def test_build_model_options_and_errors() -> None:
    cfg = {"hidden": [3], "activation": "sigmoid", "head": "sigmoid", "dtype": "float64"}
    model = build_model(cfg, 2, 1, "regression")
    assert isinstance(model[-1], nn.Sigmoid) and model[0].weight.dtype == torch.float64
    with pytest.raises(ValueError, match="unknown key"):
        build_model({"hidden": [3], "widths": [3]}, 2, 1, "regression")
    with pytest.raises(ValueError, match="kind"):
        build_model({"kind": "transformer"}, 2, 1, "regression")
    with pytest.raises(ValueError, match="dtype"):
        build_model({"dtype": "float16"}, 2, 1, "regression")


def test_the_losses_decide_logits_heads_and_probabilities() -> None:
    assert set(LOGIT_LOSSES) == {"cross_entropy", "sqrt_cross_entropy", "bce"}
    for loss in LOSS_NAMES:
        expected = "linear" if loss in LOGIT_LOSSES else "softmax"
        assert head_for_task("multiclass", loss) == expected
        assert head_for_task("regression", loss) == "linear"
    assert head_for_task("binary", "auto") == "softmax"  # not a loss name: the task's head
    assert loss_for_task("auto", "regression") == "mse"
    assert loss_for_task("auto", "binary") == "cross_entropy"
    assert loss_for_task("huber", "regression") == "huber"
    for loss in LOGIT_LOSSES:
        with pytest.raises(ValueError, match="classification loss"):
            loss_for_task(loss, "regression")
    z = torch.tensor([[0.5, -1.0, 2.0]])
    assert torch.equal(probabilities(z, "cross_entropy"), torch.softmax(z, dim=-1))
    assert torch.equal(probabilities(z, "sqrt_cross_entropy"), torch.softmax(z, dim=-1))
    assert torch.equal(probabilities(z, "bce"), torch.sigmoid(z))
    assert probabilities(z, "mse") is z and probabilities(z, "unknown") is z
