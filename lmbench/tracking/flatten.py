"""Turn a nested config into flat MLflow params: dotted keys, string values within MLflow limits.

Pure functions; the length limits are MLflow's own (``mlflow.utils.validation``), imported rather
than copied so that a change in MLflow is followed.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH as MAX_KEY_LENGTH,  # a param, metric or tag key (250 in MLflow 3)
)
from mlflow.utils.validation import (
    MAX_PARAM_VAL_LENGTH as MAX_PARAM_VALUE_LENGTH,  # a param value (6,000)
)
from mlflow.utils.validation import (
    MAX_TAG_VAL_LENGTH as MAX_TAG_VALUE_LENGTH,  # a tag value (8,000)
)

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "flatten_config",
    "sanitize_key",
    "to_plain",
    "truncate_value",
]

# Characters MLflow accepts in param/metric names on every OS (colon is refused on Windows).
_INVALID_KEY_CHARS = re.compile(r"[^\w.\- ]")


def _is_omegaconf(value: Any) -> bool:
    """True for an OmegaConf container, without importing omegaconf when nobody else has."""
    if "omegaconf" not in sys.modules:
        return False
    from omegaconf import DictConfig, ListConfig

    return isinstance(value, DictConfig | ListConfig)


def to_plain(value: Any) -> Any:
    """Convert a config (dicts, lists, OmegaConf containers, paths) to YAML/JSON-safe builtins.

    OmegaConf containers are resolved (interpolations filled in), so what is logged is what ran.
    Unknown objects become their ``str()``.
    """
    if _is_omegaconf(value):
        from omegaconf import OmegaConf

        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, PurePath):
        return str(value)
    # numpy / torch scalars behave like floats or ints once unwrapped
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return to_plain(item())
    return str(value)


def truncate_value(value: str, limit: int = MAX_PARAM_VALUE_LENGTH) -> str:
    """Shorten ``value`` to at most ``limit`` characters, deterministically.

    The tail is replaced by a marker with the original length and a short SHA-256, so two long
    values that differ only after the cut stay distinguishable. No warning is issued.
    """
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    marker = f"...[truncated {len(value)} chars sha256:{digest}]"
    if len(marker) >= limit:
        return marker[:limit]
    return value[: limit - len(marker)] + marker


def sanitize_key(key: str, limit: int = MAX_KEY_LENGTH) -> str:
    """Make ``key`` a valid MLflow param/metric name: bad characters become ``_``, length capped.

    Deterministic; a key cut to ``limit`` ends with a short hash of the full key to stay unique.
    """
    clean = _INVALID_KEY_CHARS.sub("_", key) or "_"
    if clean.startswith("."):
        # MLflow refuses names that normalise to another path ("." or "..x").
        clean = "_" + clean
    if len(clean) > limit:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        clean = clean[: limit - 9] + "-" + digest
    return clean


def _leaf_to_str(value: Any) -> str:
    """``str(value)``, with an integral float written as the integer (``10.0`` -> ``"10"``):
    a config schema types ``mu_init: 10`` as a float, and the param keeps how it was written
    (as ``config_hash`` does, for which ``10`` and ``10.0`` are one value)."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def flatten_config(
    mapping: Mapping[str, Any],
    sep: str = ".",
    *,
    max_value_length: int | None = None,
) -> dict[str, str]:
    """Flatten a nested mapping into ``{"a.b.c": "value"}`` for MLflow params.

    Nested mappings become ``sep``-joined keys; lists and tuples become their ``str()`` form
    (``"[64, 32]"``) rather than one param per element, so a sweep over widths is one column;
    an empty mapping is kept as ``"{}"`` so the key is not lost; every other leaf is ``str()``.
    OmegaConf containers are resolved first. Order follows the input. ``max_value_length``
    (default: no limit) truncates values with :func:`truncate_value`.
    """
    plain = to_plain(mapping)
    if not isinstance(plain, dict):
        raise TypeError(f"flatten_config expects a mapping, got {type(mapping).__name__}")
    out: dict[str, str] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            full = f"{prefix}{sep}{key}" if prefix else key
            if isinstance(value, dict) and value:
                walk(value, full)
            else:
                text = "{}" if isinstance(value, dict) else _leaf_to_str(value)
                if max_value_length is not None:
                    text = truncate_value(text, max_value_length)
                out[full] = text

    walk(plain, "")
    return out
