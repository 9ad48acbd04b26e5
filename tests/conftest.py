"""Shared fixtures: every numerical test runs on CPU and, where a GPU is present, on CUDA."""
from __future__ import annotations

import pytest
import torch

CUDA = torch.cuda.is_available()

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[pytest.mark.cuda,
               pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")],
    ),
]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Parametrises a test over cpu and cuda (the cuda case is marked ``cuda``)."""
    return torch.device(request.param)


@pytest.fixture
def generator(device) -> torch.Generator:
    """A seeded generator on the test's device."""
    return torch.Generator(device=device).manual_seed(1234)
