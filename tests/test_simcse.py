"""Unsupervised SimCSE (https://kexue.fm/archives/8348)."""
import math

import pytest
import torch

from spaces_code.simcse import (TinyEncoder, alignment_uniformity, dropout, simcse_loss,
                                simcse_views)


def naive_loss(z1, z2, temperature, in_view_negatives):
    """float64 loops: softmax cross-entropy over cosine similarities / temperature."""
    z1, z2 = z1.double().cpu(), z2.double().cpu()
    cos = lambda a, b: float(a @ b / (a.norm() * b.norm()))
    n, total = z1.shape[0], 0.0
    if in_view_negatives:
        h = [v for i in range(n) for v in (z1[i], z2[i])]  # h_1, h_1', h_2, h_2', ...
        for i in range(2 * n):
            positive = i + 1 if i % 2 == 0 else i - 1  # the other dropout view of the same sentence
            logits = {j: cos(h[i], h[j]) / temperature for j in range(2 * n) if j != i}
            total -= logits[positive] - math.log(sum(math.exp(v) for v in logits.values()))
        return total / (2 * n)
    for i in range(n):
        logits = [cos(z1[i], z2[j]) / temperature for j in range(n)]
        total -= logits[i] - math.log(sum(math.exp(v) for v in logits))
    return total / n


@pytest.mark.parametrize("in_view_negatives", [True, False])
@pytest.mark.parametrize("temperature", [0.05, 0.5, 2.0])
@pytest.mark.parametrize("n", [1, 2, 7])
def test_loss_equals_naive_cross_entropy(device, generator, in_view_negatives, temperature, n):
    z1 = (torch.randn(n, 5, generator=generator) * 3).to(device)
    z2 = z1 + 0.3 * torch.randn(n, 5, generator=generator).to(device)
    loss = simcse_loss(z1, z2, temperature, in_view_negatives)
    expected = naive_loss(z1, z2, temperature, in_view_negatives)
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_closed_form_for_identical_orthonormal_views(device):
    n, tau = 4, 0.1
    z = torch.eye(n, 6, device=device, dtype=torch.float64) * 7.0  # the scale is irrelevant (cosine)
    # positive cos = 1; negatives cos = 0: 2n - 2 of them in the 2N form, n - 1 in the paper's
    article = math.log1p((2 * n - 2) * math.exp(-1 / tau))
    paper = math.log1p((n - 1) * math.exp(-1 / tau))
    assert simcse_loss(z, z, tau).item() == pytest.approx(article, rel=1e-12)
    assert simcse_loss(z, z, tau, False).item() == pytest.approx(paper, rel=1e-12)


def test_swapping_positives_raises_the_loss(device, generator):
    z1 = torch.randn(6, 8, generator=generator).to(device)
    z2 = z1 + 0.1 * torch.randn(6, 8, generator=generator).to(device)
    right = simcse_loss(z1, z2)
    wrong = simcse_loss(z1, z2.roll(1, 0))  # pair each sentence with another sentence's view
    # tau = 0.05: the right pairs have cos ~ 0.99, the wrong ones cos ~ N(0, 1/8), a gap of ~1/tau = 20 nats
    assert wrong > right + 1.0


def test_dropout_is_unbiased_and_drops_p(device, generator):
    x = torch.ones(200_000, device=device)
    y = dropout(x, 0.25, generator)  # a CPU generator: the mask is drawn on CPU and moved
    # binomial standard error sqrt(0.25 * 0.75 / 2e5) = 9.7e-4: 0.005 is 5.2 SE; the mean's SE is 1.3e-3
    assert (y == 0).float().mean().item() == pytest.approx(0.25, abs=0.005)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.equal(dropout(x, 0.0, generator), x)


def test_encoder_depends_on_the_generator_alone(seed):
    runs = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        encoder = TinyEncoder(vocab_size=12, max_len=6, dim=8, n_head=2, generator=torch.Generator().manual_seed(seed))
        views = simcse_views(encoder, torch.tensor([[1, 2, 3, 0]]), torch.Generator().manual_seed(seed))
        runs.append([*encoder.state_dict().values(), *views])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_two_views_differ_only_by_dropout(device, generator):
    encoder = TinyEncoder(vocab_size=20, max_len=10, dim=16, p_drop=0.2, generator=generator).to(device)
    ids = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]], device=device)
    z1, z2 = simcse_views(encoder, ids, generator)
    assert not torch.allclose(z1, z2)
    encoder.eval()
    e1, e2 = simcse_views(encoder, ids, generator)
    assert torch.equal(e1, e2)
    # padding is ignored: a sentence encodes the same with or without extra padding
    padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long, device=device)], 1)
    assert torch.allclose(encoder(padded)[0], e1[0], atol=1e-5)


def test_gradient_matches_finite_differences(device, generator):
    z1 = torch.randn(5, 4, generator=generator, dtype=torch.float64).to(device).requires_grad_(True)
    z2 = torch.randn(5, 4, generator=generator, dtype=torch.float64).to(device)
    simcse_loss(z1, z2, 0.3).backward()
    step, numeric = 1e-6, torch.zeros_like(z1)
    with torch.no_grad():
        for index in range(z1.numel()):
            e = torch.zeros(z1.numel(), dtype=torch.float64, device=device)
            e[index] = step
            e = e.view_as(z1)
            numeric.view(-1)[index] = (simcse_loss(z1 + e, z2, 0.3) - simcse_loss(z1 - e, z2, 0.3)) / (2 * step)
    assert torch.allclose(z1.grad, numeric, atol=1e-7)


