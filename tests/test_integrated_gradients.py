"""Integrated gradients: completeness, the midpoint error in closed form, saturation, a model with negation."""
from __future__ import annotations

import copy
import functools

import pytest
import torch

from spaces_code.integrated_gradients import (SentimentConfig, SentimentModel, attribution_comparison,
                                              completeness_error, effective_polarity, gradient_times_input,
                                              integrated_gradients, make_sentiment_data, negation_task,
                                              token_importance, NEGATOR, VOCAB)

F64 = torch.float64


def small_mlp(generator, device, d_in=12):
    w1 = (torch.randn(d_in, 32, generator=generator, dtype=F64) / d_in ** 0.5).to(device)
    w2 = (torch.randn(32, generator=generator, dtype=F64) / 32 ** 0.5).to(device)

    def f(batch):  # (B, 3, 4) -> (B,)
        return torch.tanh(batch.flatten(1) @ w1) @ w2
    return f


def test_completeness_on_an_mlp(device, generator):
    f = small_mlp(generator, device)
    for _ in range(5):
        x = (2 * torch.randn(3, 4, generator=generator, dtype=F64)).to(device)
        baseline = torch.randn(3, 4, generator=generator, dtype=F64).to(device)
        attr = integrated_gradients(f, x, baseline, steps=64)
        assert attr.shape == x.shape
        delta = (f(x[None]) - f(baseline[None])).item()
        # sweep of 300 seeds x 5 points: max |sum IG - delta| / (1 + |delta|) = 1.7e-4 at 64 steps; bound 1e-3
        assert abs(attr.sum().item() - delta) <= 1e-3 * (1 + abs(delta))


def test_midpoint_error_equals_its_closed_form_and_is_second_order(device, generator):
    # F(z) = sum_k a_k sin(w_k . z), baseline 0: g(alpha) = sum_k a_k sin(b_k alpha), b_k = w_k . x, and the
    # midpoint sum of g' is sum_k a_k b_k sin(b_k) / (2 S sin(b_k / 2S)) exactly (a sum of cosines), so
    # sum IG - (F(x) - F(0)) = sum_k a_k sin(b_k) (t_k / sin t_k - 1), t_k = b_k / (2S): no asymptotics.
    w = torch.nn.functional.normalize(torch.randn(6, 12, generator=generator, dtype=F64), dim=-1)
    a = torch.randn(6, generator=generator, dtype=F64)
    x = 3 * torch.nn.functional.normalize(torch.randn(12, generator=generator, dtype=F64), dim=0)
    b = w @ x  # |b_k| <= |w_k| |x| = 3 by construction, so t_k = b_k / 2S is never a multiple of pi
    w_dev, a_dev = w.to(device), a.to(device)

    def f(batch):  # (B, 12) -> (B,)
        return torch.sin(batch @ w_dev.T) @ a_dev

    # $g''(1) - g''(0) = -\sum_k a_k b_k^2 \sin b_k$: the Euler-Maclaurin leading coefficient (times -1/24)
    leading = (a * b ** 2 * torch.sin(b)).sum().item() / 24
    for steps in (1, 2, 8, 64, 512):
        t = b / (2 * steps)
        exact = (a * torch.sin(b) * (t / torch.sin(t) - 1)).sum().item()
        got = completeness_error(f, x.to(device), steps=steps).item()
        # float64 rounding only: |sum IG| <= 3 |a|_1, each of S terms rounds at ~1e-16
        assert abs(got - exact) <= 1e-12 * (1 + a.abs().sum().item())
        # t / sin t - 1 = t^2/6 + 7 t^4/360 + ... <= t^2/6 + t^4/40 for |t| <= 1 (here |t| <= 1.5/S):
        # |S^2 err - sum a sin(b) b^2 / 24| <= sum |a sin b| b^4 / (640 S^2)
        if steps >= 2:
            remainder = (a * torch.sin(b)).abs().mul(b ** 4).sum().item() / (640 * steps ** 2)
            assert abs(steps ** 2 * got - leading) <= remainder + 1e-12 * steps ** 2 * (1 + a.abs().sum().item())


