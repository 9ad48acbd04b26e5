"""Integrated gradients: completeness, exactness on polynomials, the saturation argument, token heat maps."""
from __future__ import annotations

import pytest
import torch

from spaces_code.integrated_gradients import (SentimentConfig, gradient_times_input, integrated_gradients,
                                              make_sentiment_data, token_importance, train_sentiment_model)


def small_mlp(generator, device, d_in=12):
    w1 = torch.randn(d_in, 32, generator=generator, device=device, dtype=torch.float64) / d_in ** 0.5
    w2 = torch.randn(32, generator=generator, device=device, dtype=torch.float64) / 32 ** 0.5

    def f(batch):  # (B, 3, 4) -> (B,)
        return torch.tanh(batch.flatten(1) @ w1) @ w2
    return f


def test_completeness_on_an_mlp(device, generator):
    # tolerance: |sum IG - (F(x) - F(x'))| <= 1e-4 (1 + |F(x) - F(x')|) with 64 midpoints
    f = small_mlp(generator, device)
    for _ in range(5):
        x = 2 * torch.randn(3, 4, generator=generator, device=device, dtype=torch.float64)
        baseline = torch.randn(3, 4, generator=generator, device=device, dtype=torch.float64)
        attr = integrated_gradients(f, x, baseline, steps=64)
        assert attr.shape == x.shape
        delta = (f(x[None]) - f(baseline[None])).item()
        assert abs(attr.sum().item() - delta) <= 1e-4 * (1 + abs(delta))


def test_midpoint_error_is_second_order(device, generator):
    f = small_mlp(generator, device)
    x = 3 * torch.randn(3, 4, generator=generator, device=device, dtype=torch.float64)
    delta = f(x[None]).item() - f(torch.zeros(1, 3, 4, dtype=torch.float64, device=device)).item()
    errors = [abs(integrated_gradients(f, x, steps=s).sum().item() - delta) for s in (8, 16, 32)]
    for coarse, fine in zip(errors, errors[1:]):
        assert 3.0 < coarse / fine < 5.0  # halving the step divides the error by ~4


def test_exact_for_linear_and_quadratic_models(device, generator):
    w = torch.randn(5, generator=generator, device=device, dtype=torch.float64)
    x = torch.randn(5, generator=generator, device=device, dtype=torch.float64)
    b = torch.randn(5, generator=generator, device=device, dtype=torch.float64)
    # linear: IG_i = w_i (x_i - b_i) for any number of steps
    torch.testing.assert_close(integrated_gradients(lambda z: z @ w, x, b, steps=1), w * (x - b))
    # sum of squares from 0: IG_i = x_i^2 (the midpoint rule integrates the linear gradient exactly)
    torch.testing.assert_close(integrated_gradients(lambda z: z.pow(2).sum(-1), x, steps=3), x ** 2)


def test_saturation_defeats_the_plain_gradient(device):
    # F = tanh(5 (x1 + x2)) saturates at x = (1, 1): the gradient is ~0 there, yet F changed by ~1
    def f(batch):
        return torch.tanh(5 * batch.sum(-1))
    x = torch.ones(2, dtype=torch.float64, device=device)
    naive = gradient_times_input(f, x)
    ig = integrated_gradients(f, x, steps=256)
    assert naive.sum().item() < 1e-6
    assert abs(ig.sum().item() - torch.tanh(torch.tensor(10.0)).item()) < 1e-3
    torch.testing.assert_close(ig[0], ig[1])  # symmetric inputs get equal credit


def test_device_float32_matches_cpu_float64(device, generator):
    w1 = torch.randn(12, 32, generator=generator, device=device, dtype=torch.float64) / 12 ** 0.5
    w2 = torch.randn(32, generator=generator, device=device, dtype=torch.float64) / 32 ** 0.5
    w1_32, w2_32, w1_ref, w2_ref = w1.float(), w2.float(), w1.cpu(), w2.cpu()
    x = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(3, 4)
    attr = integrated_gradients(lambda b: torch.tanh(b.flatten(1) @ w1_32) @ w2_32, x.to(device).float())
    reference = integrated_gradients(lambda b: torch.tanh(b.flatten(1) @ w1_ref) @ w2_ref, x)
    torch.testing.assert_close(attr.cpu().double(), reference, rtol=1e-4, atol=1e-5)


def test_rejects_bad_arguments(device):
    x = torch.ones(3, device=device)
    with pytest.raises(ValueError):
        integrated_gradients(lambda z: z.sum(-1), x, steps=0)
    with pytest.raises(ValueError):
        integrated_gradients(lambda z: z.sum(-1), x, baseline=torch.zeros(4, device=device))
    with pytest.raises(ValueError):  # f must return one scalar per batch element
        integrated_gradients(lambda z: z, x, steps=4)


def test_token_heat_map_ranks_sentiment_words(device):
    generator = torch.Generator(device=device).manual_seed(0)
    config = SentimentConfig()
    polarity = torch.zeros(config.vocab_size, device=device)
    polarity[:4], polarity[4:8] = 1.0, -1.0  # 4 positive, 4 negative, 16 neutral tokens
    tokens, labels = make_sentiment_data(512, polarity, config.length, generator)
    assert (polarity[tokens].sum(-1) != 0).all()
    model = train_sentiment_model(tokens, labels, config, generator=generator)
    test_tokens, test_labels = make_sentiment_data(64, polarity, config.length, generator)
    with torch.no_grad():
        assert ((model(test_tokens) > 0).float() == test_labels).float().mean().item() >= 0.95
    for sentence in test_tokens[:8]:
        importance = token_importance(model, sentence)
        # completeness for the embedding-space path
        embeddings = model.embedding(sentence)[None]
        with torch.no_grad():
            delta = (model.logit_from_embeddings(embeddings)
                     - model.logit_from_embeddings(torch.zeros_like(embeddings))).item()
        assert abs(importance.sum().item() - delta) <= 1e-3 * (1 + abs(delta))
        # positive words push the positive logit up, negative words down, more than any neutral word
        pol = polarity[sentence]
        if (pol > 0).any():
            assert importance[pol > 0].min() > importance[pol == 0].max()
        if (pol < 0).any():
            assert importance[pol < 0].max() < importance[pol == 0].min()
