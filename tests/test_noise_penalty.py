"""Gaussian input noise ≈ l(x) + σ²/2 · tr Hessian: Monte Carlo, exact Gaussian integrals, gradient penalty."""
from __future__ import annotations

import math

import torch

import numpy as np

from spaces_code.noise_penalty import (fit_mlp, hessian, hessian_trace, hutchinson_trace, mlp_function,
                                       noise_remainder, noisy_loss, random_mlp_weights, second_order_noisy_loss,
                                       squared_loss_noise_terms)


def squared_loss_of_mlp(generator, device):
    # the CPU generator draws the weights, which are then moved to ``device``
    f = mlp_function(random_mlp_weights([8, 32, 32, 1], generator, device=device))
    y = torch.tensor(0.3, dtype=torch.float64, device=device)
    return f, y, (lambda x: (f(x) - y) ** 2)


def test_monte_carlo_matches_second_order_expansion(device, generator):
    # E l(x + eps) - l(x) = sigma^2/2 tr H + r(sigma), r = O(sigma^4) of EITHER sign (tr H itself can be
    # negative for l = (f - y)^2). Tolerance: 4 Monte Carlo standard errors + 5 sigma^4; sweep of 200 seeds
    # (3 points each, at sigma = 0.1): the error beyond 4 s.e. is at most 1.55 sigma^4 (r ~ C sigma^4 with
    # |C| <~ 1.5 on this model), so 5 sigma^4 is > 3x that.
    _, _, loss = squared_loss_of_mlp(generator, device)
    sigma = 0.1
    for _ in range(3):
        x = torch.randn(8, generator=generator, dtype=torch.float64).to(device)
        mc = noisy_loss(loss, x, sigma, n_samples=20_000, generator=generator)
        excess = mc.mean - loss(x)
        predicted = second_order_noisy_loss(loss, x, sigma) - loss(x)
        assert abs(excess.item() - predicted.item()) <= 4 * mc.stderr.item() + 5 * sigma ** 4


def test_remainder_is_fourth_order_whatever_its_sign(device, generator):
    # the rest r(sigma) = E l(x + sigma u) - l(x) - sigma^2/2 tr H, estimated with a control variate that is
    # O(sigma^4) sample by sample, on the SAME u for every sigma: |r| ~ C sigma^4, slope 4 on a log-log plot.
    # Sweep of 200 seeds: slope in [3.966, 4.097]; bound |slope - 4| < 0.3 (at sigma = 0.0125..0.05 the
    # sigma^6 terms pushed it to 4.44 on some streams: the smaller sigmas below keep it in its regime).
    _, _, loss = squared_loss_of_mlp(generator, device)
    x = torch.randn(8, generator=generator, dtype=torch.float64).to(device)
    u_seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    sigmas = (0.005, 0.01, 0.02)
    rest = [noise_remainder(loss, x, s, 2048, torch.Generator().manual_seed(u_seed)).mean.item() for s in sigmas]
    slope = np.polyfit(np.log(sigmas), np.log(np.abs(rest)), 1)[0]
    assert abs(slope - 4) < 0.3


def test_noise_is_a_gradient_penalty_at_a_trained_network(generator):
    # sigma^2/2 tr H = sigma^2 |grad f|^2 + sigma^2 (f - y) Laplacian f: the curvature term carries the residual,
    # so at a fit it vanishes against the gradient penalty. 16 points of sin(2 x1) cos(x2), a 2-16-16-1 tanh MLP.
    # Sweep of 200 seeds: sum|curvature| / sum(penalty) at init in [0.30, 7.6], after 600 Adam steps at
    # most 0.085 (training MSE <= 0.003), trained/init at most 0.143; bounds trained < 0.26, trained < init / 2.
    x = torch.randn(16, 2, generator=generator, dtype=torch.float64)
    y = torch.sin(2 * x[:, 0]) * torch.cos(x[:, 1])
    initial = random_mlp_weights([2, 16, 16, 1], generator)
    ratios = []
    for weights in (initial, fit_mlp(initial, x, y, steps=600, lr=2e-2)):
        f = mlp_function(weights)
        terms = [squared_loss_noise_terms(f, xi, yi, 0.1) for xi, yi in zip(x, y)]
        ratios.append(sum(t.curvature_term.abs().item() for t in terms) / sum(t.gradient_penalty.item() for t in terms))
    assert ratios[1] < 0.26
    assert ratios[1] < ratios[0] / 2


