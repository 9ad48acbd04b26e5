"""Performer / FAVOR+ (https://kexue.fm/archives/7921): phi(q).phi(k) is an unbiased estimate of
exp(q.k) for i.i.d. and orthogonal projections; the attention built on it tends to softmax attention."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.attention_masks import attention, causal_mask
from spaces_code.linear_attention import feature_map_attention
from spaces_code.performer import gaussian_projection, performer_attention, positive_random_features


@pytest.mark.parametrize("orthogonal", [False, True])
def test_feature_product_is_unbiased_estimate_of_exp_dot(device, orthogonal):
    """Mean of 40,000 single-feature estimates lies within 5 standard errors of exp(q.k).

    For a Gaussian mean this fails with probability < 1e-6; the seed is fixed, so the test is
    deterministic. Each row of an orthogonal block is marginally N(0, I), hence unbiased too."""
    gen = torch.Generator(device=device).manual_seed(0)
    d, draws = 8, 40_000
    q = torch.randn(d, generator=gen, device=device, dtype=torch.float64)
    k = torch.randn(d, generator=gen, device=device, dtype=torch.float64)
    q, k = 0.6 * q / q.norm(), 0.6 * k / k.norm()  # |q + k|^2 <= 1.44 bounds the variance
    w = gaussian_projection(draws, d, orthogonal=orthogonal, generator=gen, device=device,
                            dtype=torch.float64)
    # with m features phi(q).phi(k) = mean of m single-feature products; take them one by one
    samples = positive_random_features(q, w) * positive_random_features(k, w) * draws  # (draws,)
    exact = math.exp(float(q @ k))
    standard_error = samples.std().item() / math.sqrt(draws)
    assert abs(samples.mean().item() - exact) < 5 * standard_error
    assert standard_error < 0.02 * exact  # the tolerance itself is tight
    assert torch.all(samples > 0)  # positive features: the estimate is never negative


def test_orthogonal_projection_blocks(device):
    gen = torch.Generator(device=device).manual_seed(1)
    d, m = 6, 15  # two full blocks and a partial one
    w = gaussian_projection(m, d, orthogonal=True, generator=gen, device=device, dtype=torch.float64)
    assert w.shape == (m, d)
    for start in range(0, m, d):
        block = w[start:start + d]
        gram = block @ block.T
        off_diagonal = gram - torch.diag(torch.diagonal(gram))
        assert off_diagonal.abs().max() < 1e-10  # rows within a block are exactly orthogonal
    # chi_d norms: E|w|^2 = d; mean over many rows within 5 standard errors (Var|w|^2 = 2d)
    many = gaussian_projection(20_000, d, orthogonal=True, generator=gen, device=device,
                               dtype=torch.float64)
    sq = (many**2).sum(-1)
    assert abs(sq.mean().item() - d) < 5 * math.sqrt(2 * d / 20_000)


@pytest.mark.parametrize("causal", [False, True])
def test_stabilised_attention_equals_plain_formula(device, causal):
    """Subtracting the query-row and global key maxima before exp changes nothing (float64)."""
    gen = torch.Generator(device=device).manual_seed(2)
    n, d, m = 12, 4, 32
    q, k, v = (torch.randn(2, n, d, generator=gen, device=device, dtype=torch.float64) for _ in range(3))
    w = gaussian_projection(m, d, generator=gen, device=device, dtype=torch.float64)
    scale = d ** -0.25
    plain = feature_map_attention(positive_random_features(q * scale, w),
                                  positive_random_features(k * scale, w), v, causal=causal)
    torch.testing.assert_close(performer_attention(q, k, v, w, causal=causal), plain,
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_many_features_approach_softmax_attention(device, causal):
    """With m = 8192 orthogonal features the output is within 0.1 of exact attention (values are O(1);
    the Monte Carlo error scales like 1/sqrt(m); over 20 seeds the worst case seen was 0.045)."""
    gen = torch.Generator(device=device).manual_seed(3)
    n, d = 16, 8
    q, k = (0.5 * torch.randn(n, d, generator=gen, device=device) for _ in range(2))
    v = torch.randn(n, d, generator=gen, device=device)
    w = gaussian_projection(8192, d, orthogonal=True, generator=gen, device=device)
    exact = attention(q, k, v, causal_mask(n, device=device) if causal else None)
    approx = performer_attention(q, k, v, w, causal=causal)
    assert (approx - exact).abs().max() < 0.1


def test_large_inputs_do_not_overflow(device):
    gen = torch.Generator(device=device).manual_seed(4)
    q, k, v = (30 * torch.randn(64, 16, generator=gen, device=device) for _ in range(3))
    w = gaussian_projection(64, 16, generator=gen, device=device)
    for causal in (False, True):
        assert torch.isfinite(performer_attention(q, k, v, w, causal=causal)).all()


@pytest.mark.parametrize("orthogonal", [False, True])
def test_stacked_draws_are_valid_projections(device, orthogonal):
    gen = torch.Generator(device=device).manual_seed(6)
    w = gaussian_projection(10, 4, orthogonal, gen, device, torch.float64, draws=3)
    assert w.shape == (3, 10, 4)
    assert not torch.allclose(w[0], w[1])
    if orthogonal:
        block = w[2, 4:8]
        gram = block @ block.T
        assert (gram - torch.diag(torch.diagonal(gram))).abs().max() < 1e-10
    # a stack of projections gives one attention output per projection
    q, k, v = (torch.randn(5, 4, generator=gen, device=device, dtype=torch.float64) for _ in range(3))
    stacked = performer_attention(q, k, v, w)
    torch.testing.assert_close(stacked[1], performer_attention(q, k, v, w[1]), rtol=1e-12, atol=1e-12)


def test_projection_reproducible_with_generator(device):
    a = gaussian_projection(10, 4, True, torch.Generator(device=device).manual_seed(5), device)
    b = gaussian_projection(10, 4, True, torch.Generator(device=device).manual_seed(5), device)
    assert torch.equal(a, b)
