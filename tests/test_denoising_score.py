"""DAE optimum r(x) = x + sigma^2 grad log p_sigma(x) on a 2-D Gaussian mixture; learned vs true score;
annealed Langevin samples."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.denoising_score import (
    Denoiser,
    GaussianMixture,
    annealed_langevin,
    dae_loss,
    geometric_sigmas,
    optimal_denoiser,
    train_denoiser,
)


def _mixture(device, dtype=torch.float32):
    angles = torch.arange(4, dtype=dtype) * math.pi / 2
    return GaussianMixture(means=(2 * torch.stack([angles.cos(), angles.sin()], -1)).to(device),
                           stds=torch.full((4,), 0.3, dtype=dtype, device=device),
                           weights=torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=dtype, device=device))


@pytest.mark.parametrize("sigma", [0.0, 0.1, 1.0])
def test_closed_form_score_equals_autograd_of_log_prob(device, generator, sigma):
    mixture = _mixture(device, torch.float64)
    x = (3 * torch.randn(500, 2, generator=generator, dtype=torch.float64)).to(device)
    x.requires_grad_(True)
    autograd = torch.autograd.grad(mixture.log_prob(x, sigma).sum(), x)[0]
    torch.testing.assert_close(mixture.score(x.detach(), sigma), autograd, atol=1e-10, rtol=1e-10)
    # far from the data (extreme inputs) the score stays finite and points back to the mixture
    far = torch.tensor([[1e3, -1e3]], device=device, dtype=torch.float64)
    assert bool(torch.isfinite(mixture.score(far, sigma)).all()) and float((mixture.score(far, sigma) * far).sum()) < 0


def test_optimal_denoiser_is_the_posterior_mean(device):
    """x + sigma^2 grad log p_sigma(x) equals E[x | x_noisy], computed by quadrature on a grid in float64."""
    mixture = _mixture(device, torch.float64)
    sigma = 0.5
    grid = torch.linspace(-4, 4, 801, device=device, dtype=torch.float64)
    points = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1).reshape(-1, 2)  # (M, 2)
    prior = mixture.log_prob(points)
    noisy = torch.tensor([[0.3, 0.1], [1.5, 1.5], [-2.5, 0.4]], device=device, dtype=torch.float64)
    log_post = prior[None] - ((noisy[:, None] - points[None]) ** 2).sum(-1) / (2 * sigma ** 2)  # (3, M)
    posterior_mean = torch.softmax(log_post, dim=-1) @ points
    torch.testing.assert_close(optimal_denoiser(mixture, noisy, sigma), posterior_mean, atol=1e-6, rtol=0)


def test_small_sigma_optimum_is_x_plus_sigma2_score_of_p(device, generator):
    """r(x) - x = sigma^2 grad log p(x) + O(sigma^4): the relative gap shrinks ~ sigma^2."""
    mixture = _mixture(device, torch.float64)
    x = mixture.sample(1000, generator)
    gaps = []
    for sigma in (0.05, 0.025):
        exact = optimal_denoiser(mixture, x, sigma) - x
        approx = sigma ** 2 * mixture.score(x)
        gaps.append(float((exact - approx).norm(dim=-1).mean() / approx.norm(dim=-1).mean()))
    assert gaps[0] < 0.05 and gaps[1] < gaps[0] / 3


def test_optimal_denoiser_minimises_the_dae_loss(device, generator):
    """The DAE loss of r* is below that of perturbed denoisers (Monte Carlo, same noise for all)."""
    mixture = _mixture(device, torch.float64)
    sigma = 0.4
    x = mixture.sample(50_000, generator)
    noisy = x + sigma * torch.randn(x.shape, generator=generator, dtype=torch.float64).to(device)
    best = optimal_denoiser(mixture, noisy, sigma)
    loss = lambda r: float(((r - x) ** 2).sum(-1).mean())
    assert loss(best) < loss(noisy)  # identity
    assert loss(best) < loss(best + 0.05) and loss(best) < loss(0.95 * best)


def test_trained_dae_score_matches_the_true_score(device, generator):
    mixture = _mixture(device)
    sigmas = geometric_sigmas(2.0, 0.05, 8, device=device)
    model = Denoiser(generator=generator, device=device)
    history = train_denoiser(model, lambda n: mixture.sample(n, generator), sigmas, steps=250,
                             batch_size=512, generator=generator)
    assert sum(history[-20:]) < sum(history[:20])
    for sigma in (0.1, 0.5):
        noisy = mixture.sample(2000, generator) + sigma * torch.randn(2000, 2, generator=generator).to(device)
        with torch.no_grad():
            learned = model.score(noisy, sigma)
        cos = torch.nn.functional.cosine_similarity(learned, mixture.score(noisy, sigma), dim=-1)
        assert float(cos.mean()) > 0.9
    with torch.no_grad():  # and the DAE objective is near that of the exact optimum
        x = mixture.sample(4000, generator)
        learned_loss = float(dae_loss(model, x, sigmas[3:4], generator))
    assert learned_loss < 1.3 * _optimal_dae_loss(mixture, x, float(sigmas[3]), generator)


def _optimal_dae_loss(mixture, x, sigma, generator):
    noisy = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return float(((optimal_denoiser(mixture, noisy, sigma) - x) ** 2).sum(-1).mean() / sigma ** 2)


def test_annealed_langevin_with_the_true_score_samples_the_mixture(device, generator):
    """Mode weights within TV 0.05 and within-mode variance within 15% of s^2 + sigma_L^2 (4000 samples)."""
    mixture = _mixture(device)
    sigmas = geometric_sigmas(2.0, 0.05, 8, device=device)
    x = (3 * torch.randn(4000, 2, generator=generator)).to(device)
    samples = annealed_langevin(mixture.score, x, sigmas, steps_per_level=50, generator=generator)
    nearest = ((samples[:, None] - mixture.means) ** 2).sum(-1).argmin(-1)
    share = torch.bincount(nearest, minlength=4).float() / 4000
    assert 0.5 * float((share - mixture.weights).abs().sum()) < 0.05
    variance = float(((samples - mixture.means[nearest]) ** 2).mean())
    assert abs(variance / (0.3 ** 2 + 0.05 ** 2) - 1) < 0.15
