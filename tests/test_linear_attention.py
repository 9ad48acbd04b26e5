"""Linear attention (https://kexue.fm/archives/8338): the causal prefix-sum form equals the masked
quadratic form; the non-causal form equals the unmasked one; rank(phi(Q) phi(K)^T) <= m."""
from __future__ import annotations

import pytest
import torch

from spaces_code.attention_masks import causal_mask
from spaces_code.linear_attention import (attention_matrix_rank, causal_feature_map_attention,
                                          elu_feature_map, feature_map_attention, linear_attention,
                                          quadratic_feature_attention)


def random_features(device, shape, gen, dtype=torch.float64):
    """Positive features drawn on CPU (``gen`` is the CPU generator fixture), then moved to ``device``."""
    return (torch.rand(*shape, generator=gen, dtype=dtype) + 0.01).to(device)


@pytest.mark.parametrize("n, chunk_size", [(1, 64), (2, 1), (17, 1), (17, 4), (17, 64), (130, 64)])
def test_causal_prefix_sum_equals_masked_quadratic_form(device, generator, n, chunk_size):
    gen = generator
    batch, heads, m, d_v = 2, 3, 5, 4
    qf = random_features(device, (batch, heads, n, m), gen)
    kf = random_features(device, (batch, heads, n, m), gen)
    v = torch.randn(batch, heads, n, d_v, generator=gen, dtype=torch.float64).to(device)
    prefix = causal_feature_map_attention(qf, kf, v, chunk_size=chunk_size)
    torch.testing.assert_close(feature_map_attention(qf, kf, v, causal=True), prefix, rtol=1e-12, atol=1e-12)
    quadratic = quadratic_feature_attention(qf, kf, v, causal_mask(n, device=device))
    torch.testing.assert_close(prefix, quadratic, rtol=1e-12, atol=1e-12)
    # and against an explicit loop: out_i = sum_{j<=i} (phi_i . phi_j) v_j / sum_{j<=i} phi_i . phi_j
    i = n - 1 if n > 1 else 0
    weights = (qf[0, 0, i] * kf[0, 0, : i + 1]).sum(-1)
    expected = (weights[:, None] * v[0, 0, : i + 1]).sum(0) / weights.sum()
    torch.testing.assert_close(prefix[0, 0, i], expected, rtol=1e-12, atol=1e-12)


def test_non_causal_equals_unmasked_quadratic_form_with_different_lengths(device, generator):
    gen = generator
    qf = random_features(device, (3, 6, 8), gen)  # 6 queries
    kf = random_features(device, (3, 11, 8), gen)  # 11 keys
    v = torch.randn(3, 11, 2, generator=gen, dtype=torch.float64).to(device)
    torch.testing.assert_close(feature_map_attention(qf, kf, v), quadratic_feature_attention(qf, kf, v),
                               rtol=1e-12, atol=1e-12)


def test_float32_device_matches_float64_cpu(device, generator):
    gen = generator
    q, k = torch.randn(2, 2, 64, 16, generator=gen, dtype=torch.float64).unbind(0)
    v = torch.randn(64, 8, generator=gen, dtype=torch.float64)
    for causal in (False, True):
        ref = linear_attention(q, k, v, causal=causal)
        got = linear_attention(q.float().to(device), k.float().to(device), v.float().to(device), causal)
        # float32 sums over 64 positions against float64: ~1e-6 relative; 20 seeds: max 2e-6
        torch.testing.assert_close(got.cpu().double(), ref, rtol=1e-4, atol=1e-5)
    # elu + 1 is positive, so the causal form is a convex combination of the values seen so far
    out = linear_attention(q, k, v, causal=True)
    running_max = torch.cummax(v, dim=0).values
    assert torch.all(out <= running_max + 1e-12)
    assert torch.all(elu_feature_map(q) > 0)


def test_causal_needs_equal_lengths():
    with pytest.raises(ValueError):
        causal_feature_map_attention(torch.ones(3, 2), torch.ones(4, 2), torch.ones(4, 1))


def test_attention_matrix_rank_is_at_most_feature_dim(device, generator):
    """A product of an (n, m) and an (m, n) matrix with i.i.d. continuous entries has rank min(m, n)
    with probability one; the relative tolerance 1e-6 sits far above float64 rounding (~1e-14)."""
    gen = generator
    n = 40
    for m in (4, 16, 64):
        qf = random_features(device, (n, m), gen)
        kf = random_features(device, (n, m), gen)
        assert attention_matrix_rank(qf, kf) == min(m, n)
