"""flatten_config and the MLflow-limit helpers: pure functions, no store."""

from __future__ import annotations

from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from omegaconf import OmegaConf

from lmbench.tracking import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    flatten_config,
    sanitize_key,
    truncate_value,
)


def test_nested_dicts_become_dotted_keys_and_lists_their_string_form() -> None:
    cfg = {
        "model": {"widths": [64, 32], "activation": "tanh", "head": {"bias": True}},
        "trainer": {"mu": 1e-3, "max_epochs": 50, "val": None},
        "seed": 0,
        "extras": {},
        "tags": ("a", "b"),
        "path": Path("/data/x.csv"),
    }
    assert flatten_config(cfg) == {
        "model.widths": "[64, 32]",
        "model.activation": "tanh",
        "model.head.bias": "True",
        "trainer.mu": "0.001",
        "trainer.max_epochs": "50",
        "trainer.val": "None",
        "seed": "0",
        "extras": "{}",
        "tags": "['a', 'b']",
        "path": "/data/x.csv",
    }


def test_custom_separator_and_order_follow_input() -> None:
    flat = flatten_config({"b": {"y": 1, "x": 2}, "a": 3}, sep="/")
    assert list(flat) == ["b/y", "b/x", "a"]


def test_omegaconf_input_is_resolved() -> None:
    cfg = OmegaConf.create({"data": {"rows": 100}, "model": {"inputs": "${data.rows}"}})
    assert flatten_config(cfg) == {"data.rows": "100", "model.inputs": "100"}


def test_non_mapping_is_rejected() -> None:
    with pytest.raises(TypeError, match="mapping"):
        flatten_config([1, 2])  # type: ignore[arg-type]


def test_values_truncated_only_when_asked() -> None:
    long = "x" * 7000
    assert flatten_config({"k": long})["k"] == long
    cut = flatten_config({"k": long}, max_value_length=MAX_PARAM_VALUE_LENGTH)["k"]
    assert len(cut) == MAX_PARAM_VALUE_LENGTH
    assert cut.startswith("xxx") and "truncated 7000 chars" in cut


def test_truncation_is_deterministic_and_keeps_distinct_values_distinct() -> None:
    a = "p" * 6500 + "A"
    b = "p" * 6500 + "B"
    assert truncate_value(a) == truncate_value(a)
    assert truncate_value(a) != truncate_value(b)
    assert truncate_value("short") == "short"
    assert len(truncate_value("z" * 50, limit=10)) == 10


def test_flattened_params_and_tags_pass_mlflow_validation() -> None:
    from mlflow.utils import validation

    long_key = "k" * (MAX_KEY_LENGTH + 40)
    flat = flatten_config(
        {long_key: "v" * (MAX_PARAM_VALUE_LENGTH + 500)}, max_value_length=MAX_PARAM_VALUE_LENGTH
    )
    ((key, value),) = flat.items()
    key = sanitize_key(key)
    assert len(value) == MAX_PARAM_VALUE_LENGTH
    validation._validate_param(key, value)
    validation._validate_tag(key, truncate_value("t" * 9000, MAX_TAG_VALUE_LENGTH))
    with pytest.raises(Exception, match="maximum length"):
        validation._validate_param(key + "k", value)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("model.widths", "model.widths"),
        ("dataset.rename.Sepal Length (cm)", "dataset.rename.Sepal Length _cm_"),
        ("a/b:c", "a_b_c"),
        ("..up", "_..up"),
        ("", "_"),
    ],
)
def test_sanitize_key_gives_names_mlflow_accepts(key: str, expected: str) -> None:
    from mlflow.utils.validation import _validate_param_name

    assert sanitize_key(key) == expected
    _validate_param_name(sanitize_key(key))  # raises if MLflow would refuse it


def test_sanitize_key_caps_length_and_stays_unique() -> None:
    a, b = "k" * 300 + "1", "k" * 300 + "2"
    assert len(sanitize_key(a)) == MAX_KEY_LENGTH
    assert sanitize_key(a) != sanitize_key(b)


_names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_leaves = st.one_of(st.integers(), st.booleans(), st.none(), _names)
_trees = st.recursive(
    st.dictionaries(_names, _leaves, min_size=1, max_size=4),
    lambda children: st.dictionaries(_names, st.one_of(_leaves, children), min_size=1, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(_trees)
def test_every_leaf_is_reachable_from_its_dotted_key(tree: dict) -> None:
    flat = flatten_config(tree)

    def leaves(node: dict) -> int:
        return sum(leaves(v) if isinstance(v, dict) else 1 for v in node.values())

    assert len(flat) == leaves(tree)
    for key, text in flat.items():
        node = tree
        for part in key.split("."):
            node = node[part]
        assert text == str(node)