def test_alignment_and_uniformity_match_naive_and_closed_forms(device, generator):
    z1 = torch.randn(6, 3, generator=generator, dtype=torch.float64).to(device)
    z2 = z1 + 0.2 * torch.randn(6, 3, generator=generator, dtype=torch.float64).to(device)
    alignment, uniformity = alignment_uniformity(z1, z2)
    f1 = [v / v.norm() for v in z1.cpu()]
    f2 = [v / v.norm() for v in z2.cpu()]
    naive_alignment = sum(float((a - b).pow(2).sum()) for a, b in zip(f1, f2)) / 6
    pairs = [float((f1[i] - f1[j]).pow(2).sum()) for i in range(6) for j in range(6) if i != j]
    naive_uniformity = math.log(sum(math.exp(-2 * d) for d in pairs) / len(pairs))
    assert alignment.item() == pytest.approx(naive_alignment, abs=1e-12)
    assert uniformity.item() == pytest.approx(naive_uniformity, abs=1e-12)
    # two antipodal points: perfectly aligned views, |x - y|^2 = 4, uniformity = -2 * 4
    x = torch.tensor([[1.0, 0.0], [-3.0, 0.0]], device=device, dtype=torch.float64)
    alignment, uniformity = alignment_uniformity(x, 2 * x)
    assert alignment.item() == pytest.approx(0.0, abs=1e-15)
    assert uniformity.item() == pytest.approx(-8.0, abs=1e-12)


def test_whitening_gives_identity_covariance(device, generator):
    from spaces_code.simcse import whitening
    mix = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    x = (torch.randn(500, 6, generator=generator, dtype=torch.float64) @ mix + 3).to(device)
    mu, w = whitening(x)
    white = (x - mu) @ w
    torch.testing.assert_close(white.T @ white / 500, torch.eye(6, dtype=torch.float64, device=device),
                               rtol=0, atol=1e-9)
    _, w2 = whitening(x, dim=2)  # the two largest directions only
    assert w2.shape == (6, 2)
    torch.testing.assert_close(w2, w[:, :2])


def test_spearman_is_pearson_of_ranks(device, generator):
    from spaces_code.simcse import spearman
    a = torch.randn(50, generator=generator, dtype=torch.float64)
    b = a + torch.randn(50, generator=generator, dtype=torch.float64)
    # no ties: rho = 1 - 6 sum d_i^2 / (n (n^2 - 1))
    d = (a.argsort().argsort() - b.argsort().argsort()).double()
    expected = 1 - 6 * d.square().sum().item() / (50 * (50 ** 2 - 1))
    assert spearman(a.to(device), b.to(device)).item() == pytest.approx(expected, abs=1e-12)
    # invariant under increasing maps, -1 under a decreasing one; ties get their mean rank
    assert spearman(a, torch.exp(3 * a)).item() == pytest.approx(1.0, abs=1e-12)
    assert spearman(a, -a ** 3).item() == pytest.approx(-1.0, abs=1e-12)
    tied = torch.tensor([1.0, 2.0, 2.0, 3.0])
    assert spearman(tied, torch.tensor([1.0, 2.5, 2.5, 4.0])).item() == pytest.approx(1.0, abs=1e-12)


def test_toy_sts_gold_counts_shared_content_words(seed):
    from spaces_code.simcse import toy_sts
    runs = []
    for global_seed in (seed + 1, seed + 2):  # the sampler depends on its generator alone
        torch.manual_seed(global_seed)
        runs.append(toy_sts(40, n_content=50, n_stop=3, length=5, max_stop=4,
                            generator=torch.Generator().manual_seed(seed)))
    for first, second in zip(*runs):
        assert torch.equal(first, second)
    a, b, gold = runs[0]
    assert a.shape == b.shape == (40, 9) and a.max() <= 53 and b.max() <= 53
    for row_a, row_b, k in zip(a.tolist(), b.tolist(), gold.tolist()):
        content_a = [t for t in row_a if t > 3]
        content_b = [t for t in row_b if t > 3]
        assert len(set(content_a)) == len(content_a) == len(content_b) == len(set(content_b)) == 5
        assert len(set(content_a) & set(content_b)) == k
        assert sum(0 < t <= 3 for t in row_a) <= 4  # stop words, at most max_stop of them


def test_simcse_training_raises_sts_spearman(device, generator):
    from spaces_code.simcse import sts_spearman, toy_sts, train_simcse
    a, b, gold = (t.to(device) for t in toy_sts(300, generator=generator))
    unlabelled = torch.cat(toy_sts(500, generator=generator)[:2]).to(device)
    encoder = TinyEncoder(409, 16, dim=32, n_head=4, p_drop=0.1, generator=generator).to(device)
    untrained = sts_spearman(encoder, a, b, gold).item()
    whitened = sts_spearman(encoder, a, b, gold, whiten=True).item()
    losses = train_simcse(encoder, unlabelled, 30, generator=generator)
    trained = sts_spearman(encoder, a, b, gold).item()
    assert losses[-1] < losses[0]
    # sweep of 200 seeds (CPU, these sizes, 30 steps): SimCSE - untrained min 0.078 (mean 0.236), bound 0.025
    assert trained > untrained + 0.025
    # the same sweep: whitened - untrained min 0.379 (mean 0.524), bound 0.12
    assert whitened > untrained + 0.12


def test_train_simcse_depends_on_the_generator_alone(seed):
    from spaces_code.simcse import toy_sts, train_simcse
    runs = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(seed)
        sentences = torch.cat(toy_sts(20, n_content=30, generator=g)[:2])
        encoder = TinyEncoder(33, 16, dim=8, n_head=2, generator=g)
        losses = train_simcse(encoder, sentences, 3, batch=8, generator=g)
        runs.append([torch.tensor(losses), *encoder.state_dict().values()])
    for first, second in zip(*runs):
        assert torch.equal(first, second)
