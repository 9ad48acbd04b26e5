"""VAE / information bottleneck (article 28): closed-form KL = Monte Carlo, I(x;z) <= E KL, forgetting."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.vae_bottleneck import (VAE, diag_gaussian_log_prob, kl_diag_gaussians, kl_monte_carlo,
                                        kl_to_standard_normal, mutual_information, reparameterize)


def random_params(generator, device, shape=(5, 4), dtype=torch.float32):
    return [torch.randn(shape, generator=generator, dtype=dtype).to(device) for _ in range(4)]


def test_weights_and_samples_depend_on_the_generator_alone(seed):
    runs = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        model = VAE(x_dim=3, z_dim=2, hidden=8, generator=torch.Generator().manual_seed(seed))
        z = reparameterize(torch.zeros(4, 2), torch.zeros(4, 2), torch.Generator().manual_seed(seed))
        runs.append([*model.state_dict().values(), z])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_closed_form_equals_monte_carlo(device, generator):
    mu1, logvar1, mu2, logvar2 = random_params(generator, device)
    closed = kl_diag_gaussians(mu1, logvar1, mu2, logvar2)
    estimate, std_err = kl_monte_carlo(mu1, logvar1, mu2, logvar2, 50_000, generator)
    assert closed.shape == estimate.shape == (5,)
    # within 5 standard errors for every pair (CLT over 50,000 draws: P ~ 6e-7 per pair)
    assert torch.all((estimate - closed).abs() <= 5 * std_err), (estimate - closed) / std_err


def test_closed_form_matches_float64_reference(device, generator):
    mu1, logvar1, mu2, logvar2 = random_params(generator, device, shape=(3, 7, 6))
    got = kl_diag_gaussians(mu1, logvar1, mu2, logvar2).cpu().double()
    m1, l1, m2, l2 = (t.cpu().double() for t in (mu1, logvar1, mu2, logvar2))
    s1, s2 = torch.exp(0.5 * l1), torch.exp(0.5 * l2)
    ref = (torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5).sum(-1)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_kl_basic_identities(device, generator):
    mu, logvar, _, _ = random_params(generator, device)
    assert kl_diag_gaussians(mu, logvar, mu, logvar).abs().max().item() < 1e-6
    assert torch.all(kl_diag_gaussians(mu, logvar, mu + 0.1, logvar - 0.2) > 0)
    expected = 0.5 * (mu ** 2 + torch.exp(logvar) - logvar - 1).sum(-1)
    assert torch.allclose(kl_to_standard_normal(mu, logvar), expected, atol=1e-5)


def test_log_prob_matches_torch_distributions(device, generator):
    z, mu, logvar, _ = random_params(generator, device)
    ref = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    assert torch.allclose(diag_gaussian_log_prob(z, mu, logvar), ref, atol=1e-5)


def test_reparameterize_moments(device, generator):
    mu = torch.tensor([1.0, -2.0], device=device)
    logvar = torch.tensor([0.0, math.log(0.25)], device=device)
    z = reparameterize(mu.expand(100_000, 2), logvar.expand(100_000, 2), generator)
    # 100,000 draws: standard errors 0.0032 (mean) and sqrt(2/n) = 0.45% (variance): both bounds are > 6 SE
    assert torch.allclose(z.mean(0), mu, atol=0.02)
    assert torch.allclose(z.var(0), torch.exp(logvar), rtol=0.03)


def test_mutual_information_limits_and_bound(device, generator):
    n = 200
    same = torch.zeros(n, 2, device=device)
    # identical posteriors: z says nothing about x, I = 0 exactly
    assert abs(mutual_information(same, same, 4, generator).item()) < 1e-6
    # far-apart, sharp posteriors: z identifies x, I = log N
    far = 100 * torch.arange(n, device=device, dtype=torch.float32)[:, None].repeat(1, 2)
    sharp = torch.full((n, 2), -4.0, device=device)
    assert abs(mutual_information(far, sharp, 4, generator).item() - math.log(n)) < 1e-4
    # in general E_x KL(p(z|x) || N(0, I)) = I(x; z) + KL(p(z) || N(0, I)) >= I(x; z)
    mu = torch.randn(n, 2, generator=generator).to(device)
    logvar = torch.full((n, 2), math.log(0.3), device=device)
    info = mutual_information(mu, logvar, 32, generator).item()
    assert 0 < info < kl_to_standard_normal(mu, logvar).mean().item()


def test_vae_losses_are_the_stated_formulas(device, generator, seed):
    model = VAE(x_dim=3, z_dim=2, hidden=16, generator=generator).to(device)
    x = torch.randn(10, 3, generator=generator).to(device)
    rec, kl = model.losses(x, torch.Generator().manual_seed(seed + 3))
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(seed + 3))
    assert torch.allclose(rec, 0.5 * (x - model.decoder(z)).square().sum(-1), atol=1e-6)
    assert torch.allclose(kl, kl_to_standard_normal(mu, logvar), atol=1e-6)


# sweep of 200 seeds: KL after training min 6.44 at beta = 0.01 (bound 2), max 0.034 at beta = 5 (bound 0.15)
@pytest.mark.parametrize("beta,low,high", [(0.01, 2.0, math.inf), (5.0, 0.0, 0.15)])
def test_large_beta_forgets(generator, beta, low, high):
    gen = generator
    data = torch.randn(256, 2, generator=gen) * 2
    model = VAE(x_dim=2, z_dim=2, hidden=16, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        rec, kl = model.losses(data, gen)
        opt.zero_grad()
        (rec + beta * kl).mean().backward()
        opt.step()
    with torch.no_grad():
        kl = model.losses(data, gen)[1].mean().item()
    # the KL term (an upper bound on I(x; z), in nats) is large for small beta and ~0 for large beta
    assert low <= kl <= high, kl
