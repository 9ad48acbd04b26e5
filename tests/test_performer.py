"""Performer / FAVOR+ (https://kexue.fm/archives/7921): phi(q).phi(k) is an unbiased estimate of
exp(q.k) for i.i.d. and orthogonal projections; its variance is the paper's closed form, far below the
trigonometric features' where q.k is very negative; the attention built on it tends to softmax."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.attention_masks import attention, causal_mask
from spaces_code.linear_attention import feature_map_attention
from spaces_code.performer import (gaussian_projection, performer_attention, positive_random_features,
                                   relative_kernel_mse, trigonometric_random_features)


@pytest.mark.parametrize("orthogonal", [False, True])
def test_feature_product_is_unbiased_estimate_of_exp_dot(device, generator, orthogonal):
    """Mean of 40,000 single-feature estimates lies within 5 standard errors of exp(q.k).

    For a mean of 40,000 draws with bounded variance (|q + k|^2 <= 1.44) the CLT applies: a 5-sigma miss
    has probability < 1e-6 on any stream. Each row of an orthogonal block is marginally N(0, I), hence
    unbiased too (and the rows' negative correlation only shrinks the error of the mean)."""
    d, draws = 8, 40_000
    q = torch.randn(d, generator=generator, dtype=torch.float64)
    k = torch.randn(d, generator=generator, dtype=torch.float64)
    q, k = (0.6 * q / q.norm()).to(device), (0.6 * k / k.norm()).to(device)  # |q + k|^2 <= 1.44
    w = gaussian_projection(draws, d, orthogonal=orthogonal, generator=generator, device=device,
                            dtype=torch.float64)
    # with m features phi(q).phi(k) = mean of m single-feature products; take them one by one
    samples = positive_random_features(q, w) * positive_random_features(k, w) * draws  # (draws,)
    exact = math.exp(float(q @ k))
    standard_error = samples.std().item() / math.sqrt(draws)
    assert abs(samples.mean().item() - exact) < 5 * standard_error
    # relative SE <= sqrt(e^1.44 - 1) / 200 = 0.0093 (the closed form), so the tolerance itself is tight
    assert standard_error < 0.02 * exact
    assert torch.all(samples > 0)  # positive features: the estimate is never negative


@pytest.mark.parametrize("kind", ["positive", "trigonometric"])
def test_variance_matches_the_closed_form(generator, kind):
    """Monte Carlo variance of single-projection estimates (200,000 draws) against Lemma 2 of the paper.

    The relative standard error of a sample variance is sqrt((kurtosis - 1) / N): here <= 0.6% for
    both kinds (bounded trigonometric products; log-normal positive ones with |q + k|^2 = 0.27), so a
    5% tolerance is 8 standard errors."""
    d, draws = 4, 200_000
    angle = math.radians(150)  # q.k = cos 150 = -0.87: a small attention weight
    q = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    k = torch.tensor([math.cos(angle), math.sin(angle), 0.0, 0.0], dtype=torch.float64)
    w = gaussian_projection(draws, d, generator=generator, dtype=torch.float64)
    if kind == "positive":
        samples = positive_random_features(q, w) * positive_random_features(k, w) * draws
    else:  # pair each cos feature with its sin feature: one projection, one sample
        products = trigonometric_random_features(q, w) * trigonometric_random_features(k, w) * draws
        samples = products[:draws] + products[draws:]
    exact = math.exp(float(q @ k))
    relative_variance = samples.var().item() / exact**2
    assert abs(relative_variance / relative_kernel_mse(q, k, 1, kind).item() - 1) < 0.05
    assert abs(samples.mean().item() - exact) < 5 * samples.std().item() / math.sqrt(draws)


def test_trigonometric_variance_blows_up_where_q_dot_k_is_negative():
    """Closed forms: as q.k goes from +|q||k| to -|q||k| the positive estimate's relative MSE falls
    to 0 and the trigonometric one's grows like e^{|q - k|^2} / (2m)."""
    angles = torch.linspace(0, math.pi, 181, dtype=torch.float64)
    q = torch.tensor([1.5, 0.0], dtype=torch.float64).expand(181, 2)
    k = 1.5 * torch.stack((angles.cos(), angles.sin()), dim=-1)
    positive = relative_kernel_mse(q, k, 64, "positive")
    trig = relative_kernel_mse(q, k, 64, "trigonometric")
    assert (positive.diff() < 0).all() and (trig.diff() > 0).all()  # monotone in the angle
    assert positive[-1] < 1e-30  # q = -k (up to cos(pi) rounding): every positive sample is e^{q.k}
    # q = -k, |q - k|^2 = 9: relative MSE e^9 / 128 = 63, an RMS error 8x the estimate itself
    assert trig[-1] > 1e5 * positive[-2] and trig[-1] > 50
    assert trig[0] == 0 and positive[0] > trig[1]  # q = k: the trigonometric one wins there


def test_orthogonal_projection_blocks(device, generator):
    d, m = 6, 15  # two full blocks and a partial one
    w = gaussian_projection(m, d, orthogonal=True, generator=generator, device=device, dtype=torch.float64)
    assert w.shape == (m, d) and w.device.type == torch.device(device).type
    for start in range(0, m, d):
        block = w[start:start + d]
        gram = block @ block.T
        off_diagonal = gram - torch.diag(torch.diagonal(gram))
        assert off_diagonal.abs().max() < 1e-10  # rows within a block are exactly orthogonal
    # chi_d norms: E|w|^2 = d; mean over 20,000 rows within 5 standard errors (Var|w|^2 = 2d): < 1e-6
    many = gaussian_projection(20_000, d, orthogonal=True, generator=generator, dtype=torch.float64)
    sq = (many**2).sum(-1)
    assert abs(sq.mean().item() - d) < 5 * math.sqrt(2 * d / 20_000)


@pytest.mark.parametrize("causal", [False, True])
def test_stabilised_attention_equals_plain_formula(device, generator, causal):
    """Subtracting the query-row and global key maxima before exp changes nothing (float64)."""
    n, d, m = 12, 4, 32
    q, k, v = (torch.randn(2, n, d, generator=generator, dtype=torch.float64).to(device) for _ in range(3))
    w = gaussian_projection(m, d, generator=generator, device=device, dtype=torch.float64)
    scale = d ** -0.25
    plain = feature_map_attention(positive_random_features(q * scale, w),
                                  positive_random_features(k * scale, w), v, causal=causal)
    torch.testing.assert_close(performer_attention(q, k, v, w, causal=causal), plain,
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_many_features_approach_softmax_attention(device, generator, causal):
    """With m = 8192 orthogonal features the output is within 0.2 of exact attention (values are O(1);
    the Monte Carlo error scales like 1/sqrt(m)). Sweep of 200 seeds: max 0.060 (non-causal) and
    0.066 (causal), bound 0.2."""
    n, d = 16, 8
    q, k = (0.5 * torch.randn(n, d, generator=generator) for _ in range(2))
    v = torch.randn(n, d, generator=generator)
    w = gaussian_projection(8192, d, orthogonal=True, generator=generator)
    q, k, v, w = (t.to(device) for t in (q, k, v, w))
    exact = attention(q, k, v, causal_mask(n, device=device) if causal else None)
    approx = performer_attention(q, k, v, w, causal=causal)
    assert (approx - exact).abs().max() < 0.2


def test_large_inputs_do_not_overflow(device, generator):
    q, k, v = (30 * torch.randn(64, 16, generator=generator).to(device) for _ in range(3))
    w = gaussian_projection(64, 16, generator=generator, device=device)
    for causal in (False, True):
        assert torch.isfinite(performer_attention(q, k, v, w, causal=causal)).all()


@pytest.mark.parametrize("orthogonal", [False, True])
def test_stacked_draws_are_valid_projections(device, generator, orthogonal):
    w = gaussian_projection(10, 4, orthogonal, generator, device, torch.float64, draws=3)
    assert w.shape == (3, 10, 4)
    assert not torch.allclose(w[0], w[1])
    if orthogonal:
        block = w[2, 4:8]
        gram = block @ block.T
        assert (gram - torch.diag(torch.diagonal(gram))).abs().max() < 1e-10
    # a stack of projections gives one attention output per projection
    q, k, v = (torch.randn(5, 4, generator=generator, dtype=torch.float64).to(device) for _ in range(3))
    stacked = performer_attention(q, k, v, w)
    torch.testing.assert_close(stacked[1], performer_attention(q, k, v, w[1]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("orthogonal", [False, True])
def test_projection_comes_from_the_generator_alone(seed, orthogonal):
    """Same generator seed under two different global seeds: identical projections."""
    draws = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        draws.append(gaussian_projection(10, 4, orthogonal, torch.Generator().manual_seed(seed)))
    assert torch.equal(*draws)


def test_device_matches_cpu_float64(device, generator):
    """The same CPU-drawn projection and inputs: float32 on ``device`` against float64 on CPU."""
    n, d, m = 32, 8, 64
    q, k, v = (0.5 * torch.randn(n, d, generator=generator, dtype=torch.float64) for _ in range(3))
    w = gaussian_projection(m, d, orthogonal=True, generator=generator, dtype=torch.float64)
    for causal in (False, True):
        ref = performer_attention(q, k, v, w, causal=causal)
        got = performer_attention(*(t.float().to(device) for t in (q, k, v, w)), causal=causal)
        # float32 exp and sums of 64 features over 32 keys: ~1e-6 relative, values O(1)
        torch.testing.assert_close(got.cpu().double(), ref, rtol=1e-4, atol=1e-5)
