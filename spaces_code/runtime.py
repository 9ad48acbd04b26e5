"""The one place where snippets choose a device and seed their randomness.

Library modules never call these: they take ``device`` from their inputs and randomness through an
explicit ``generator`` argument. Snippets call :func:`pick_device` and :func:`make_generator` once.
The build (``scripts/build.py --device``) passes its choice through ``SPACES_DEVICE``.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(name: str | None = None) -> torch.device:
    """``cuda`` when asked for (or ``auto`` and available), else ``cpu``.

    ``name`` defaults to the environment variable ``SPACES_DEVICE`` (set by the build), then ``auto``.
    """
    name = (name or os.environ.get("SPACES_DEVICE") or "auto").lower()
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}: use cpu, cuda or auto")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch.cuda.is_available() is False")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def make_generator(seed: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
    """Seed Python, NumPy and torch once and return a ``torch.Generator`` on ``device``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def best_time_ms(fn, device: torch.device | str = "cpu", repeats: int = 5) -> float:
    """Best wall-clock time of ``fn()`` over ``repeats`` runs after one warm-up, in milliseconds.

    For snippets that are declared ``# spaces: timing-dependent``; CUDA work is synchronised around
    each run so that the time covers the kernels, not only their launch.
    """
    import time

    cuda = torch.device(device).type == "cuda"
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)
