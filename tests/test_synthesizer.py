"""Synthesizer attention (https://kexue.fm/archives/7430)."""
import math

import pytest
import torch

from spaces_code.attention_masks import attention, causal_mask
from spaces_code.synthesizer import DenseSynthesizer, DotProductAttention, RandomSynthesizer, TinyTagger, mix

D, N = 8, 6


def make(kind, n_head=2, max_len=N):
    torch.manual_seed(0)
    if kind == "dot":
        return DotProductAttention(D, n_head)
    if kind == "dense":
        return DenseSynthesizer(D, max_len, n_head)
    return RandomSynthesizer(D, max_len, n_head, trainable=(kind == "random"),
                             generator=torch.Generator().manual_seed(0))


KINDS = ["dot", "dense", "random", "fixed-random"]


@pytest.mark.parametrize("kind", KINDS)
def test_causal_mask_blocks_the_future_exactly(device, generator, kind):
    layer = make(kind).to(device=device, dtype=torch.float64)
    x = torch.randn(1, N, D, generator=generator, device=device, dtype=torch.float64)
    mask = causal_mask(N, device=device)
    jac = torch.autograd.functional.jacobian(lambda h: layer(h, mask), x)[0, :, :, 0]  # (n, d, n, d)
    influence = jac.abs().sum(dim=(1, 3))  # (query i, key j)
    future = ~mask
    assert (influence[future] == 0).all()
    assert (influence[mask] > 0).all()
    unmasked = torch.autograd.functional.jacobian(lambda h: layer(h), x)[0, :, :, 0].abs().sum(dim=(1, 3))
    assert (unmasked[future] > 0).all()  # without the mask the future does leak in


def test_mix_is_masked_softmax_and_matches_dot_product_attention(device, generator):
    logits = torch.randn(3, N, N, generator=generator, device=device, dtype=torch.float64) * 4
    v = torch.randn(3, N, 5, generator=generator, device=device, dtype=torch.float64)
    mask = causal_mask(N, device=device)
    expected = logits.masked_fill(~mask, -math.inf).softmax(-1) @ v
    assert torch.allclose(mix(logits, v, mask), expected, atol=1e-12)
    q = torch.randn(3, N, 4, generator=generator, device=device, dtype=torch.float64)
    k = torch.randn(3, N, 4, generator=generator, device=device, dtype=torch.float64)
    assert torch.allclose(mix(q @ k.mT / 2.0, v, mask), attention(q, k, v, mask), atol=1e-12)


def test_dense_rows_depend_on_one_token_random_on_none(device, generator):
    dense, rand = make("dense").to(device), make("random").to(device)
    x = torch.randn(2, N, D, generator=generator, device=device)
    y = x.clone()
    y[:, 3] = torch.randn(2, D, generator=generator, device=device)
    b_x, b_y = dense.logits(x), dense.logits(y)  # (b, h, n, n)
    rows = torch.arange(N, device=device) != 3
    assert torch.equal(b_x[:, :, rows], b_y[:, :, rows])
    assert not torch.allclose(b_x[:, :, 3], b_y[:, :, 3])
    assert torch.equal(rand.logits(x), rand.logits(y))


def test_dense_synthesizer_matches_formula_in_float64(device, generator):
    layer = make("dense", n_head=1, max_len=9).to(device)
    x = torch.randn(2, N, D, generator=generator, device=device)
    mask = causal_mask(N, device=device)
    p = {k: v.double().cpu() for k, v in layer.state_dict().items()}
    xd = x.double().cpu()
    # $B_i = W_2 \mathrm{ReLU}(W_1 x_i + b_1) + b_2$, first n entries; $Y = \mathrm{softmax}(B) G(X)$
    b = (torch.relu(xd @ p["w1.weight"].T + p["w1.bias"]) @ p["w2.weight"].T + p["w2.bias"])[..., :N]
    weights = b.masked_fill(~mask.cpu(), -math.inf).softmax(-1)
    expected = (weights @ (xd @ p["value.weight"].T + p["value.bias"])) @ p["out.weight"].T + p["out.bias"]
    assert torch.allclose(layer(x, mask).double().cpu(), expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "random"])
def test_shorter_sequences_use_the_leading_block_longer_ones_fail(device, generator, kind):
    layer = make(kind, max_len=N).to(device=device, dtype=torch.float64)
    x = torch.randn(1, N, D, generator=generator, device=device, dtype=torch.float64)
    full = layer.logits(x)
    assert torch.equal(layer.logits(x[:, :4]), full[..., :4, :4])
    with pytest.raises(ValueError):
        layer(torch.randn(1, N + 1, D, device=device, dtype=torch.float64))


@pytest.mark.parametrize("kind", KINDS)
def test_device_matches_cpu(device, generator, kind):
    layer = make(kind)
    model = TinyTagger(11, N, D, layer)
    ids = torch.randint(0, 11, (3, N), generator=generator, device=device)
    mask = causal_mask(N)
    ref = model.double()(ids.cpu(), mask)
    out = model.float().to(device)(ids, mask.to(device))
    assert torch.allclose(out.double().cpu(), ref, atol=1e-5)
