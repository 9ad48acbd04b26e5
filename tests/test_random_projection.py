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
    # tolerances: 5 standard errors of the mean; for the variance, the relative standard error of a sample
    # variance of chi2_n/n is sqrt((2 + 12/n) / m) = 0.033, and 0.17 is 5.1 of them (normal approximation:
    # each fails with probability < 1e-6 on any stream)
    assert abs(ratio.mean().item() - 1) <= 5 * math.sqrt(2 / dim / m)
    assert abs(ratio.var().item() / (2 / dim) - 1) <= 0.17


def test_projection_is_one_shared_linear_map(device, generator, seed):
    x = torch.randn(7, 30, dtype=torch.float64, generator=generator).to(device)
    projected = random_projection(x, 5, torch.Generator().manual_seed(seed))
    a_t = random_projection(torch.eye(30, dtype=torch.float64, device=device), 5,
                            torch.Generator().manual_seed(seed))  # (30, 5) = A^T
    torch.testing.assert_close(projected, x @ a_t, rtol=1e-12, atol=1e-12)


def test_projection_on_device_matches_cpu_and_ignores_the_global_rng(device, generator, seed):
    """A CPU generator gives the same A on every device: the projections agree to float64 rounding."""
    x = torch.randn(20, 64, dtype=torch.float64, generator=generator)
    torch.manual_seed(seed + 1)
    on_cpu = random_projection(x, 8, torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 2)
    on_device = random_projection(x.to(device), 8, torch.Generator().manual_seed(seed))
    assert on_device.device.type == device.type
    torch.testing.assert_close(on_device.cpu(), on_cpu, rtol=0, atol=1e-12)
    u, s_dev, v = randomized_svd(x.to(device), 3, generator=torch.Generator().manual_seed(seed))
    _, s_cpu, _ = randomized_svd(x, 3, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(s_dev.cpu(), s_cpu, rtol=1e-10, atol=0)


def test_jl_dimension_keeps_all_pairwise_distances(device, generator):
    """At n = jl_dimension(N, eps, failure_probability=1e-6) every pair stays within 1 ± eps except with
    probability <= 1e-6 (Dasgupta-Gupta tail per pair, union bound over pairs): it holds on any stream.
    The article's n = 4 ln N / (eps^2/2 - eps^3/3) only promises success with probability >= 1/N,
    and does fail on some streams (6 of 200 seeds at N = 50, m = 500, eps = 0.5)."""
    n_points, m, eps = 50, 2000, 0.5
    dim = jl_dimension(n_points, eps, failure_probability=1e-6)
    assert jl_dimension(n_points, eps) < dim < m
    for _ in range(3):  # three independent point sets and projections: failure probability <= 3e-6
        x = torch.randn(n_points, m, generator=generator).to(device)
        squared = distance_distortion(x, random_projection(x, dim, generator)) ** 2
        # Dasgupta-Gupta: (1 - eps) |u - v|^2 <= |Au - Av|^2 <= (1 + eps) |u - v|^2 for every pair
        assert squared.min().item() >= 1 - eps and squared.max().item() <= 1 + eps


def test_distortion_shrinks_like_one_over_sqrt_dim(device, generator):
    x = torch.randn(100, 400, generator=generator, dtype=torch.float64).to(device)
    for dim in (16, 64, 256):
        # pairs share one projection, so one projection's spread is a noisy estimate: average 8
        spread = sum((distance_distortion(x, random_projection(x, dim, generator)) ** 2).std().item()
                     for _ in range(8)) / 8
        # std of chi2_n/n is sqrt(2/n). Sweep of 200 seeds: max |spread / sqrt(2/n) - 1| = 0.063; bound 0.2
        assert abs(spread / math.sqrt(2 / dim) - 1) <= 0.2


def test_pairwise_distances_against_cdist(device, generator):
    x = torch.randn(9, 4, generator=generator, dtype=torch.float64).to(device)
    full = torch.cdist(x, x)
    i, j = torch.triu_indices(9, 9, offset=1)
    torch.testing.assert_close(pairwise_distances(x).cpu(), full.cpu()[i, j])


def test_simhash_angle_estimate(device, generator):
    # two vectors at a known angle in a random plane of R^32; 16384 bits give a standard error of at most
    # pi * 0.5 / 128 = 0.0123 rad on the angle: tolerance 0.0625 rad (5.1 standard errors: the binomial
    # count exceeds it with probability < 4e-7 per angle, on any stream)
    q, _ = torch.linalg.qr(torch.randn(32, 2, generator=generator, dtype=torch.float64).to(device))
    angles = torch.tensor([0.0, 0.1, 0.5, 1.0, math.pi / 2, 2.5, 3.0, math.pi], dtype=torch.float64, device=device)
    u = q[:, 0].expand(len(angles), 32)
    v = torch.cos(angles)[:, None] * q[:, 0] + torch.sin(angles)[:, None] * q[:, 1]  # (8, 32)
    torch.testing.assert_close(angle_between(u, v), angles, rtol=0, atol=1e-6)
    bits = simhash(torch.cat([u, v * 3.7]), 16384, generator)  # scale does not matter
    estimate = angle_from_bits(bits[: len(angles)], bits[len(angles):])
    assert (estimate - angles).abs().max().item() <= 0.0625
    assert estimate[0].item() == 0.0  # identical directions give identical codes
    assert (cosine_from_bits(bits[:1], bits[:1]) == 1).all()


def test_jl_dimension_formula():
    assert jl_dimension(10_000, 0.1) == math.ceil(4 * math.log(10_000) / (0.005 - 0.001 / 3))
    assert jl_dimension(50, 0.5, 1e-6) == math.ceil(2 * math.log(50 * 49 / 1e-6) / (0.125 - 0.125 / 3))
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError):
            jl_dimension(100, bad)
    with pytest.raises(ValueError):
        jl_dimension(100, 0.5, failure_probability=1.0)


