"""Estimator tests run single-threaded: on the shared 2-core VM, two OpenMP threads on these tiny
networks were 5-10x slower and noisy whenever the other core was busy."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
