"""JL random projection: chi-square norm law, pairwise distances within 1±eps, SimHash angle estimates."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.random_projection import (angle_between, angle_from_bits, cosine_from_bits,
                                           distance_distortion, jl_dimension, pairwise_distances,
                                           random_projection, randomized_svd, simhash)


def test_squared_norm_ratio_is_chi_square_over_n(device, generator):
    # orthonormal inputs make the projected rows independent N(0, I/n): |Av|^2 ~ chi2_n / n exactly
    m, dim = 2000, 64
    projected = random_projection(torch.eye(m, dtype=torch.float64, device=device), dim, generator)
    ratio = projected.pow(2).sum(-1)  # (m,)
    # tolerances: 4 standard errors of the mean, ~4.5 of the sample variance
    assert abs(ratio.mean().item() - 1) <= 4 * math.sqrt(2 / dim / m)
    assert abs(ratio.var().item() / (2 / dim) - 1) <= 0.15


def test_projection_is_one_shared_linear_map(device):
    x = torch.randn(7, 30, dtype=torch.float64, device=device)
    seed = 11
    projected = random_projection(x, 5, torch.Generator(device=device).manual_seed(seed))
    a_t = random_projection(torch.eye(30, dtype=torch.float64, device=device), 5,
                            torch.Generator(device=device).manual_seed(seed))  # (30, 5) = A^T
    torch.testing.assert_close(projected, x @ a_t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_jl_dimension_keeps_all_pairwise_distances(device, seed):
    generator = torch.Generator(device=device).manual_seed(seed)
    n_points, m, eps = 50, 500, 0.5
    x = torch.randn(n_points, m, generator=generator, device=device)
    dim = jl_dimension(n_points, eps)
    assert dim < m
    squared = distance_distortion(x, random_projection(x, dim, generator)) ** 2
    # Dasgupta-Gupta: (1 - eps) |u - v|^2 <= |Au - Av|^2 <= (1 + eps) |u - v|^2 for every pair
    assert squared.min().item() >= 1 - eps and squared.max().item() <= 1 + eps


def test_distortion_shrinks_like_one_over_sqrt_dim(device, generator):
    x = torch.randn(40, 400, generator=generator, device=device, dtype=torch.float64)
    spreads = []
    for dim in (16, 64, 256):
        spreads.append((distance_distortion(x, random_projection(x, dim, generator)) ** 2).std().item())
    # std of chi2_n/n is sqrt(2/n); pairs share one projection, so allow 40% (worst of 100 seeds: 32%)
    for dim, spread in zip((16, 64, 256), spreads):
        assert abs(spread / math.sqrt(2 / dim) - 1) <= 0.4


def test_pairwise_distances_against_cdist(device, generator):
    x = torch.randn(9, 4, generator=generator, device=device, dtype=torch.float64)
    full = torch.cdist(x, x)
    i, j = torch.triu_indices(9, 9, offset=1)
    torch.testing.assert_close(pairwise_distances(x).cpu(), full.cpu()[i, j])


def test_simhash_angle_estimate(device, generator):
    # two vectors at a known angle in a random plane of R^32; 16384 bits give a standard error of at most
    # pi * 0.5 / 128 = 0.0123 rad on the angle: tolerance 0.05 rad (4 standard errors)
    q, _ = torch.linalg.qr(torch.randn(32, 2, generator=generator, device=device, dtype=torch.float64))
    angles = torch.tensor([0.0, 0.1, 0.5, 1.0, math.pi / 2, 2.5, 3.0, math.pi], dtype=torch.float64, device=device)
    u = q[:, 0].expand(len(angles), 32)
    v = torch.cos(angles)[:, None] * q[:, 0] + torch.sin(angles)[:, None] * q[:, 1]  # (8, 32)
    torch.testing.assert_close(angle_between(u, v), angles, rtol=0, atol=1e-6)
    bits = simhash(torch.cat([u, v * 3.7]), 16384, generator)  # scale does not matter
    estimate = angle_from_bits(bits[: len(angles)], bits[len(angles):])
    assert (estimate - angles).abs().max().item() <= 0.05
    assert estimate[0].item() == 0.0  # identical directions give identical codes
    assert (cosine_from_bits(bits[:1], bits[:1]) == 1).all()


def test_jl_dimension_formula():
    assert jl_dimension(10_000, 0.1) == math.ceil(4 * math.log(10_000) / (0.005 - 0.001 / 3))
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError):
            jl_dimension(100, bad)


def test_rejects_invalid_arguments(device):
    x = torch.randn(3, 4, device=device)
    for bad_dim in (0, -3, 2.0, True):
        with pytest.raises(ValueError):
            random_projection(x, bad_dim)
    with pytest.raises(ValueError):
        random_projection(x[0], 2)
    with pytest.raises(TypeError):
        random_projection(torch.ones(3, 4, dtype=torch.int64, device=device), 2)


def test_randomized_svd_recovers_a_low_rank_spectrum(device, generator):
    # rank-5 matrix plus 1e-3 noise: top-5 singular values within 1e-3 relative, subspace angle small
    left, _ = torch.linalg.qr(torch.randn(300, 5, generator=generator, device=device, dtype=torch.float64))
    right, _ = torch.linalg.qr(torch.randn(200, 5, generator=generator, device=device, dtype=torch.float64))
    spectrum = torch.tensor([50.0, 20.0, 10.0, 5.0, 2.0], dtype=torch.float64, device=device)
    noise = 1e-3 * torch.randn(300, 200, generator=generator, device=device, dtype=torch.float64)
    m = left * spectrum @ right.T + noise
    u, s, v = randomized_svd(m, 5, generator=generator)
    exact = torch.linalg.svdvals(m)[:5]
    torch.testing.assert_close(s, exact, rtol=1e-3, atol=0)
    # |U^T left| has singular values ~1 when the subspaces coincide
    assert torch.linalg.svdvals(u.T @ left).min().item() > 1 - 1e-4
    torch.testing.assert_close(u.T @ u, torch.eye(5, dtype=torch.float64, device=device), rtol=0, atol=1e-10)
    torch.testing.assert_close(m @ v, u * s, rtol=0, atol=1e-2)
