"""WGAN (article 35): exact 1-D W1 from sorted samples vs brute force, duality, the critic's constraints."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from spaces_code.wgan import (Critic, clip_weights_, critic_gap, gradient_penalty, kantorovich_potential_1d,
                              wasserstein1_1d)


def cdf_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Naive float64 reference: the integral of |F_x(t) - F_y(t)| between consecutive merged points."""
    knots = np.sort(np.concatenate([x, y]))
    f_x = np.searchsorted(np.sort(x), knots, side="right") / len(x)
    f_y = np.searchsorted(np.sort(y), knots, side="right") / len(y)
    return float(np.sum(np.abs(f_x - f_y)[:-1] * np.diff(knots)))


@pytest.mark.parametrize("n,m", [(1, 1), (7, 7), (300, 300), (5, 3), (1, 9), (128, 77), (1000, 999)])
def test_matches_cdf_formula(device, generator, n, m):
    x = torch.randn(n, generator=generator, device=device)
    y = 0.5 + 2 * torch.randn(m, generator=generator, device=device)
    ref = cdf_reference(x.cpu().double().numpy(), y.cpu().double().numpy())
    assert abs(wasserstein1_1d(x, y).item() - ref) <= 1e-5 * max(1.0, ref)
    assert abs(wasserstein1_1d(x.double(), y.double()).item() - ref) <= 1e-12 * max(1.0, ref)


def test_matches_brute_force_over_permutations():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.randn(6, generator=gen, dtype=torch.float64)
        y = torch.rand(6, generator=gen, dtype=torch.float64) * 3
        best = min((x - y[list(p)]).abs().mean().item() for p in itertools.permutations(range(6)))
        assert abs(wasserstein1_1d(x, y).item() - best) < 1e-12


def test_batch_dims_and_basic_properties(device, generator):
    x = torch.randn(3, 4, 50, generator=generator, device=device, dtype=torch.float64)
    y = torch.randn(3, 4, 20, generator=generator, device=device, dtype=torch.float64)
    w = wasserstein1_1d(x, y)
    assert w.shape == (3, 4)
    assert torch.allclose(w[1, 2], wasserstein1_1d(x[1, 2], y[1, 2]))
    assert torch.allclose(w, wasserstein1_1d(y, x))  # symmetric
    # translation: W1(x, x + c) = |c|; identical sets: 0
    assert torch.allclose(wasserstein1_1d(x, x + 1.5), torch.full((3, 4), 1.5, device=device, dtype=torch.float64))
    assert wasserstein1_1d(x, x).abs().max().item() == 0
    # repeating every sample leaves the empirical distribution, hence W1, unchanged
    assert torch.allclose(wasserstein1_1d(x, y.repeat_interleave(3, dim=-1)), w, atol=1e-12)


def test_device_matches_cpu(device):
    x = torch.randn(4, 333, generator=torch.Generator().manual_seed(1))
    y = torch.randn(4, 101, generator=torch.Generator().manual_seed(2)) + 1
    assert torch.allclose(wasserstein1_1d(x.to(device), y.to(device)).cpu(), wasserstein1_1d(x, y), atol=1e-6)


def test_rejects_empty():
    with pytest.raises(ValueError):
        wasserstein1_1d(torch.zeros(0), torch.zeros(3))


@pytest.mark.parametrize("n,m", [(200, 200), (150, 60)])
def test_kantorovich_potential_attains_w1(device, generator, n, m):
    x = torch.randn(n, generator=generator, device=device, dtype=torch.float64)
    y = torch.cat([torch.randn(m // 2, generator=generator, device=device, dtype=torch.float64) - 2,
                   torch.randn(m - m // 2, generator=generator, device=device, dtype=torch.float64) + 1.5])
    # strong duality: E_x f* - E_y f* = W1 exactly
    gap = kantorovich_potential_1d(x, y, x).mean() - kantorovich_potential_1d(x, y, y).mean()
    assert abs(gap.item() - wasserstein1_1d(x, y).item()) < 1e-10
    # f* is 1-Lipschitz
    t = torch.linspace(-8, 8, 4001, device=device, dtype=torch.float64)
    f = kantorovich_potential_1d(x, y, t)
    assert (torch.diff(f).abs() / torch.diff(t)).max().item() <= 1 + 1e-9


def test_one_lipschitz_critic_never_exceeds_w1(generator):
    # any 1-Lipschitz f gives a lower bound: here f(t) = |t| and f(t) = sin(t)
    x = torch.randn(500, generator=generator, dtype=torch.float64)
    y = 3 * torch.rand(500, generator=generator, dtype=torch.float64)
    w1 = wasserstein1_1d(x, y).item()
    for f in (torch.abs, torch.sin, lambda t: -t):
        assert (f(x).mean() - f(y).mean()).item() <= w1 + 1e-12


def test_gradient_penalty_formula(device, generator):
    real = torch.randn(64, 3, generator=generator, device=device)
    fake = torch.randn(64, 3, generator=generator, device=device)
    # a linear critic with gradient a has penalty (|a| - 1)^2 exactly
    a = torch.tensor([0.6, -0.8, 1.2], device=device)
    assert abs(gradient_penalty(lambda v: v @ a, real, fake, generator).item() - (a.norm().item() - 1) ** 2) < 1e-5
    unit = a / a.norm()
    assert gradient_penalty(lambda v: v @ unit, real, fake, generator).item() < 1e-10


def test_weight_clipping_and_critic_gap(device):
    torch.manual_seed(0)
    critic = Critic(dim=1, hidden=16).to(device)
    clip_weights_(critic, 0.01)
    assert max(p.abs().max().item() for p in critic.parameters()) <= 0.01
    real = torch.zeros(10, 1, device=device)
    assert critic_gap(critic, real, real).item() == 0
