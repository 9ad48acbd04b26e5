r"""从去噪自编码器到生成模型 — https://kexue.fm/archives/7038

Papers: Bigdeli et al., "Learning Generative Models using Denoising Density Estimators", and Li et al.,
"Annealed Denoising Score Matching: Learning Energy-Based Models in High-Dimensional Spaces" (ICLR 2020
submissions). A denoising autoencoder trained with
$\min_r \mathbb{E}_{\boldsymbol{x}\sim p,\,\boldsymbol{\varepsilon}\sim\mathcal{N}(0,I)}
\|r(\boldsymbol{x}+\sigma\boldsymbol{\varepsilon})-\boldsymbol{x}\|^2$ has the optimum

$$r(\boldsymbol{x}) = \boldsymbol{x} + \sigma^2\nabla_{\boldsymbol{x}}\log p_\sigma(\boldsymbol{x})
\approx \boldsymbol{x} + \sigma^2\nabla_{\boldsymbol{x}}\log p(\boldsymbol{x})$$

($p_\sigma = p * \mathcal{N}(0,\sigma^2 I)$; exact as $\mathbb{E}[\boldsymbol{x}|\tilde{\boldsymbol{x}}]$), so
$(r(\boldsymbol{x})-\boldsymbol{x})/\sigma^2$ estimates the score, and annealed Langevin dynamics
$\boldsymbol{x}\leftarrow\boldsymbol{x}+\varepsilon\nabla\log p_{\sigma}(\boldsymbol{x})+\sqrt{2\varepsilon}\,\boldsymbol{z}$,
with $\sigma$ decreasing, turns the DAE into a sampler. A Gaussian mixture gives the true score in
closed form: $p_\sigma$ is again a mixture, with variances $s_k^2+\sigma^2$.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from spaces_code.randomness import multinomial, rand, randint, randn


@dataclass
class GaussianMixture:
    """Isotropic mixture $\\sum_k \\pi_k \\mathcal{N}(\\mu_k, s_k^2 I)$: ``means`` (K, dim), ``stds`` (K,), ``weights`` (K,)."""
    means: Tensor
    stds: Tensor
    weights: Tensor

    def _log_components(self, x: Tensor, noise_std: float) -> tuple[Tensor, Tensor]:
        """Per-component $\\log \\pi_k \\mathcal{N}(x; \\mu_k, (s_k^2+\\sigma^2) I)$ ``(..., K)`` and variances ``(K,)``."""
        var = self.stds ** 2 + noise_std ** 2  # (K,)
        dim = self.means.shape[-1]
        sq = ((x[..., None, :] - self.means) ** 2).sum(-1)  # (..., K)
        log_normal = -0.5 * sq / var - 0.5 * dim * torch.log(2 * math.pi * var)
        return torch.log(self.weights / self.weights.sum()) + log_normal, var

    def log_prob(self, x: Tensor, noise_std: float = 0.0) -> Tensor:
        """$\\log p_\\sigma(x)$ ``(...)`` for points ``(..., dim)`` (``noise_std`` = $\\sigma$)."""
        return torch.logsumexp(self._log_components(x, noise_std)[0], dim=-1)

    def score(self, x: Tensor, noise_std: float = 0.0) -> Tensor:
        """Closed-form $\\nabla_x \\log p_\\sigma(x)$ ``(..., dim)``."""
        log_comp, var = self._log_components(x, noise_std)
        responsibility = torch.softmax(log_comp, dim=-1)  # (..., K)
        # $\nabla\log p_\sigma(x) = \sum_k \gamma_k(x)\,(\mu_k - x)/(s_k^2+\sigma^2)$
        return (responsibility[..., None] * (self.means - x[..., None, :]) / var[:, None]).sum(-2)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        # drawn on the generator's device, returned on the mixture's
        component = multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        noise = randn(n, self.means.shape[-1], generator=generator, device=self.means.device,
                      dtype=self.means.dtype)
        return self.means[component] + self.stds[component, None] * noise


def optimal_denoiser(mixture: GaussianMixture, x_noisy: Tensor, sigma: float) -> Tensor:
    """The exact DAE optimum $r(\\tilde x) = \\mathbb{E}[x|\\tilde x]$ for data from ``mixture``."""
    # $r(x) = x + \sigma^2\nabla_x\log p_\sigma(x)$
    return x_noisy + sigma ** 2 * mixture.score(x_noisy, noise_std=sigma)


class Denoiser(nn.Module):
    """Noise-conditional DAE $r(x, \\sigma) = x + \\sigma\\, f_\\theta(x, \\log\\sigma)$ for 2-D points."""

    def __init__(self, dim: int = 2, hidden: int = 64, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 1, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, dim)).to(device)
        with torch.no_grad():
            for layer in self.net:
                if isinstance(layer, nn.Linear):  # reproducible initialisation from the generator
                    bound = 1 / math.sqrt(layer.in_features)
                    layer.weight.copy_(rand(*layer.weight.shape, generator=generator, device=device)
                                       * 2 * bound - bound)
                    layer.bias.zero_()

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        """Denoised points ``(batch, dim)`` from noisy ``x`` ``(batch, dim)`` at levels ``sigma`` ``(batch,)``."""
        return x + sigma[:, None] * self.net(torch.cat([x, sigma.log()[:, None]], dim=-1))

    def score(self, x: Tensor, sigma: float) -> Tensor:
        """Score estimate $(r(x) - x)/\\sigma^2$ ``(batch, dim)``."""
        level = torch.full(x.shape[:1], sigma, device=x.device, dtype=x.dtype)
        return (self(x, level) - x) / sigma ** 2


def dae_loss(model: Denoiser, x: Tensor, sigmas: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """$\\mathbb{E}\\|r(x+\\sigma\\varepsilon)-x\\|^2/\\sigma^2$, one random level from ``sigmas`` per point."""
    level = sigmas[randint(0, len(sigmas), x.shape[:1], generator=generator, device=sigmas.device)]  # (batch,)
    noise = randn(*x.shape, generator=generator, device=x.device, dtype=x.dtype)
    # dividing by sigma^2 gives every noise level the same weight (score-matching weighting)
    return (((model(x + level[:, None] * noise, level) - x) ** 2).sum(-1) / level ** 2).mean()


def train_denoiser(model: Denoiser, sample_data: Callable[[int], Tensor], sigmas: Tensor, steps: int = 800,
                   batch_size: int = 512, lr: float = 1e-2,
                   generator: torch.Generator | None = None) -> list[float]:
    """Adam on :func:`dae_loss` with fresh data each step; returns the loss history."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    history = []
    for _ in range(steps):
        loss = dae_loss(model, sample_data(batch_size), sigmas, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        history.append(float(loss.detach()))
    return history


def geometric_sigmas(largest: float, smallest: float, levels: int, device: torch.device | str | None = None) -> Tensor:
    """Noise levels ``(levels,)`` from ``largest`` down to ``smallest``, geometrically spaced."""
    return torch.logspace(math.log10(largest), math.log10(smallest), levels, device=device)


def annealed_langevin(score: Callable[[Tensor, float], Tensor], x: Tensor, sigmas: Tensor, steps_per_level: int = 50,
                      step_size: float = 0.3, generator: torch.Generator | None = None) -> Tensor:
    """Annealed Langevin dynamics from ``x`` ``(n, dim)`` through decreasing ``sigmas``.

    At level $\\sigma_i$ the step is $\\varepsilon_i = $ ``step_size`` $\\cdot\\,\\sigma_i^2$ (proportional to
    $\\sigma_i^2$ as in Song & Ermon, 2019), so each level moves points by a similar amount relative to its noise.
    """
    for sigma in sigmas.tolist():
        eps = step_size * sigma ** 2
        for _ in range(steps_per_level):
            z = randn(*x.shape, generator=generator, device=x.device, dtype=x.dtype)
            # $x \leftarrow x + \varepsilon\nabla\log p_\sigma(x) + \sqrt{2\varepsilon}\,z$
            x = x + eps * score(x, sigma) + math.sqrt(2 * eps) * z
    return x