def test_rejects_invalid_arguments(device):
    x = torch.ones(3, 4, device=device)
    for bad_dim in (0, -3, 2.0, True):
        with pytest.raises(ValueError):
            random_projection(x, bad_dim)
    with pytest.raises(ValueError):
        random_projection(x[0], 2)
    with pytest.raises(TypeError):
        random_projection(torch.ones(3, 4, dtype=torch.int64, device=device), 2)


def test_randomized_svd_recovers_a_low_rank_spectrum(device, generator):
    # rank-5 matrix plus 1e-3 noise: top-5 singular values within 1e-3 relative (sweep of 200 seeds: max
    # 4.5e-11), subspace angle small
    left, _ = torch.linalg.qr(torch.randn(300, 5, generator=generator, dtype=torch.float64).to(device))
    right, _ = torch.linalg.qr(torch.randn(200, 5, generator=generator, dtype=torch.float64).to(device))
    spectrum = torch.tensor([50.0, 20.0, 10.0, 5.0, 2.0], dtype=torch.float64, device=device)
    noise = 1e-3 * torch.randn(300, 200, generator=generator, dtype=torch.float64).to(device)
    m = left * spectrum @ right.T + noise
    u, s, v = randomized_svd(m, 5, generator=generator)
    exact = torch.linalg.svdvals(m)[:5]
    torch.testing.assert_close(s, exact, rtol=1e-3, atol=0)
    # |U^T left| has singular values ~1 when the subspaces coincide
    # 1 - cos of the largest principal angle ~ (|noise| / sigma_5)^2 / 2; sweep of 200 seeds: max 4.3e-5
    assert torch.linalg.svdvals(u.T @ left).min().item() > 1 - 2e-4
    torch.testing.assert_close(u.T @ u, torch.eye(5, dtype=torch.float64, device=device), rtol=0, atol=1e-10)
    torch.testing.assert_close(m @ v, u * s, rtol=0, atol=1e-2)
