"""Synthesizer attention (https://kexue.fm/archives/7430): masks, the Dense and Random formulas, the
Random + dot-product mixture, parameters drawn from the generator alone, device parity."""
import math

import pytest
import torch

from spaces_code.attention_masks import attention, causal_mask
from spaces_code.synthesizer import (DenseSynthesizer, DotProductAttention, MixtureSynthesizer,
                                     RandomSynthesizer, TinyTagger, mix)

D, N = 8, 6
KINDS = ["dot", "dense", "random", "fixed-random", "mixture"]


def make(kind, seed, n_head=2, max_len=N):
    generator = torch.Generator().manual_seed(seed)
    if kind == "dot":
        return DotProductAttention(D, n_head, generator=generator)
    if kind == "dense":
        return DenseSynthesizer(D, max_len, n_head, generator=generator)
    if kind == "mixture":
        return MixtureSynthesizer(D, max_len, n_head, generator=generator)
    return RandomSynthesizer(D, max_len, n_head, trainable=(kind == "random"), generator=generator)


@pytest.mark.parametrize("kind", KINDS)
def test_causal_mask_blocks_the_future_exactly(device, generator, seed, kind):
    layer = make(kind, seed).to(device=device, dtype=torch.float64)
    x = torch.randn(1, N, D, generator=generator, dtype=torch.float64).to(device)
    mask = causal_mask(N, device=device)
    jac = torch.autograd.functional.jacobian(lambda h: layer(h, mask), x)[0, :, :, 0]  # (n, d, n, d)
    influence = jac.abs().sum(dim=(1, 3))  # (query i, key j)
    future = ~mask
    assert (influence[future] == 0).all()  # exactly zero: masked weights are exactly 0
    # every allowed pair has influence: a sum of |entries| of a generic random Jacobian block is > 0
    assert (influence[mask] > 0).all()
    unmasked = torch.autograd.functional.jacobian(lambda h: layer(h), x)[0, :, :, 0].abs().sum(dim=(1, 3))
    assert (unmasked[future] > 0).all()  # without the mask the future does leak in


def test_mix_is_masked_softmax_and_matches_dot_product_attention(device, generator):
    logits = (torch.randn(3, N, N, generator=generator, dtype=torch.float64) * 4).to(device)
    v = torch.randn(3, N, 5, generator=generator, dtype=torch.float64).to(device)
    mask = causal_mask(N, device=device)
    expected = logits.masked_fill(~mask, -math.inf).softmax(-1) @ v
    assert torch.allclose(mix(logits, v, mask), expected, atol=1e-12)  # float64, same operations
    q = torch.randn(3, N, 4, generator=generator, dtype=torch.float64).to(device)
    k = torch.randn(3, N, 4, generator=generator, dtype=torch.float64).to(device)
    assert torch.allclose(mix(q @ k.mT / 2.0, v, mask), attention(q, k, v, mask), atol=1e-12)


def test_dense_rows_depend_on_one_token_random_on_none(device, generator, seed):
    dense, rand = make("dense", seed).to(device), make("random", seed).to(device)
    x = torch.randn(2, N, D, generator=generator).to(device)
    y = x.clone()
    y[:, 3] = torch.randn(2, D, generator=generator).to(device)
    b_x, b_y = dense.logits(x), dense.logits(y)  # (b, h, n, n)
    rows = torch.arange(N, device=device) != 3
    assert torch.equal(b_x[:, :, rows], b_y[:, :, rows])
    assert not torch.allclose(b_x[:, :, 3], b_y[:, :, 3])
    assert torch.equal(rand.logits(x), rand.logits(y))


def test_dense_synthesizer_matches_formula_in_float64(device, generator, seed):
    layer = make("dense", seed, n_head=1, max_len=9).to(device)
    x = torch.randn(2, N, D, generator=generator).to(device)
    mask = causal_mask(N, device=device)
    p = {k: v.double().cpu() for k, v in layer.state_dict().items()}
    xd = x.double().cpu()
    # $B_i = W_2 \mathrm{ReLU}(W_1 x_i + b_1) + b_2$, first n entries; $Y = \mathrm{softmax}(B) G(X)$
    b = (torch.relu(xd @ p["w1.weight"].T + p["w1.bias"]) @ p["w2.weight"].T + p["w2.bias"])[..., :N]
    weights = b.masked_fill(~mask.cpu(), -math.inf).softmax(-1)
    expected = (weights @ (xd @ p["value.weight"].T + p["value.bias"])) @ p["out.weight"].T + p["out.bias"]
    # float32 against float64: entries O(1), a few float32 ulps (1.2e-7) per operation
    assert torch.allclose(layer(x, mask).double().cpu(), expected, atol=1e-5)


def test_mixture_is_the_weighted_sum_of_random_and_dot_logits(device, generator, seed):
    layer = make("mixture", seed).to(device=device, dtype=torch.float64)
    x = torch.randn(2, N, D, generator=generator, dtype=torch.float64).to(device)
    with torch.no_grad():
        layer.mixture.copy_(torch.tensor([0.3, -1.1], dtype=torch.float64))
    alpha = torch.tensor([0.3, -1.1], dtype=torch.float64).softmax(0)
    b, n, d = x.shape
    q, k = layer.qk(x).view(b, n, 2, 2, d // 2).permute(2, 0, 3, 1, 4)
    # $B = \alpha_1 R + \alpha_2 Q K^\top / \sqrt{d_k}$
    expected = alpha[0] * layer.r[None] + alpha[1] * q @ k.mT / math.sqrt(d // 2)
    torch.testing.assert_close(layer.logits(x), expected, rtol=1e-12, atol=1e-12)
    weights = layer.attention_weights(x)
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["dense", "random", "mixture"])
def test_shorter_sequences_use_the_leading_block_longer_ones_fail(device, generator, seed, kind):
    layer = make(kind, seed, max_len=N).to(device=device, dtype=torch.float64)
    x = torch.randn(1, N, D, generator=generator, dtype=torch.float64).to(device)
    full = layer.logits(x)
    if kind == "mixture":  # the dot-product part of a prefix is the prefix of the dot-product part
        torch.testing.assert_close(layer.logits(x[:, :4]), full[..., :4, :4], rtol=1e-12, atol=1e-12)
    else:
        assert torch.equal(layer.logits(x[:, :4]), full[..., :4, :4])
    with pytest.raises(ValueError):
        layer(torch.zeros(1, N + 1, D, device=device, dtype=torch.float64))


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_come_from_the_generator_alone(seed, kind):
    """Same generator seed under two different global seeds: identical parameters."""
    states = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        mixer = make(kind, seed)
        tagger = TinyTagger(11, N, D, mixer, generator=torch.Generator().manual_seed(seed))
        states.append(tagger.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not torch.equal(make(kind, seed).state_dict()["value.weight"],
                           make(kind, seed + 1).state_dict()["value.weight"])


@pytest.mark.parametrize("kind", KINDS)
def test_device_matches_cpu(device, generator, seed, kind):
    model = TinyTagger(11, N, D, make(kind, seed), generator=torch.Generator().manual_seed(seed))
    ids = torch.randint(0, 11, (3, N), generator=generator)
    mask = causal_mask(N)
    ref = model.double()(ids, mask)  # float64 on CPU
    out = model.float().to(device)(ids.to(device), mask.to(device))
    # float32 against float64, logits O(1) through ~6 layers: |error| ~ 1e-6; 20 seeds: max 1.4e-6
    assert torch.allclose(out.double().cpu(), ref, atol=1e-5)
