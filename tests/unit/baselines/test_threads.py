"""``n_threads: auto``: one thread for small jobs, the available cores for large ones."""

from __future__ import annotations

import pytest
import yaml

from lmbench.baselines.adam import AdamSettings
from lmbench.baselines.lm import LMSettings
from lmbench.baselines.tlm import TLMSettings
from lmbench.baselines.torch_utils import (
    AUTO_THREADS_MIN_WORK,
    parse_threads,
    resolve_threads,
    thread_cap,
)

from .conftest import CONF_DIR


def test_auto_uses_one_thread_below_the_work_threshold(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert resolve_threads("auto", 1_000, 161) == 1  # the quick lm_tuned job
    assert resolve_threads("auto", 5_000, 1_537) == 1  # 1.2e10
    assert resolve_threads("auto", 10_000, 1_537) == thread_cap()  # 2.4e10
    assert resolve_threads("auto", 1, int(AUTO_THREADS_MIN_WORK**0.5) + 1) == thread_cap()
    assert resolve_threads(3, 10, 10) == 3  # an int is used as given


def test_the_cap_follows_launcher_workers(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert thread_cap() == 1
    assert resolve_threads("auto", 10**6, 10**4) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert thread_cap() >= 1


@pytest.mark.parametrize("bad", [0, -1, "two", None, "1.5x"])
def test_a_bad_setting_names_the_knob(bad) -> None:
    with pytest.raises(ValueError, match=r"trainer\.params\.n_threads"):
        parse_threads(bad)


def test_settings_and_configs_default_to_auto() -> None:
    assert LMSettings.from_mapping({}).n_threads == "auto"
    assert AdamSettings.from_mapping({}).n_threads == "auto"
    assert LMSettings.from_mapping({"n_threads": "AUTO"}).n_threads == "auto"
    assert AdamSettings.from_mapping({"n_threads": 2}).n_threads == 2
    assert TLMSettings.from_mapping({}).n_threads == "auto"
    for name in ("lm_tuned", "adam", "tlm"):
        params = yaml.safe_load((CONF_DIR / f"{name}.yaml").read_text())["params"]
        assert params["n_threads"] == "auto"
