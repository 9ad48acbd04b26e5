"""Attention masks (https://kexue.fm/archives/6933): a forbidden (query, key) pair has exactly zero
influence, i.e. d output_i / d input_j == 0 bit for bit wherever the mask says no."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.attention_masks import (attention, bidirectional_mask, causal_mask, permutation_mask,
                                         prefix_lm_mask)

N = 7


def all_masks(device):
    order = torch.tensor([3, 0, 6, 2, 5, 1, 4], device=device)
    return {
        "bidirectional": bidirectional_mask(N, device=device),
        "causal": causal_mask(N, device=device),
        "prefix_lm": prefix_lm_mask(3, N, device=device),
        "permutation": permutation_mask(order),
        "permutation_query_stream": permutation_mask(order, include_self=False),
    }


def test_masks_follow_their_definitions(device):
    order = torch.tensor([3, 0, 6, 2, 5, 1, 4])
    rank = {int(p): t for t, p in enumerate(order)}
    masks = all_masks(device)
    for i in range(N):
        for j in range(N):
            assert masks["bidirectional"][i, j]
            assert bool(masks["causal"][i, j]) == (j <= i)
            assert bool(masks["prefix_lm"][i, j]) == ((i < 3 and j < 3) or (i >= 3 and j <= i))
            assert bool(masks["permutation"][i, j]) == (rank[j] <= rank[i])
            assert bool(masks["permutation_query_stream"][i, j]) == (rank[j] < rank[i])
    assert all(mask.device.type == torch.device(device).type for mask in masks.values())
    identity = torch.arange(N, device=device)
    assert torch.equal(permutation_mask(identity), causal_mask(N, device=device))
    assert torch.equal(prefix_lm_mask(0, N, device=device), causal_mask(N, device=device))
    assert torch.equal(prefix_lm_mask(N, N, device=device), bidirectional_mask(N, device=device))


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        prefix_lm_mask(5, 4)
    with pytest.raises(ValueError):
        permutation_mask(torch.tensor([0, 0, 1]))


@pytest.mark.parametrize("name", ["bidirectional", "causal", "prefix_lm", "permutation",
                                  "permutation_query_stream"])
def test_gradient_is_exactly_zero_where_mask_forbids(device, generator, name):
    mask = all_masks(device)[name]
    d = 5
    x = torch.randn(N, d, generator=generator).to(device)
    w_q, w_k, w_v = (torch.randn(d, d, generator=generator).to(device) for _ in range(3))

    def self_attention(inputs):
        return attention(inputs @ w_q, inputs @ w_k, inputs @ w_v, mask)

    jac = torch.autograd.functional.jacobian(self_attention, x)  # (N, d, N, d): d y_i / d x_j
    influence = jac.abs().amax(dim=(1, 3))  # (N, N)
    # x_j reaches y_i only through k_j, v_j (allowed iff mask[i, j]) or, for j == i, through q_i
    forbidden = ~mask & ~torch.eye(N, dtype=torch.bool, device=device)
    assert torch.all(influence[forbidden] == 0.0)  # exactly zero, no tolerance
    # every allowed key contributes through its value: d y_i / d v_j = softmax weight > 0 times W_v,
    # a sum of |entries| that vanishes only on a measure-zero set of draws
    assert torch.all(influence[mask] > 0.0)


def naive_attention(q, k, v, mask):
    """Row-by-row float64 reference with Python loops."""
    q, k, v = q.double().cpu(), k.double().cpu(), v.double().cpu()
    out = torch.zeros(q.shape[0], v.shape[1], dtype=torch.float64)
    for i in range(q.shape[0]):
        allowed = [j for j in range(k.shape[0]) if mask[i, j]]
        if not allowed:
            continue
        scores = torch.tensor([float(q[i] @ k[j]) / math.sqrt(q.shape[1]) for j in allowed])
        weights = torch.exp(scores - scores.max())
        weights /= weights.sum()
        out[i] = sum(w * v[j] for w, j in zip(weights, allowed))
    return out


def test_attention_matches_float64_reference_with_batch_dims(device, generator):
    batch, heads, n, d, d_v = 2, 3, 6, 4, 3
    q = torch.randn(batch, heads, n, d, generator=generator).to(device)
    k = torch.randn(batch, heads, n, d, generator=generator).to(device)
    v = torch.randn(batch, heads, n, d_v, generator=generator).to(device)
    mask = prefix_lm_mask(2, n, device=device)
    mask[1] = False  # a query that may see nothing returns zeros
    out = attention(q, k, v, mask)
    assert out.shape == (batch, heads, n, d_v)
    for b in range(batch):
        for h in range(heads):
            ref = naive_attention(q[b, h], k[b, h], v[b, h], mask.cpu())
            # float32 softmax of O(1) scores against float64: a few ulps (1.2e-7 relative)
            torch.testing.assert_close(out[b, h].double().cpu(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attention(q, k, v), attention(q, k, v, bidirectional_mask(n, device)))


def test_fully_masked_row_gives_zero_output_and_finite_gradients(device, generator):
    q = torch.randn(4, 3, generator=generator).to(device).requires_grad_(True)
    mask = torch.zeros(4, 4, dtype=torch.bool, device=device)
    mask[2, :2] = True
    out = attention(q, q, q, mask)
    out.sum().backward()
    assert torch.all(out[[0, 1, 3]] == 0)
    assert torch.isfinite(q.grad).all()


def test_extreme_scores_stay_finite(device):
    q = torch.full((5, 4), 300.0, device=device)
    out = attention(q, q, torch.eye(5, 4, device=device), causal_mask(5, device=device))
    assert torch.isfinite(out).all()


def test_query_stream_never_sees_its_own_token_content_stream_does(device, generator):
    """XLNet: the query stream predicts token i, so its output must not depend on token i through keys or
    values; the content stream's does. Queries here carry position only (as XLNet's g_i)."""
    order = torch.randperm(N, generator=generator).to(device)
    d = 4
    positions = torch.randn(N, d, generator=generator).to(device)  # what the query stream may know
    tokens = torch.randn(N, d, generator=generator).to(device)

    def stream(inputs, include_self):
        return attention(positions, inputs, inputs, permutation_mask(order, include_self))

    for include_self in (False, True):
        jac = torch.autograd.functional.jacobian(lambda t: stream(t, include_self), tokens)  # (N, d, N, d)
        own = torch.stack([jac[i, :, i].abs().max() for i in range(N)])  # d y_i / d token_i
        first = int(order[0])  # the first step: nothing to see in the query stream
        if include_self:
            assert (own > 0).all()
        else:
            assert (own == 0).all()
            assert torch.equal(stream(tokens, False)[first], torch.zeros(d, device=device))
