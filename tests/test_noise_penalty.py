"""Gaussian input noise ≈ l(x) + σ²/2 · tr Hessian: Monte Carlo, exact Gaussian integrals, gradient penalty."""
from __future__ import annotations

import math

import torch

from spaces_code.noise_penalty import (hessian_trace, hutchinson_trace, mlp_function, noisy_loss,
                                       random_mlp_weights, second_order_noisy_loss, squared_loss_noise_terms)


def squared_loss_of_mlp(generator, device):
    f = mlp_function(random_mlp_weights([8, 32, 32, 1], generator, device=device))
    y = torch.tensor(0.3, dtype=torch.float64, device=device)
    return f, y, (lambda x: (f(x) - y) ** 2)


def test_monte_carlo_matches_second_order_expansion(device, generator):
    # tolerance: 4 Monte Carlo standard errors + 1% of the predicted excess (the O(sigma^4) remainder
    # measured at sigma = 0.1 on this model is below 0.5%)
    _, _, loss = squared_loss_of_mlp(generator, device)
    sigma = 0.1
    for _ in range(3):
        x = torch.randn(8, generator=generator, device=device, dtype=torch.float64)
        mc = noisy_loss(loss, x, sigma, n_samples=20_000, generator=generator)
        excess = mc.mean - loss(x)
        predicted = second_order_noisy_loss(loss, x, sigma) - loss(x)
        assert predicted.item() > 0
        assert abs(excess.item() - predicted.item()) <= 4 * mc.stderr.item() + 0.01 * predicted.item()


def test_exact_gaussian_integral_of_an_exponential(device, generator):
    # $\mathbb{E}[e^{a^\top(x+\varepsilon)}] = e^{a^\top x + \sigma^2\Vert a\Vert^2/2}$: the expansion keeps the
    # first two terms of $e^{s}$, $s = \sigma^2\Vert a\Vert^2/2$, so its relative error is $1-(1+s)e^{-s} \le s^2/2$
    a = torch.randn(5, generator=generator, device=device, dtype=torch.float64)
    x = torch.randn(5, generator=generator, device=device, dtype=torch.float64)
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
    m = torch.randn(6, 6, generator=generator, device=device, dtype=torch.float64)
    a = m @ m.T
    loss = lambda z: 0.5 * ((z @ a) * z).sum(-1)  # noqa: E731
    x = torch.randn(6, generator=generator, device=device, dtype=torch.float64)
    torch.testing.assert_close(hessian_trace(loss, x), a.trace())
    torch.testing.assert_close(second_order_noisy_loss(loss, x, 0.7), loss(x) + 0.5 * 0.49 * a.trace())


def test_hutchinson_estimates_the_trace(device, generator):
    _, _, loss = squared_loss_of_mlp(generator, device)
    x = torch.randn(8, generator=generator, device=device, dtype=torch.float64)
    estimate = hutchinson_trace(loss, x, n_probes=4096, generator=generator)
    assert abs(estimate.mean.item() - hessian_trace(loss, x).item()) <= 4 * estimate.stderr.item()


def test_squared_loss_splits_into_gradient_penalty(device, generator):
    f, y, loss = squared_loss_of_mlp(generator, device)
    x = torch.randn(8, generator=generator, device=device, dtype=torch.float64)
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


def test_device_matches_cpu_float64(device):
    gen_dev = torch.Generator(device=device).manual_seed(5)
    f_dev, y_dev, loss_dev = squared_loss_of_mlp(gen_dev, device)
    weights_cpu = [(w.cpu(), b.cpu()) for w, b in random_mlp_weights(
        [8, 32, 32, 1], torch.Generator(device=device).manual_seed(5), device=device)]
    f_cpu = mlp_function(weights_cpu)
    x = torch.linspace(-1, 1, 8, dtype=torch.float64)
    loss_cpu = lambda z: (f_cpu(z) - 0.3) ** 2  # noqa: E731
    torch.testing.assert_close(second_order_noisy_loss(loss_dev, x.to(device), 0.1).cpu(),
                               second_order_noisy_loss(loss_cpu, x, 0.1), rtol=1e-10, atol=1e-12)