def test_exact_for_linear_and_quadratic_models(device, generator):
    w, x, b = (torch.randn(5, generator=generator, dtype=F64).to(device) for _ in range(3))
    # linear: IG_i = w_i (x_i - b_i) for any number of steps
    torch.testing.assert_close(integrated_gradients(lambda z: z @ w, x, b, steps=1), w * (x - b))
    # sum of squares from 0: IG_i = x_i^2 (the midpoint rule integrates the linear gradient exactly)
    torch.testing.assert_close(integrated_gradients(lambda z: z.pow(2).sum(-1), x, steps=3), x ** 2)


def test_saturation_defeats_the_plain_gradient(device):
    # F = tanh(5 (x1 + x2)) saturates at x = (1, 1): the gradient is ~0 there, yet F changed by ~1
    def f(batch):
        return torch.tanh(5 * batch.sum(-1))
    x = torch.ones(2, dtype=F64, device=device)
    naive = gradient_times_input(f, x)
    ig = integrated_gradients(f, x, steps=256)
    assert naive.sum().item() < 1e-6  # 10 sech^2(10) = 8e-8
    assert abs(ig.sum().item() - torch.tanh(torch.tensor(10.0)).item()) < 1e-3  # midpoint error ~3e-4
    torch.testing.assert_close(ig[0], ig[1])  # symmetric inputs get equal credit


def test_device_float32_matches_cpu_float64(device, generator):
    w1 = torch.randn(12, 32, generator=generator, dtype=F64) / 12 ** 0.5
    w2 = torch.randn(32, generator=generator, dtype=F64) / 32 ** 0.5
    w1_32, w2_32 = w1.float().to(device), w2.float().to(device)
    x = torch.linspace(-2, 2, 12, dtype=F64).reshape(3, 4)
    attr = integrated_gradients(lambda b: torch.tanh(b.flatten(1) @ w1_32) @ w2_32, x.to(device).float())
    reference = integrated_gradients(lambda b: torch.tanh(b.flatten(1) @ w1) @ w2, x)
    # float32 against float64: |attr| <= ~2, float32 ulp ~1e-7, summed over 64 midpoints and 32 units
    torch.testing.assert_close(attr.cpu().double(), reference, rtol=1e-4, atol=1e-5)


def test_rejects_bad_arguments(device):
    x = torch.ones(3, device=device)
    with pytest.raises(ValueError):
        integrated_gradients(lambda z: z.sum(-1), x, steps=0)
    with pytest.raises(ValueError):
        integrated_gradients(lambda z: z.sum(-1), x, baseline=torch.zeros(4, device=device))
    with pytest.raises(ValueError):  # f must return one scalar per batch element
        integrated_gradients(lambda z: z, x, steps=4)


NOT = NEGATOR  # token ids: 0, 1 positive; 2, 3 negative; 4 "not"; 5..11 neutral


def polarity_of(config):
    polarity = torch.zeros(config.vocab_size)
    polarity[:2], polarity[2:4] = 1.0, -1.0
    return polarity


def test_model_and_data_depend_on_the_generator_alone(seed):
    config = SentimentConfig()
    runs = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        generator = torch.Generator().manual_seed(seed)
        model = SentimentModel(config, generator)
        tokens, labels = make_sentiment_data(32, polarity_of(config), config.length, generator, negator=NOT)
        runs.append([*model.state_dict().values(), tokens, labels])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_negation_labels():
    polarity = polarity_of(SentimentConfig())
    assert VOCAB[NOT] == "not" and len(VOCAB) == SentimentConfig().vocab_size
    tokens = torch.tensor([[5, NOT, 0, 2, 6], [NOT, NOT, 3, 0, 0], [0, NOT, 6, 2, 5]])
    torch.testing.assert_close(effective_polarity(tokens, polarity, NOT),
                               torch.tensor([[0., 0., -1., -1., 0.], [0., 0., 1., 1., 1.], [1., 0., 0., -1., 0.]]))