def test_draws_come_from_the_generator_alone(seed):
    results = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        weights = random_mlp_weights([3, 4, 1], torch.Generator().manual_seed(seed))
        f = mlp_function(weights)
        loss = lambda z: f(z) ** 2  # noqa: E731
        x = torch.ones(3, dtype=torch.float64)
        gen = torch.Generator().manual_seed(seed)
        results.append(torch.cat([torch.cat([w.reshape(-1), b]) for w, b in weights]
                                 + [noisy_loss(loss, x, 0.1, 64, gen).mean[None],
                                    hutchinson_trace(loss, x, 16, gen).mean[None],
                                    noise_remainder(loss, x, 0.1, 16, gen).mean[None]]))
    assert torch.equal(results[0], results[1])


def test_exact_gaussian_integral_of_an_exponential(device, generator):
    # $\mathbb{E}[e^{a^\top(x+\varepsilon)}] = e^{a^\top x + \sigma^2\Vert a\Vert^2/2}$: the expansion keeps the
    # first two terms of $e^{s}$, $s = \sigma^2\Vert a\Vert^2/2$, so its relative error is $1-(1+s)e^{-s} \le s^2/2$
    a = torch.randn(5, generator=generator, dtype=torch.float64).to(device)
    x = torch.randn(5, generator=generator, dtype=torch.float64).to(device)
    loss = lambda z: torch.exp(z @ a)  # noqa: E731  batched (..., d) -> (...)
    for sigma in (0.01, 0.1, 0.3):
        s = sigma ** 2 * (a @ a).item() / 2
        exact = math.exp((a @ x).item() + s)
        approx = second_order_noisy_loss(loss, x, sigma).item()
        rel = 1 - approx / exact
        assert 0 <= rel <= s ** 2 / 2 + 1e-14
        torch.testing.assert_close(torch.tensor(rel, dtype=torch.float64), torch.tensor(1 - (1 + s) * math.exp(-s),
                                   dtype=torch.float64), rtol=1e-8, atol=1e-15)
        mc = noisy_loss(loss, x, sigma, n_samples=20_000, generator=generator)
        assert abs(mc.mean.item() - exact) <= 4 * mc.stderr.item()


def test_quadratic_loss_is_exact(device, generator):
    # for a quadratic loss the expansion has no remainder: E l(x + eps) = l(x) + sigma^2/2 tr A exactly
    m = torch.randn(6, 6, generator=generator, dtype=torch.float64).to(device)
    a = m @ m.T
    loss = lambda z: 0.5 * ((z @ a) * z).sum(-1)  # noqa: E731
    x = torch.randn(6, generator=generator, dtype=torch.float64).to(device)
    torch.testing.assert_close(hessian_trace(loss, x), a.trace())
    torch.testing.assert_close(second_order_noisy_loss(loss, x, 0.7), loss(x) + 0.5 * 0.49 * a.trace())


def test_hutchinson_estimates_the_trace(device, generator):
    _, _, loss = squared_loss_of_mlp(generator, device)
    x = torch.randn(8, generator=generator, dtype=torch.float64).to(device)
    estimate = hutchinson_trace(loss, x, n_probes=4096, generator=generator)
    assert abs(estimate.mean.item() - hessian_trace(loss, x).item()) <= 4 * estimate.stderr.item()


def test_squared_loss_splits_into_gradient_penalty(device, generator):
    f, y, loss = squared_loss_of_mlp(generator, device)
    x = torch.randn(8, generator=generator, dtype=torch.float64).to(device)
    sigma = 0.2
    terms = squared_loss_noise_terms(f, x, y, sigma)
    torch.testing.assert_close(terms.loss + terms.gradient_penalty + terms.curvature_term,
                               second_order_noisy_loss(loss, x, sigma), rtol=1e-12, atol=1e-14)
    # at an exact fit only the gradient penalty is left
    fitted = squared_loss_noise_terms(f, x, f(x), sigma)
    assert fitted.loss.item() == 0 and fitted.curvature_term.item() == 0
    point = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(f(point), point)[0]
    torch.testing.assert_close(fitted.gradient_penalty, sigma ** 2 * grad.pow(2).sum())
    # and the Laplacian term against the full (autograd.functional) Hessian of f
    hessian = torch.autograd.functional.hessian(f, x)
    torch.testing.assert_close(terms.curvature_term, sigma ** 2 * (f(x) - y) * hessian.trace())


def test_device_matches_cpu_float64(device, seed):
    # the same CPU-drawn weights and point on both devices; float64 throughout: agreement to ~1e-12
    f_dev, y_dev, loss_dev = squared_loss_of_mlp(torch.Generator().manual_seed(seed), device)
    _, _, loss_cpu = squared_loss_of_mlp(torch.Generator().manual_seed(seed), "cpu")
    x = torch.linspace(-1, 1, 8, dtype=torch.float64)
    torch.testing.assert_close(second_order_noisy_loss(loss_dev, x.to(device), 0.1).cpu(),
                               second_order_noisy_loss(loss_cpu, x, 0.1), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(hessian(loss_dev, x.to(device)).cpu(), hessian(loss_cpu, x), rtol=1e-10, atol=1e-12)
