"""vMF sampling and Bessel functions (article 40): checked against float64 series and quadrature."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.vmf import (bessel_ratio, kl_vmf_uniform, log_bessel_iv, log_sphere_area,
                             mean_resultant_length, sample_vmf, sample_vmf_w, vmf_log_normalizer,
                             vmf_log_prob, vmf_w_log_density)

NUS = [0.0, 0.5, 1.0, 1.5, 4.5, 49.0, 499.5]
KAPPAS = [1e-3, 0.1, 1.0, 7.5, 100.0, 1e3, 1e4]


def series_log_iv(nu: float, x: float) -> float:
    """Naive reference: log of I_nu(x) = sum_k (x/2)^{2k+nu} / (k! Gamma(k+nu+1)); all terms positive."""
    k = torch.arange(int(2 * x + 60 * math.sqrt(x) + 400), dtype=torch.float64)
    terms = (2 * k + nu) * math.log(x / 2) - torch.lgamma(k + 1) - torch.lgamma(k + nu + 1)
    return torch.logsumexp(terms, 0).item()


def test_log_bessel_and_ratio_match_series(device):
    kappa = torch.tensor(KAPPAS, dtype=torch.float64, device=device)
    for nu in NUS:
        ref = torch.tensor([series_log_iv(nu, x) for x in KAPPAS], dtype=torch.float64)
        got = log_bessel_iv(nu, kappa).cpu()
        # relative 1e-12 on log I (values from -3.8e3 to 1e4)
        assert torch.allclose(got, ref, rtol=1e-12, atol=1e-11), (nu, got - ref)
        if nu > 0:
            ref_ratio = torch.exp(ref - torch.tensor([series_log_iv(nu - 1, x) for x in KAPPAS],
                                                     dtype=torch.float64))
            assert torch.allclose(bessel_ratio(nu, kappa).cpu(), ref_ratio, rtol=1e-11, atol=0)


def test_mean_resultant_length_closed_forms():
    kappa = torch.logspace(-3, 4, 50, dtype=torch.float64)
    # d = 3: A_3(kappa) = coth(kappa) - 1/kappa
    a3 = 1 / torch.tanh(kappa) - 1 / kappa
    assert torch.allclose(mean_resultant_length(3, kappa)[kappa > 1e-2], a3[kappa > 1e-2], rtol=1e-12)
    # d = 2: A_2 = I_1/I_0 = i1e/i0e
    a2 = torch.special.i1e(kappa) / torch.special.i0e(kappa)
    assert torch.allclose(mean_resultant_length(2, kappa), a2, rtol=1e-12)
    # small kappa: A_d ~ kappa/d; large kappa: 1 - A_d ~ (d-1)/(2 kappa)
    assert abs(mean_resultant_length(1000, 1e-3).item() * 1000 / 1e-3 - 1) < 1e-6
    assert abs((1 - mean_resultant_length(5, 1e4).item()) * 2e4 / 4 - 1) < 1e-3


@pytest.mark.parametrize("dim,kappa", [(2, 0.3), (3, 1e-3), (3, 40.0), (10, 5.0), (200, 1e3)])
def test_w_density_integrates_to_one(dim, kappa):
    # w = cos(theta): integral over theta of p(cos theta) sin(theta) = 1 (no endpoint singularity)
    m = 400000
    theta = (torch.arange(m, dtype=torch.float64) + 0.5) * (math.pi / m)  # midpoint rule
    log_p = vmf_w_log_density(dim, kappa, torch.cos(theta)) + torch.log(torch.sin(theta))
    total = torch.exp(log_p).sum().item() * (math.pi / m)
    assert abs(total - 1) < 1e-6


def angle_from_mu(x: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    # theta = 2 asin(|x - mu|/2): accurate near theta = 0, unlike acos
    return 2 * torch.asin(((x.double() - mu.double()).norm(dim=-1) / 2).clamp(max=1))


@pytest.mark.parametrize("dim,kappa", [(2, 1e-3), (2, 3.0), (3, 1e4), (5, 0.7), (64, 20.0),
                                       (1000, 1e-3), (1000, 1e4)])
def test_sampled_angle_follows_exact_cdf(seed, dim, kappa):
    """Kolmogorov–Smirnov distance between sampled angles and the quadrature CDF < 2.5/sqrt(n)."""
    n = 8000 if dim < 1000 else 3000
    gen = torch.Generator().manual_seed(seed + dim)
    mu = torch.nn.functional.normalize(torch.randn(dim, generator=gen, dtype=torch.float64), dim=0)
    theta_s, _ = torch.sort(angle_from_mu(sample_vmf(mu, kappa, n, gen), mu))
    grid = torch.linspace(0, math.pi, 200001, dtype=torch.float64)
    # log density of theta: kappa (cos theta - 1) + (d - 2) log sin theta, with cos - 1 = -2 sin^2(theta/2)
    log_p = -2 * kappa * torch.sin(grid / 2) ** 2 + (dim - 2) * torch.log(torch.sin(grid).clamp_min(1e-300))
    p = torch.exp(log_p - log_p.max())
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64),
                     torch.cumsum((p[1:] + p[:-1]) / 2 * (grid[1:] - grid[:-1]), 0)])
    cdf = cdf / cdf[-1]
    exact = torch.from_numpy(__import__("numpy").interp(theta_s.numpy(), grid.numpy(), cdf.numpy()))
    ecdf_hi = torch.arange(1, n + 1, dtype=torch.float64) / n
    ks = torch.maximum((ecdf_hi - exact).abs(), (ecdf_hi - 1 / n - exact).abs()).max().item()
    # Kolmogorov: P(sqrt(n) KS > 2.5) ~ 2 exp(-2 * 2.5^2) = 7e-6 per case (1.8 failed 0.3% per case)
    assert ks < 2.5 / math.sqrt(n), ks


@pytest.mark.parametrize("dim", [2, 3, 17, 1000])
@pytest.mark.parametrize("kappa", [1e-3, 1.0, 50.0, 1e4])
def test_mean_resultant_length_unit_norm_and_direction(device, generator, dim, kappa):
    n = 4000 if dim < 1000 else 1500
    mu = torch.nn.functional.normalize(torch.randn(dim, generator=generator, device=device,
                                                   dtype=torch.float64), dim=0)
    x = sample_vmf(mu, kappa, n, generator)
    assert x.shape == (n, dim) and x.dtype == torch.float64 and x.device.type == device.type
    assert (x.norm(dim=-1) - 1).abs().max().item() < 1e-12
    w = x @ mu
    a_d = mean_resultant_length(dim, kappa).item()
    # E<mu, x> = A_d(kappa), within 5 standard errors
    assert abs(w.mean().item() - a_d) <= 5 * w.std().item() / math.sqrt(n) + 1e-12
    # the component of the mean orthogonal to mu vanishes: E|mean_perp|^2 = (1 - E w^2)/n. Its norm over
    # that RMS is chi_k / sqrt(k) with k = dim - 1 <= 1 in the worst case (dim 2): P(> 6) = P(|Z| > 6) ~ 2e-9
    # (analytic). The former 3x RMS bound failed with probability 0.27% per case (seed 8, dim 2).
    mean = x.mean(0)
    perp = mean - (mean @ mu) * mu
    assert perp.norm().item() <= 6 * math.sqrt((1 - (w * w).mean().item()) / n)


def test_float32_and_empty(device, generator):
    mu = torch.zeros(7, device=device)
    mu[3] = 1
    x = sample_vmf(mu, 12.0, 500, generator)
    assert x.dtype == torch.float32 and (x.norm(dim=-1) - 1).abs().max().item() < 1e-6
    assert sample_vmf(mu, torch.tensor(3.0), 0, generator).shape == (0, 7)

def test_cpu_generator_gives_the_same_sample_on_every_device(device, seed):
    # drawn on the generator's device (CPU) and moved: the device only changes where the arithmetic runs
    mu = torch.nn.functional.normalize(torch.arange(1.0, 6.0, dtype=torch.float64), dim=0)
    expected = sample_vmf(mu, 4.0, 300, torch.Generator().manual_seed(seed))
    got = sample_vmf(mu.to(device), 4.0, 300, torch.Generator().manual_seed(seed))
    assert got.device.type == device.type
    # float64 arithmetic on both: the same draws give the same points up to rounding
    torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim,kappa", [(3, 0.5), (16, 20.0), (128, 60.0)])
def test_kl_to_uniform_is_constant_in_mu(device, generator, dim, kappa):
    kl = kl_vmf_uniform(dim, kappa).item()
    assert kl > 0
    n = 20000 if dim < 100 else 5000
    for _ in range(3):
        mu = torch.nn.functional.normalize(torch.randn(dim, generator=generator, device=device,
                                                       dtype=torch.float64), dim=0)
        x = sample_vmf(mu, kappa, n, generator)
        # Monte Carlo KL = E[log p(x) - log(1/|S^{d-1}|)]
        terms = vmf_log_prob(x, mu, kappa) + log_sphere_area(dim)
        assert abs(terms.mean().item() - kl) <= 5 * terms.std().item() / math.sqrt(n)


def test_kl_limits():
    # kappa -> 0: KL ~ kappa^2 / (2d); KL grows like (d-1)/2 log kappa for large kappa
    for dim in (2, 3, 50):
        assert abs(kl_vmf_uniform(dim, 1e-3).item() / (1e-6 / (2 * dim)) - 1) < 1e-3
    big = kl_vmf_uniform(10, torch.tensor([1e3, 1e4], dtype=torch.float64))
    assert abs((big[1] - big[0]).item() / (4.5 * math.log(10)) - 1) < 1e-2


def test_log_normalizer_device_matches_cpu(device):
    kappa = torch.logspace(-3, 4, 15, dtype=torch.float64)
    for dim in (2, 3, 64, 1000):
        cpu = vmf_log_normalizer(dim, kappa)
        dev = vmf_log_normalizer(dim, kappa.to(device)).cpu()
        assert torch.allclose(cpu, dev, rtol=1e-12, atol=1e-9)


def test_reparameterised_gradient_in_mu(seed):
    # E[x] = A_d(kappa) mu/|mu|, so d E[x]/d mu = A_d (I - mu mu^T) at a unit mu
    dim, kappa, n = 4, 5.0, 20000
    mu = torch.nn.functional.normalize(torch.tensor([0.3, -1.0, 0.5, 0.2], dtype=torch.float64), dim=0)

    def mean_sample(m):
        return sample_vmf(m / m.norm(), kappa, n, torch.Generator().manual_seed(seed)).mean(0)

    jac = torch.autograd.functional.jacobian(mean_sample, mu)
    expected = mean_resultant_length(dim, kappa).item() * (torch.eye(dim, dtype=torch.float64)
                                                           - torch.outer(mu, mu))
    assert (jac - expected).abs().max().item() < 0.03


def test_wood_w_sampler_extremes(generator):
    gen = generator
    for dim in (2, 1000):
        for kappa in (1e-3, 1e4):
            one_minus_w = sample_vmf_w(dim, kappa, 3000, gen)
            assert torch.all((one_minus_w >= 0) & (one_minus_w <= 2))
            a_d = mean_resultant_length(dim, kappa).item()
            assert abs(1 - one_minus_w.mean().item() - a_d) <= 5 * one_minus_w.std().item() / math.sqrt(3000)


@pytest.mark.parametrize("bad", [
    dict(mu=torch.tensor([1.0, 1.0]), kappa=1.0, n=5),           # not unit
    dict(mu=torch.tensor([[1.0, 0.0]]), kappa=1.0, n=5),         # not 1-D
    dict(mu=torch.tensor([1.0]), kappa=1.0, n=5),                # d = 1
    dict(mu=torch.tensor([1, 0]), kappa=1.0, n=5),               # integer dtype
    dict(mu=torch.tensor([float("nan"), 0.0]), kappa=1.0, n=5),
    dict(mu=torch.tensor([1.0, 0.0]), kappa=0.0, n=5),
    dict(mu=torch.tensor([1.0, 0.0]), kappa=-2.0, n=5),
    dict(mu=torch.tensor([1.0, 0.0]), kappa=float("inf"), n=5),
    dict(mu=torch.tensor([1.0, 0.0]), kappa=torch.tensor([1.0, 2.0]), n=5),
    dict(mu=torch.tensor([1.0, 0.0]), kappa=1.0, n=-1),
    dict(mu=torch.tensor([1.0, 0.0]), kappa=1.0, n=2.5),
])
def test_invalid_inputs_raise(bad):
    with pytest.raises(ValueError):
        sample_vmf(**bad)


def test_invalid_bessel_orders():
    with pytest.raises(ValueError):
        log_bessel_iv(0.3, 1.0)
    with pytest.raises(ValueError):
        bessel_ratio(0.0, 1.0)
    with pytest.raises(ValueError):
        mean_resultant_length(3, 0.0)
