"""Benchmarks: threads pinned, the shared workloads importable.

The suite is skipped by default (``--benchmark-skip`` in pyproject); run it with
``.venv/bin/pytest tests/benchmarks --benchmark-only``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# The test modules import the shared workloads as a plain module (pytest runs with
# --import-mode=importlib, which does not put test folders on sys.path).
sys.path.insert(0, str(Path(__file__).parent))

import lm_speed_cases  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _pinned_threads() -> Iterator[None]:
    """The benchmarks' thread count for the whole session (restored afterwards)."""
    before = torch.get_num_threads()
    lm_speed_cases.pin_threads()
    yield
    torch.set_num_threads(before)