@functools.lru_cache(maxsize=2)
def _train(seed):
    generator = torch.Generator().manual_seed(seed)
    model, polarity = negation_task(generator)
    test_tokens, test_labels = make_sentiment_data(400, polarity, SentimentConfig().length, generator, negator=NOT)
    return model, polarity, test_tokens, test_labels


@pytest.fixture
def trained(seed):
    """A model trained on CPU on sentences with negations (trained once per seed, copied for each test)."""
    model, *rest = _train(seed)
    return copy.deepcopy(model), *rest


def test_trained_model_reads_negation(trained):
    model, polarity, tokens, labels = trained
    flipped = (effective_polarity(tokens, polarity, NOT) != polarity[tokens]).any(-1)  # "not good" inside
    with torch.no_grad():
        correct = ((model(tokens) > 0).float() == labels)
    # sweep of 191 seeds: accuracy min 0.9625 (error 0.0375, bound 0.12); on the sentences with a
    # negated sentiment word min 0.927 (error 0.073, bound 0.22)
    assert correct.float().mean().item() >= 0.88
    assert correct[flipped].float().mean().item() >= 0.78


def test_attributions_follow_the_context(device, trained):
    model, polarity, tokens, _ = trained
    model = model.to(device)
    plain, negated = {1.0: [], -1.0: []}, {1.0: [], -1.0: []}
    for sentence in tokens[:100]:
        importance = token_importance(model, sentence.to(device)).cpu()
        embeddings = model.embedding(sentence.to(device))
        # completeness for the embedding-space path; sweep of 191 seeds: max relative error 2.5e-5, bound 1e-3
        error = completeness_error(model.logit_from_embeddings, embeddings.detach()).item()
        with torch.no_grad():
            delta = model(sentence[None].to(device)).item()  # F(0) = 0: the model has no biases
        assert abs(error) <= 1e-3 * (1 + abs(delta))
        for t, token in enumerate(sentence.tolist()):
            p = polarity[token].item()
            if p != 0 and t > 0 and sentence[t - 1] == NOT:
                negated[p].append((importance[t - 1] + importance[t]).item())  # the window "not good"
            elif p != 0:
                plain[p].append(importance[t].item())
    mean = {name: {p: sum(v) / len(v) for p, v in d.items()} for name, d in (("plain", plain), ("negated", negated))}
    # "good" pushes the logit up, "not good" pushes it down (and the reverse for "bad"): the same word
    # gets opposite credit in two contexts, which no token-additive model (IG = occlusion) can show.
    # sweep of 191 seeds: the smallest of these four signed means is 0.86 (typical 2); bound 0
    assert mean["plain"][1.0] > 0 and mean["negated"][1.0] < 0
    assert mean["plain"][-1.0] < 0 and mean["negated"][-1.0] > 0


def test_saturated_sentence_gradient_misses_what_ig_finds(device, trained):
    model, _, tokens, _ = trained
    model = model.to(device)
    with torch.no_grad():
        probability = torch.sigmoid(model(tokens.to(device))).cpu()
    confident = tokens[(probability > 0.999) | (probability < 0.001)][:5]
    assert len(confident) == 5  # sweep of 191 seeds: always >= 5 of 400 sentences
    for sentence in confident.to(device):
        scores = attribution_comparison(model, sentence, steps=256)
        with torch.no_grad():
            change = model.probability_from_embeddings(model.embedding(sentence)[None]).item() - 0.5
        # IG adds up to F(x) - F(0) = p - 1/2 (sweep of 191 seeds: max error 1.9e-7, bound 1e-3) ...
        assert abs(scores["integrated gradients"].sum().item() - change) <= 1e-3
        # ... while the gradient sees nearly nothing: sweep of 191 seeds, max |sum g*x| / |p - 1/2| = 0.0052
        assert abs(scores["gradient × input"].sum().item()) <= 0.02 * abs(change)


def test_device_attributions_match_cpu(device, trained):
    model, _, tokens, _ = trained
    expected = token_importance(model, tokens[0])
    got = token_importance(copy.deepcopy(model).to(device), tokens[0].to(device)).cpu()
    # same float32 model and inputs; different kernels sum in other orders: |IG| ~ 1-10, tolerance 1e-4
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
